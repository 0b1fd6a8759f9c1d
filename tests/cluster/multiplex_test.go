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

// TestMultiplexedClient drives a secure cluster through the Go client's
// multiplexed connections (GET /v1/mux): concurrent writes on every node
// are all applied on every node, the leader's SIGKILL breaks its
// connections and the client carries on through the others, and the
// upgrade is refused without credentials.
func TestMultiplexedClient(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3})
	cl := clusterClient(t, c, client.WithMultiplex(2))
	defer cl.Close()
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{Name: "m", PrimaryKey: "id", Attributes: map[string]tandem.AttrType{"id": "string", "n": "int"}})

	// 40 writers, each on one node, 10 writes each: many requests share
	// each connection's messages.
	const writers, each = 40, 10
	var mu sync.Mutex
	var top uint64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := cl.Node(w % len(c.Nodes))
			for i := range each {
				res, err := node.Put(ctx, "m", fmt.Sprintf("k%d-%d", w, i), map[string]any{"n": w*each + i})
				if err != nil {
					errs <- fmt.Errorf("writer %d put %d: %w", w, i, err)
					return
				}
				mu.Lock()
				top = max(top, res.Index)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, n := range c.Nodes {
		got := dumpTable(t, cl.Node(i), "m", client.MinIndex(top))
		if len(got) != writers*each {
			t.Fatalf("%s serves %d records at index %d, want %d", n.ID, len(got), top, writers*each)
		}
	}

	// Kill the leader: calls that were on its connections fail, later
	// calls move on to the other nodes (the client redials and retries a
	// connection that cannot be made).
	leader := c.Leader(10 * time.Second)
	c.Kill(leader)
	deadline := time.Now().Add(20 * time.Second)
	written := 0
	for i := 0; written < 20; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes succeeded in 20s after the leader's kill", written)
		}
		if _, err := cl.Put(ctx, "m", fmt.Sprintf("after-%d", i), map[string]any{"n": i}); err == nil {
			written++
		} else if !outcomeUnknown(err) {
			t.Fatalf("write after the kill: %v", err)
		}
	}
	c.Start(leader)
	c.WaitReady(leader, 30*time.Second)
	requireSameOnAllNodes(t, c, cl)

	// No credentials, no connection: the server's own 401.
	anon, err := client.New([]string{c.Nodes[0].URL()}, client.WithCAFile(c.CAFile()), client.WithMultiplex(1))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	_, err = anon.Get(ctx, "m", "k0-0")
	if ce := wantAPIError(t, err, 401); ce.Code != "unauthenticated" {
		t.Fatalf("upgrade without credentials: %v", err)
	}
}
