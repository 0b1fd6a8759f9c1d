package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/chaos/checker"
)

const setTable = "items"

// set is the set workload: unique inserts, and linearizable counts.
type set struct {
	mu         sync.Mutex
	inserts    []checker.SetInsert
	counts     []checker.SetCount
	finals     map[string][]string // node -> keys listed at the end
	unexpected []string
}

func newSet() *set { return &set{finals: map[string][]string{}} }

func (w *set) name() string { return "set" }
func (w *set) workers() int { return 2 }

func (w *set) setup(t *testing.T, r *run) {
	createTable(t, r, tandem.TableSchema{Name: setTable, Attributes: map[string]tandem.AttrType{"id": "string"}})
}

func (w *set) work(ctx context.Context, r *run, worker int, rng *rand.Rand) {
	for n := 0; ctx.Err() == nil; n++ {
		m := r.pick(rng)
		if rng.IntN(5) == 0 {
			c := checker.SetCount{Node: m.node.ID, Call: r.now()}
			res, err := m.cl.Query(ctx, setTable, url.Values{"count": {"true"}}, client.Linearizable())
			c.Return = r.now()
			if err != nil || res.Count == nil {
				sleep(ctx, 50*time.Millisecond)
				continue
			}
			c.Count = *res.Count
			w.mu.Lock()
			w.counts = append(w.counts, c)
			w.mu.Unlock()
			continue
		}
		in := checker.SetInsert{Key: fmt.Sprintf("s%d.%d", worker, n), Node: m.node.ID, Call: r.now()}
		res, err := m.cl.Insert(ctx, setTable, map[string]any{"id": in.Key})
		in.Return, in.Index = r.now(), res.Index
		in.Outcome, in.Err = checker.Classify(err), errString(err)
		w.mu.Lock()
		w.inserts = append(w.inserts, in)
		if in.Outcome == checker.Fail {
			// Every key is new and never retried: even a conflict means
			// the insert was applied twice.
			w.unexpected = append(w.unexpected, fmt.Sprintf("insert %s on %s: %v", in.Key, in.Node, err))
		}
		w.mu.Unlock()
		if in.Outcome == checker.NotSent {
			sleep(ctx, 50*time.Millisecond)
		}
	}
}

func (w *set) final(t *testing.T, r *run) {
	w.mu.Lock()
	clear(w.finals)
	w.mu.Unlock()
	for _, m := range r.current() {
		recs, err := readAll(t.Context(), m.cl, setTable)
		if err != nil {
			r.errorf(t, "final read of the set on %s: %v", m.node.ID, err)
			continue
		}
		var keys []string
		for _, raw := range recs {
			var rec struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &rec); err != nil {
				r.errorf(t, "%s: record %s: %v", m.node.ID, raw, err)
			}
			keys = append(keys, rec.ID)
		}
		w.mu.Lock()
		w.finals[m.node.ID] = keys
		w.mu.Unlock()
	}
}

func (w *set) check(t *testing.T, r *run) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.unexpected)
	out = append(out, checker.CheckSetCounts(w.counts, w.inserts)...)
	for node, keys := range w.finals {
		out = append(out, checker.CheckSetFinal(node, keys, w.inserts)...)
	}
	if len(w.finals) == 0 {
		out = append(out, "no node's final state could be read")
	}
	return out
}

func (w *set) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	counts := map[string]int{"count": len(w.counts)}
	for _, in := range w.inserts {
		counts["insert "+string(in.Outcome)]++
	}
	sizes := ""
	for node, keys := range w.finals {
		sizes += fmt.Sprintf(" %s=%d", node, len(keys))
	}
	return fmt.Sprintf("%s; final sizes:%s", formatCounts(counts), sizes)
}

func (w *set) save(dir string, r *run) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return writeJSON(dir, "set.json", map[string]any{"inserts": w.inserts, "counts": w.counts, "finals": w.finals})
}
