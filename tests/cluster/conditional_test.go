package cluster_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// casAttempt is one read-then-PUT-If-Match of the conditional write race.
type casAttempt struct {
	from    uint64 // the version read and sent in If-Match
	readN   int    // the counter value read
	won     bool
	version uint64 // the new version, when won
	writer  string
}

// TestConcurrentConditionalWrites races goroutines on every node doing
// read-modify-write with If-Match: exactly one write wins per version, the
// winners form one chain of versions, and the final value counts them.
// Creation races (If-None-Match: *, insert) have exactly one winner too.
func TestConcurrentConditionalWrites(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3})
	cl := clusterClient(t, c)
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{Name: "cells", Attributes: map[string]tandem.AttrType{"id": "string", "n": "int", "writer": "string"}})
	first, err := cl.Put(ctx, "cells", "x", map[string]any{"n": 0, "writer": "init"})
	if err != nil {
		t.Fatal(err)
	}

	const goroutines, rounds = 9, 25
	attempts := make([][]casAttempt, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := cl.Node(g % len(c.Nodes))
			for r := range rounds {
				rec, err := node.Get(ctx, "cells", "x")
				if err != nil {
					t.Errorf("goroutine %d: read: %v", g, err)
					return
				}
				var cur struct {
					N int `json:"n"`
				}
				if err := rec.Decode(&cur); err != nil {
					t.Errorf("goroutine %d: %s: %v", g, rec.JSON, err)
					return
				}
				a := casAttempt{from: rec.Version, readN: cur.N, writer: fmt.Sprintf("g%d-r%d", g, r)}
				res, err := node.Put(ctx, "cells", "x", map[string]any{"n": cur.N + 1, "writer": a.writer}, client.IfMatch(rec.Version))
				switch {
				case err == nil:
					a.won, a.version = true, res.Version
				case client.IsCode(err, tandem.CodePreconditionFailed):
				default:
					// Nothing is failing: every outcome must be definite.
					t.Errorf("goroutine %d: PUT If-Match %d: %v", g, rec.Version, err)
					return
				}
				attempts[g] = append(attempts[g], a)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	var final struct {
		N      int    `json:"n"`
		Writer string `json:"writer"`
	}
	finalRec := getJSON(t, cl, "cells", "x", &final)

	// Winners per version read.
	winners := map[uint64][]casAttempt{}
	tried := map[uint64]int{}
	wins, total := 0, 0
	for _, as := range attempts {
		for _, a := range as {
			total++
			tried[a.from]++
			if a.won {
				wins++
				winners[a.from] = append(winners[a.from], a)
			}
		}
	}
	for v, ws := range winners {
		if len(ws) > 1 {
			t.Errorf("version %d: %d writes won (%+v); want exactly one", v, len(ws), ws)
		}
	}
	// Follow the chain from the first version: each version's single
	// winner made the next, and the chain ends at the final version.
	chain := map[uint64]bool{}
	v, n := first.Version, 0
	for {
		chain[v] = true
		ws := winners[v]
		if len(ws) == 0 {
			break
		}
		w := ws[0]
		if w.readN != n {
			t.Errorf("the winner at version %d read n=%d, want %d", v, w.readN, n)
		}
		if w.version <= v {
			t.Fatalf("the winner at version %d produced version %d", v, w.version)
		}
		v, n = w.version, n+1
		if v == finalRec.Version && final.Writer != w.writer {
			t.Errorf("final writer %q, want %q (the winner at the last version)", final.Writer, w.writer)
		}
	}
	if v != finalRec.Version || final.N != n {
		t.Errorf("chain of winners ends at version %d with n=%d; the record is at version %d with n=%d", v, n, finalRec.Version, final.N)
	}
	if final.N != wins {
		t.Errorf("final n=%d, but %d writes won", final.N, wins)
	}
	for v, count := range tried {
		if !chain[v] {
			t.Errorf("%d writes were made against version %d, which the record never had", count, v)
		}
	}
	if total != goroutines*rounds || wins == 0 || wins == total {
		t.Errorf("%d attempts, %d won; want %d attempts with both winners and losers", total, wins, goroutines*rounds)
	}
	t.Logf("%d conditional writes over %d versions: %d won, %d got 412", total, len(tried), wins, total-wins)

	// Creation races: one winner per key for If-None-Match: * and for
	// insert; If-Match: * on a missing record fails for everyone.
	for k := range 4 {
		key := fmt.Sprintf("new-%d", k)
		okPut, okIns, okMust := raceCreate(t, cl, goroutines, key)
		if okPut != 1 || okIns != 1 || okMust != 0 {
			t.Errorf("key %s: %d If-None-Match PUTs, %d inserts and %d If-Match:* PUTs succeeded; want 1, 1 and 0", key, okPut, okIns, okMust)
		}
	}

	c.WaitConverged(20 * time.Second)
	requireSameOnAllNodes(t, c, cl)
}

// raceCreate has n goroutines, spread over the nodes, race to create
// cells/<key> with If-None-Match: *, ins-<key> with insert, and must-<key>
// with If-Match: * (which does not exist). It returns how many of each
// succeeded, and checks that every loser got the right error.
func raceCreate(t *testing.T, cl *client.Client, n int, key string) (okPut, okIns, okMust int) {
	t.Helper()
	ctx := t.Context()
	var mu sync.Mutex
	var wg sync.WaitGroup
	putWinner, insWinner := "", ""
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := cl.Node(g % len(cl.Addrs()))
			me := fmt.Sprintf("g%d", g)
			_, errPut := node.Put(ctx, "cells", key, map[string]any{"writer": me}, client.IfNotExists())
			_, errIns := node.Insert(ctx, "cells", map[string]any{"id": "ins-" + key, "writer": me})
			_, errMust := node.Put(ctx, "cells", "must-"+key, map[string]any{"writer": me}, client.IfExists())
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errPut == nil:
				okPut++
				putWinner = me
			case !client.IsCode(errPut, tandem.CodePreconditionFailed):
				t.Errorf("%s: PUT If-None-Match: %v; want success or 412", me, errPut)
			}
			switch {
			case errIns == nil:
				okIns++
				insWinner = me
			case !client.IsCode(errIns, tandem.CodeConflict):
				t.Errorf("%s: insert: %v; want success or 409", me, errIns)
			}
			switch {
			case errMust == nil:
				okMust++
			case !client.IsCode(errMust, tandem.CodePreconditionFailed):
				t.Errorf("%s: PUT If-Match *: %v; want 412", me, errMust)
			}
		}()
	}
	wg.Wait()
	for k, want := range map[string]string{key: putWinner, "ins-" + key: insWinner} {
		var got struct {
			Writer string `json:"writer"`
		}
		getJSON(t, cl, "cells", k, &got)
		if got.Writer != want {
			t.Errorf("cells/%s written by %q, but %q was told it won", k, got.Writer, want)
		}
	}
	if _, err := cl.Get(ctx, "cells", "must-"+key); !client.IsCode(err, tandem.CodeNotFound) {
		t.Errorf("cells/must-%s: %v; want not_found", key, err)
	}
	return okPut, okIns, okMust
}
