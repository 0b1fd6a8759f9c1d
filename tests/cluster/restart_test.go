package cluster_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// TestWholeClusterRestart stops every node at once, by power loss (SIGKILL)
// and by a clean shutdown (SIGTERM), restarts them all on their data, and
// checks that every acknowledged write is back on every node.
func TestWholeClusterRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*harness.Cluster, *harness.Node)
	}{
		{"sigkill", (*harness.Cluster).Kill},
		{"sigterm", (*harness.Cluster).Stop},
	} {
		t.Run(tc.name, func(t *testing.T) { testWholeClusterRestart(t, tc.stop) })
	}
}

// item is the expected state of one record.
type item struct {
	N       int
	Version uint64
}

func testWholeClusterRestart(t *testing.T, stop func(*harness.Cluster, *harness.Node)) {
	c := harness.Start(t, harness.Options{Nodes: 3})
	cl := clusterClient(t, c)
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{
		Name:       "items",
		Attributes: map[string]tandem.AttrType{"id": "string", "n": "int"},
		Indexes:    []string{"n"},
	})

	// Acknowledged writes of every kind, spread over the nodes; want is
	// what each must leave behind, maxIdx the last acknowledged index.
	want := map[string]item{}
	var maxIdx uint64
	ack := func(key string, n int, res client.WriteResult, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("write %s: %v", key, err)
		}
		want[key] = item{N: n, Version: res.Version}
		maxIdx = max(maxIdx, res.Index)
	}
	for i := range 60 {
		key := fmt.Sprintf("k%03d", i)
		res, err := cl.Insert(ctx, "items", map[string]any{"id": key, "n": i})
		ack(key, i, res, err)
	}
	for i := 0; i < 60; i += 3 {
		key := fmt.Sprintf("k%03d", i)
		res, err := cl.Put(ctx, "items", key, map[string]any{"n": 1000 + i}, client.IfMatch(want[key].Version))
		ack(key, 1000+i, res, err)
	}
	for i := 1; i < 60; i += 7 {
		key := fmt.Sprintf("k%03d", i)
		res, err := cl.Delete(ctx, "items", key)
		if err != nil {
			t.Fatalf("delete %s: %v", key, err)
		}
		delete(want, key)
		maxIdx = max(maxIdx, res.Index)
	}
	for i := range 10 {
		var ops []tandem.Op
		keys := []string{}
		for j := range 3 {
			key := fmt.Sprintf("tx%02d-%d", i, j)
			keys = append(keys, key)
			ops = append(ops, tandem.Op{Op: tandem.OpInsert, Table: "items", Record: json.RawMessage(fmt.Sprintf(`{"id": %q, "n": %d}`, key, 5000+j))})
		}
		idx, err := cl.Tx(ctx, tandem.Tx{Ops: ops})
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		for j, key := range keys {
			want[key] = item{N: 5000 + j, Version: idx}
		}
		maxIdx = max(maxIdx, idx)
	}

	// Writers are busy when the nodes go down: whatever they got
	// acknowledged must survive too.
	var (
		mu       sync.Mutex
		done     atomic.Bool
		wg       sync.WaitGroup
		maybe    = map[string]bool{}
		inFlight = clusterClient(t, c, client.WithTimeout(3*time.Second))
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done.Load(); i++ {
				key := fmt.Sprintf("live-%d-%d", w, i)
				res, err := inFlight.Insert(ctx, "items", map[string]any{"id": key, "n": i})
				mu.Lock()
				if err == nil {
					want[key] = item{N: i, Version: res.Version}
					maxIdx = max(maxIdx, res.Index)
				} else {
					maybe[key] = true // may have committed before the stop
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	for _, n := range c.Nodes {
		stop(c, n)
	}
	done.Store(true)
	wg.Wait()
	for _, n := range c.Nodes {
		c.Start(n)
	}
	for _, n := range c.Nodes {
		c.WaitReady(n, 30*time.Second)
	}
	idx, hash := c.WaitConverged(30 * time.Second)
	t.Logf("restarted; all nodes at index %d (last acknowledged write %d), ledger %.12s; %d records acknowledged", idx, maxIdx, hash, len(want))
	if idx < maxIdx {
		t.Fatalf("nodes converged at index %d, below the last acknowledged write at %d", idx, maxIdx)
	}

	d := requireSameOnAllNodes(t, c, cl)
	got := d.Records["items"]
	for key, w := range want {
		raw, ok := got[key]
		if !ok {
			t.Errorf("acknowledged write %s is missing after the restart", key)
			continue
		}
		var rec struct {
			N       int    `json:"n"`
			Version uint64 `json:"_version"`
		}
		if err := json.Unmarshal([]byte(raw), &rec); err != nil || rec.N != w.N || rec.Version != w.Version {
			t.Errorf("items/%s = %s; want n=%d at version %d", key, raw, w.N, w.Version)
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok && !maybe[key] {
			t.Errorf("items/%s is there after the restart but was deleted or never written: %s", key, got[key])
		}
	}
	// The index was rebuilt or kept consistently: an indexed query agrees.
	res, err := cl.Query(ctx, "items", map[string][]string{"n": {"ge.5000"}, "count": {"true"}})
	if err != nil || res.Count == nil || *res.Count != 30 {
		t.Errorf("count of n>=5000 after restart = %+v, %v; want 30", res, err)
	}

	// Writes work again, through every node.
	for i := range c.Nodes {
		res, err := cl.Node(i).Insert(ctx, "items", map[string]any{"id": "after-" + c.Nodes[i].ID, "n": -1})
		if err != nil {
			t.Fatalf("write through %s after the restart: %v", c.Nodes[i].ID, err)
		}
		if res.Index <= idx {
			t.Errorf("write after restart committed at %d, not after %d", res.Index, idx)
		}
		next := cl.Node((i + 1) % len(c.Nodes))
		if _, err := next.Get(ctx, "items", res.Key, client.MinIndex(res.Index)); err != nil {
			t.Errorf("reading %s at its index on another node: %v", res.Key, err)
		}
	}
}
