package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/chaos/checker"
)

const registersTable = "registers"

// registers is the registers workload: reads at every consistency level,
// writes and compare-and-set on a few keys. Each key slot moves on to a
// fresh key after opsPerKey operations, so that no key's history grows
// too long for porcupine.
type registers struct {
	opsPerKey int64
	slots     []keySlot

	mu  sync.Mutex
	ops []checker.RegisterOp

	lin  checker.LinearizabilityResult
	show []string // keys to visualize: the first to go wrong
}

type keySlot struct {
	gen atomic.Int64
	ops atomic.Int64
}

func newRegisters(keys int, opsPerKey int64) *registers {
	return &registers{opsPerKey: opsPerKey, slots: make([]keySlot, keys)}
}

func (w *registers) name() string { return "registers" }
func (w *registers) workers() int { return 5 }

func (w *registers) setup(t *testing.T, r *run) {
	createTable(t, r, tandem.TableSchema{Name: registersTable, Attributes: map[string]tandem.AttrType{"id": "string", "v": "string"}})
}

// pickKey returns the current key of a random slot.
func (w *registers) pickKey(rng *rand.Rand) string {
	i := rng.IntN(len(w.slots))
	s := &w.slots[i]
	g := s.gen.Load()
	if s.ops.Add(1) > w.opsPerKey && s.gen.CompareAndSwap(g, g+1) {
		s.ops.Store(0)
	}
	return fmt.Sprintf("r%d.%d", i, s.gen.Load())
}

func (w *registers) currentKeys() []string {
	var out []string
	for i := range w.slots {
		out = append(out, fmt.Sprintf("r%d.%d", i, w.slots[i].gen.Load()))
	}
	return out
}

func (w *registers) record(op checker.RegisterOp) {
	w.mu.Lock()
	w.ops = append(w.ops, op)
	w.mu.Unlock()
}

func (w *registers) work(ctx context.Context, r *run, worker int, rng *rand.Rand) {
	proc := r.newProcess()
	seen := map[string]uint64{} // key -> the last version this client saw
	var session uint64          // the highest index this client saw
	for n := 0; ctx.Err() == nil; n++ {
		key := w.pickKey(rng)
		m := r.pick(rng)
		op := checker.RegisterOp{Process: proc, Key: key, Node: m.node.ID}
		x := rng.IntN(10)
		expect, haveVersion := seen[key]
		switch {
		case x < 5:
			op.Kind, op.Consistency = checker.Read, consistencies[rng.IntN(len(consistencies))]
			if op.Consistency == checker.MinIndex {
				op.MinIndex = max(session, 1)
			}
		case x < 7 || !haveVersion:
			op.Kind, op.Value = checker.Write, fmt.Sprintf("%d.%d", worker, n)
		default:
			op.Kind, op.Value, op.Expect = checker.CAS, fmt.Sprintf("%d.%d", worker, n), expect
		}
		w.do(ctx, r, m, &op)
		if op.Outcome == checker.Ok && (op.Found || op.Kind != checker.Read) {
			seen[key] = op.Version
		}
		session = max(session, op.Index)
		w.record(op)
		switch {
		case op.Outcome == checker.Unknown && op.Kind != checker.Read:
			// The write may still be in flight: this client's next
			// operation must not be ordered after it.
			proc = r.newProcess()
		case op.Outcome == checker.NotSent || (op.Outcome == checker.Unknown && op.Return-op.Call < int64(time.Millisecond)):
			sleep(ctx, 50*time.Millisecond) // the node is down: do not spin
		}
	}
}

// do performs op on m and fills in its outcome.
func (w *registers) do(ctx context.Context, r *run, m *member, op *checker.RegisterOp) {
	inc := m.inc.Load()
	op.Call = r.now()
	var err error
	var bad string // a 200 answer the client could not make sense of
	if op.Kind == checker.Read {
		var rec client.Record
		rec, err = m.cl.Get(ctx, registersTable, op.Key, readOption(op.Consistency, op.MinIndex))
		if err == nil {
			var v struct {
				V string `json:"v"`
			}
			if derr := rec.Decode(&v); derr != nil || v.V == "" {
				bad = fmt.Sprintf("unreadable record %s: %v", rec.JSON, derr)
			}
			op.Found, op.Value, op.Version, op.Index = true, v.V, rec.Version, rec.Index
		} else if client.IsCode(err, tandem.CodeNotFound) {
			err = nil
		}
	} else {
		opts := []client.WriteOption{client.CommitTimeout(r.commitTimeout)}
		if op.Kind == checker.CAS {
			opts = append(opts, client.IfMatch(op.Expect))
		}
		var res client.WriteResult
		res, err = m.cl.Put(ctx, registersTable, op.Key, map[string]any{"v": op.Value}, opts...)
		op.Version, op.Index = res.Version, res.Index
	}
	op.Return = r.now()
	op.Incarnation = int(inc)
	if m.inc.Load() != inc {
		op.Incarnation = -1
	}
	op.Outcome, op.Err = checker.Classify(err), errString(err)
	if bad != "" {
		op.Outcome, op.Err = checker.Fail, bad
	}
}

func (w *registers) final(t *testing.T, r *run) {
	for _, key := range w.currentKeys() {
		for _, m := range r.current() {
			for _, cons := range []string{checker.Linearizable, checker.Local} {
				// A linearizable read needs a leader, and leadership may
				// still move once after healing (a cut-off leader with the
				// longest log wins an election a second after the others
				// had settled): retry a failed read, recording every try.
				for try := 1; ; try++ {
					op := checker.RegisterOp{Process: r.newProcess(), Key: key, Node: m.node.ID, Kind: checker.Read, Consistency: cons}
					w.do(t.Context(), r, m, &op)
					w.record(op)
					if op.Outcome == checker.Ok {
						break
					}
					if try == 10 || !sleep(t.Context(), 500*time.Millisecond) {
						r.errorf(t, "final %s read of %s on %s, %d tries: %s", cons, key, m.node.ID, try, op.Err)
						break
					}
				}
			}
		}
	}
}

func (w *registers) check(t *testing.T, r *run) []string {
	w.mu.Lock()
	ops := w.ops
	w.mu.Unlock()
	var out []string
	for _, op := range ops {
		if op.Outcome == checker.Fail && !(op.Kind == checker.CAS && strings.Contains(op.Err, string(tandem.CodePreconditionFailed))) {
			out = append(out, fmt.Sprintf("%s of %s on %s failed with a client error: %s", op.Kind, op.Key, op.Node, op.Err))
		}
	}
	timeout := time.Minute
	if *duration > 0 {
		timeout = 10 * time.Minute
	}
	w.lin = checker.CheckLinearizable(ops, timeout)
	switch w.lin.Result {
	case porcupine.Illegal:
		// Order the guilty keys by when their history went wrong, for the
		// message and the visualization.
		first := map[string]int64{}
		keys := w.lin.IllegalKeys[:min(len(w.lin.IllegalKeys), 20)]
		for _, k := range keys {
			first[k], _ = checker.FirstViolation(ops, k, timeout)
		}
		sort.Slice(keys, func(i, j int) bool { return first[keys[i]] < first[keys[j]] })
		w.show = keys[:min(len(keys), 3)]
		var when []string
		for _, k := range w.show {
			when = append(when, fmt.Sprintf("%s by %.3fs", k, float64(first[k])/1e9))
		}
		out = append(out, fmt.Sprintf("porcupine: the histories of %d keys are not linearizable (%d operations checked in %v); first: %s",
			len(w.lin.IllegalKeys), w.lin.Operations, w.lin.Elapsed.Round(time.Millisecond), strings.Join(when, ", ")))
	case porcupine.Unknown:
		t.Logf("registers: porcupine gave up after %v on %d operations; linearizability not established", timeout, w.lin.Operations)
	}
	out = append(out, checker.CheckRegisterReads(ops)...)
	// Local reads must not go back in time on one node even across a
	// restart: a restarted node serves them only once it has caught up.
	out = append(out, checker.CheckRestartMonotonic(ops)...)
	cutOff, seen := checkCutOff(ops, r.faultLog())
	if seen != "()" {
		t.Logf("registers: operations called on nodes while they were cut off: %s", seen)
	}
	return append(out, cutOff...)
}

func (w *registers) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	counts := map[string]int{}
	for _, op := range w.ops {
		k := op.Kind
		if op.Kind == checker.Read {
			k += "/" + op.Consistency
		}
		counts[k+" "+string(op.Outcome)]++
	}
	return fmt.Sprintf("%d operations %s; porcupine %s on %d operations in %v", len(w.ops), formatCounts(counts), w.lin.Result, w.lin.Operations, w.lin.Elapsed.Round(time.Millisecond))
}

func (w *registers) save(dir string, r *run) error {
	w.mu.Lock()
	ops := w.ops
	w.mu.Unlock()
	if err := writeJSON(dir, "registers.json", ops); err != nil {
		return err
	}
	keys := w.show
	if len(keys) == 0 {
		// Show the keys with the most operations.
		n := map[string]int{}
		for _, op := range ops {
			n[op.Key]++
		}
		for k := range n {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return n[keys[i]] > n[keys[j]] })
		keys = keys[:min(len(keys), 5)]
	}
	var notes []porcupine.Annotation
	for _, ev := range r.faultLog() {
		notes = append(notes, porcupine.Annotation{Tag: "nemesis", Start: ev.Start, End: ev.End, Description: ev.Kind + " " + ev.Node, Details: ev.Note})
	}
	return checker.VisualizeKeys(ops, keys, filepath.Join(dir, "registers.html"), notes...)
}

// formatCounts renders counts sorted by name.
func formatCounts(counts map[string]int) string {
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("(")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, counts[k])
	}
	b.WriteString(")")
	return b.String()
}
