package checker

import (
	"fmt"
	"slices"
	"sort"
)

// SetInsert is one attempted insert of the set workload.
type SetInsert struct {
	Key     string  `json:"key"`
	Node    string  `json:"node"`
	Call    int64   `json:"call"`
	Return  int64   `json:"return"`
	Outcome Outcome `json:"outcome"`
	Index   uint64  `json:"index,omitempty"`
	Err     string  `json:"err,omitempty"`
}

// SetCount is a linearizable count of the set's records.
type SetCount struct {
	Node   string `json:"node"`
	Call   int64  `json:"call"`
	Return int64  `json:"return"`
	Count  int    `json:"count"`
}

// CheckSetCounts checks linearizable counts against the inserts: a count
// is at least the number of inserts acknowledged before it was called, and
// at most the number that may have been applied (not definitely failed)
// called before it returned.
func CheckSetCounts(counts []SetCount, inserts []SetInsert) []string {
	var ackedAt, calledAt []int64 // return times of acknowledged inserts, call times of possible ones
	for _, in := range inserts {
		if in.Outcome == Ok {
			ackedAt = append(ackedAt, in.Return)
		}
		if in.Outcome != Fail && in.Outcome != NotSent {
			calledAt = append(calledAt, in.Call)
		}
	}
	slices.Sort(ackedAt)
	slices.Sort(calledAt)
	var out []string
	for _, c := range counts {
		low := sort.Search(len(ackedAt), func(i int) bool { return ackedAt[i] >= c.Call })
		high := sort.Search(len(calledAt), func(i int) bool { return calledAt[i] >= c.Return })
		if c.Count < low || c.Count > high {
			out = append(out, fmt.Sprintf("linearizable count on %s [%.3fs, %.3fs] = %d; want between %d (acknowledged before it was called) and %d (attempted before it returned)",
				c.Node, float64(c.Call)/1e9, float64(c.Return)/1e9, c.Count, low, high))
		}
	}
	return out
}

// CheckSetFinal checks the keys one node lists after the run, in the order
// it listed them: no key twice, every acknowledged insert present, and no
// key that was never attempted or whose insert definitely failed.
func CheckSetFinal(node string, listed []string, inserts []SetInsert) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, node+": "+fmt.Sprintf(format, args...)) }
	seen := map[string]bool{}
	for _, k := range listed {
		if seen[k] {
			add("key %s listed twice", k)
		}
		seen[k] = true
	}
	byKey := map[string]SetInsert{}
	for _, in := range inserts {
		byKey[in.Key] = in
		switch {
		case in.Outcome == Ok && !seen[in.Key]:
			add("acknowledged insert %s (index %d) is missing", in.Key, in.Index)
		case (in.Outcome == Fail || in.Outcome == NotSent) && seen[in.Key]:
			add("insert %s is present but failed (%s %s)", in.Key, in.Outcome, in.Err)
		}
	}
	var extra []string
	for k := range seen {
		if _, ok := byKey[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		add("key %s is present but was never inserted", k)
	}
	return out
}
