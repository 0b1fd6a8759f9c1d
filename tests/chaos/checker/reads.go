package checker

import (
	"fmt"
	"sort"
)

// CheckRegisterReads checks every successful read of a registers history,
// whatever its consistency, against what it promises (docs/api.md, "Read
// consistency"), and returns the violations found:
//
//   - a read returns a value some write tried to write, not one that
//     definitely failed, and the version that write was given;
//   - a read served at applied index I (Tandem-Index) reflects every write
//     to the key acknowledged at an index at or below I;
//   - a min_index read is served at that index or later (when the answer
//     says at which index: a 404 does not);
//   - on one run of one node's process, reads of a key never go back in
//     time: a read that starts after another returned sees a version at
//     least as high.
//
// Restarts are CheckRestartMonotonic's business.
func CheckRegisterReads(ops []RegisterOp) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	type written struct {
		op      RegisterOp
		version uint64 // from the write's answer, or the first read that saw it
		seenBy  *RegisterOp
	}
	writes := map[string]map[string]*written{} // key -> value -> write
	acked := map[string][]uint64{}             // key -> acknowledged versions
	for _, op := range ops {
		if op.Kind == Read || op.Outcome == NotSent {
			continue
		}
		if writes[op.Key] == nil {
			writes[op.Key] = map[string]*written{}
		}
		w := &written{op: op}
		if op.Outcome == Ok {
			w.version = op.Version
			acked[op.Key] = append(acked[op.Key], op.Version)
		}
		writes[op.Key][op.Value] = w
	}
	for _, vs := range acked {
		sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	}

	var reads []RegisterOp
	for _, op := range ops {
		if op.Kind == Read && op.Outcome == Ok {
			reads = append(reads, op)
		}
	}
	sort.Slice(reads, func(i, j int) bool { return reads[i].Call < reads[j].Call })
	for i := range reads {
		r := &reads[i]
		if r.Consistency == MinIndex && r.Index != 0 && r.Index < r.MinIndex { // 0: a 404 carries no index
			add("%s: min_index=%d read served at index %d", describeRead(r), r.MinIndex, r.Index)
		}
		// The latest acknowledged write at or below the read's index.
		vs := acked[r.Key]
		j := sort.Search(len(vs), func(j int) bool { return vs[j] > r.Index })
		if j > 0 && (!r.Found || r.Version < vs[j-1]) {
			add("%s: served at index %d, but a write to %s was acknowledged at version %d", describeRead(r), r.Index, r.Key, vs[j-1])
		}
		if !r.Found {
			continue
		}
		w := writes[r.Key][r.Value]
		switch {
		case w == nil:
			add("%s: no write of %q to %s was attempted", describeRead(r), r.Value, r.Key)
		case w.op.Outcome == Fail:
			add("%s: the write of %q failed definitely (%s)", describeRead(r), r.Value, w.op.Err)
		case w.version == 0:
			w.version, w.seenBy = r.Version, r
		case w.version != r.Version:
			by := "its write's answer"
			if w.seenBy != nil {
				by = describeRead(w.seenBy)
			}
			add("%s: version %d, but %s says %q has version %d", describeRead(r), r.Version, by, r.Value, w.version)
		}
	}

	// Per node process and key: no read goes back in time.
	type stream struct {
		node string
		inc  int
		key  string
	}
	streams := map[stream][]RegisterOp{}
	for _, r := range reads {
		if r.Incarnation < 0 {
			continue
		}
		s := stream{r.Node, r.Incarnation, r.Key}
		streams[s] = append(streams[s], r)
	}
	for _, rs := range streams {
		out = append(out, monotonic(rs, "")...)
	}
	sort.Strings(out)
	return out
}

// CheckRestartMonotonic checks that reads of a key on one node never go
// back in time across restarts of its process (after a crash or a power
// loss): a read that starts after another returned, on the same node, sees
// a version at least as high even if the process was restarted between
// them.
func CheckRestartMonotonic(ops []RegisterOp) []string {
	type stream struct{ node, key string }
	streams := map[stream][]RegisterOp{}
	for _, r := range ops {
		if r.Kind == Read && r.Outcome == Ok && r.Incarnation >= 0 {
			s := stream{r.Node, r.Key}
			streams[s] = append(streams[s], r)
		}
	}
	var out []string
	for _, rs := range streams {
		out = append(out, monotonic(rs, "after a restart ")...)
	}
	sort.Strings(out)
	return out
}

// monotonic checks that in reads (of one key on one node), a read that
// started after another returned has a version at least as high.
func monotonic(reads []RegisterOp, what string) []string {
	sort.Slice(reads, func(i, j int) bool { return reads[i].Call < reads[j].Call })
	byReturn := append([]RegisterOp(nil), reads...)
	sort.Slice(byReturn, func(i, j int) bool { return byReturn[i].Return < byReturn[j].Return })
	var out []string
	var best *RegisterOp // the highest version among reads returned so far
	j := 0
	for i := range reads {
		r := &reads[i]
		for ; j < len(byReturn) && byReturn[j].Return < r.Call; j++ {
			if best == nil || byReturn[j].version() > best.version() {
				best = &byReturn[j]
			}
		}
		if best != nil && r.version() < best.version() && (what == "" || best.Incarnation != r.Incarnation) {
			out = append(out, fmt.Sprintf("%s: went back in time %son %s: %s had returned version %d", describeRead(r), what, r.Node, describeRead(best), best.version()))
		}
	}
	return out
}

// version is what a read saw: its version, 0 for an absent record.
func (op *RegisterOp) version() uint64 {
	if !op.Found {
		return 0
	}
	return op.Version
}

func describeRead(r *RegisterOp) string {
	got := "absent"
	if r.Found {
		got = fmt.Sprintf("%q v%d", r.Value, r.Version)
	}
	cons := r.Consistency
	if cons == MinIndex {
		cons = fmt.Sprintf("min_index=%d", r.MinIndex)
	}
	return fmt.Sprintf("%s read of %s on %s#%d [%.3fs, %.3fs] -> %s", cons, r.Key, r.Node, r.Incarnation, float64(r.Call)/1e9, float64(r.Return)/1e9, got)
}
