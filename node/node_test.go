package node_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/node"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startCluster runs n nodes in this process (no package-level state makes
// that possible), the first bootstrapping and the others joining it.
//
// The nodes run insecure: these tests are about replication and run under
// the race detector; security_test.go and tests/cluster cover TLS and
// authentication.
func startCluster(t *testing.T, n int) ([]*node.Node, *client.Client) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var nodes []*node.Node
	var addrs []string
	for i := 0; i < n; i++ {
		opts := node.Options{
			ID:       fmt.Sprintf("n%d", i+1),
			DataDir:  t.TempDir(),
			HTTPAddr: freeAddr(t),
			RaftAddr: freeAddr(t),
			Logger:   quiet,
			Insecure: true, // these tests are about replication; security_test.go covers TLS
		}
		if i == 0 {
			opts.Bootstrap = true
		} else {
			opts.Join = []string{addrs[0]}
		}
		nd, err := node.Open(opts)
		if err != nil {
			t.Fatalf("open node %d: %v", i+1, err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes = append(nodes, nd)
		addrs = append(addrs, nd.HTTPAddr())
	}
	c, err := client.New(addrs)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := range nodes {
		for c.Node(i).Ready(context.Background()) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("node %d not ready", i+1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for {
		st, err := c.Cluster(context.Background())
		if err == nil && len(st.Nodes) == n {
			registered := 0
			for _, m := range st.Nodes {
				if m.HTTPAddr != "" {
					registered++
				}
			}
			if registered == n {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not form: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nodes, c
}

// TestInProcessCluster drives concurrent writes through every node of an
// in-process cluster and checks that linearizable reads on every node see
// every acknowledged write. Run with -race, it covers the concurrency of
// the proposer, forwarding, read-index batching and apply together.
func TestInProcessCluster(t *testing.T) {
	nodes, c := startCluster(t, 3)
	ctx := context.Background()
	if _, _, err := c.CreateTable(ctx, tandem.TableSchema{Name: "kv", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"}}); err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			nc := c.Node(w % len(nodes))
			for i := 0; i < perWriter; i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				if _, err := nc.Put(ctx, "kv", key, map[string]any{"n": i}); err != nil {
					errs <- fmt.Errorf("put %s via node %d: %w", key, w%len(nodes)+1, err)
					return
				}
				// Read it back linearizably on another node, at once.
				if _, err := c.Node((w+1)%len(nodes)).Get(ctx, "kv", key); err != nil {
					errs <- fmt.Errorf("linearizable read of %s right after its write: %w", key, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range nodes {
		res, err := c.Node(i).Query(ctx, "kv", map[string][]string{"count": {"true"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Count == nil || *res.Count != writers*perWriter {
			t.Fatalf("node %d counts %v records; want %d", i+1, res.Count, writers*perWriter)
		}
	}
}
