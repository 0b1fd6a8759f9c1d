package cluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// TestPartitionedLeader cuts the leader off from both followers with a
// real network partition while clients still reach it. The majority
// elects a new leader and takes writes; the old leader acknowledges no
// write and serves no linearizable read while it is cut off. After healing
// it catches up: every node has the same applied index, ledger hash and
// data.
func TestPartitionedLeader(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3, Network: true})
	cl := clusterClient(t, c, client.WithTimeout(10*time.Second))
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{Name: "kv", Attributes: map[string]tandem.AttrType{"id": "string", "v": "string"}})
	if _, err := cl.Put(ctx, "kv", "k", map[string]any{"v": "before"}); err != nil {
		t.Fatal(err)
	}
	old := c.Leader(10 * time.Second)
	oldCl := cl.Node(nodeIndex(t, c, old))
	// Every node has applied "before", so the old leader's local reads
	// below have something to show.
	c.WaitConverged(10 * time.Second)

	c.Isolate(old)
	cutAt := time.Now()
	t.Logf("isolated the leader %s", old.ID)

	// A write sent to the old leader right after the cut: it may still
	// believe it leads, but it cannot reach a majority.
	lastSent := time.Now()
	_, err := oldCl.Put(ctx, "kv", "lost", map[string]any{"v": "written on the cut-off leader"}, client.CommitTimeout(3*time.Second))
	if err == nil {
		t.Fatalf("the cut-off leader %s acknowledged a write", old.ID)
	}
	if !outcomeUnknown(err) {
		t.Fatalf("write on the cut-off leader: %v; want an unknown outcome (503, 504 or a timeout)", err)
	}
	t.Logf("write on the cut-off leader: %v", err)

	newLeader := waitLeaderAmong(t, c, followers(c, old), 15*time.Second)
	t.Logf("%s leads the majority %v after the cut", newLeader.ID, time.Since(cutAt).Round(time.Millisecond))
	// The majority takes writes, through the new leader and through the
	// other follower (which forwards them).
	var acked []string
	for i, n := range followers(c, old) {
		key := fmt.Sprintf("after-%d", i)
		if _, err := cl.Node(nodeIndex(t, c, n)).Put(ctx, "kv", key, map[string]any{"v": "majority"}); err != nil {
			t.Fatalf("write %s through %s on the majority side: %v", key, n.ID, err)
		}
		acked = append(acked, key)
	}
	if _, err := cl.Node(nodeIndex(t, c, newLeader)).Put(ctx, "kv", "k", map[string]any{"v": "after"}); err != nil {
		t.Fatalf("overwrite k on the majority side: %v", err)
	}

	// The old leader, still cut off, must not acknowledge writes or serve
	// linearizable reads: k is "after" now, and it cannot know.
	for i := range 2 {
		lastSent = time.Now()
		if _, err := oldCl.Put(ctx, "kv", fmt.Sprintf("lost-%d", i), map[string]any{"v": "x"}, client.CommitTimeout(2*time.Second)); err == nil {
			t.Fatalf("the cut-off %s acknowledged a write while the majority had leader %s", old.ID, newLeader.ID)
		} else if !outcomeUnknown(err) {
			t.Fatalf("write on the cut-off %s: %v; want an unknown outcome", old.ID, err)
		}
		// With a 2s server-side timeout rather than the default 10s.
		status, err := httpStatus(ctx, c.HTTPClient(), "GET", old.URL()+"/v1/tables/kv/records/k?consistency=linearizable&timeout=2s")
		if err != nil || status == 200 {
			t.Fatalf("linearizable read on the cut-off %s: status %d, error %v; want a 503 or 504 answer", old.ID, status, err)
		}
		if i == 0 {
			t.Logf("linearizable read on the cut-off %s: status %d", old.ID, status)
		}
	}
	if st, err := c.NodeStatus(old); err != nil || st.Leader {
		t.Errorf("the cut-off %s still says it leads (%+v, %v) %v after the cut", old.ID, st, err, time.Since(cutAt).Round(time.Millisecond))
	}
	// A local read is allowed to be stale, and here must be.
	var v struct{ V string }
	getJSON(t, oldCl, "kv", "k", &v, client.Local())
	if v.V != "before" {
		t.Errorf("local read of k on the cut-off %s: %q, want the stale \"before\"", old.ID, v.V)
	}

	c.Heal()
	t.Log("healed")
	// The writes sent to the old leader have unknown outcomes: a follower
	// keeps forwarding a batch for up to the proposer's ApplyTimeout (10s)
	// after its client got 504, so one may land once the links are back.
	// Compare the nodes only once none can be in flight.
	time.Sleep(time.Until(lastSent.Add(12 * time.Second)))
	idx, hash := c.WaitConverged(60 * time.Second)
	t.Logf("converged at index %d, ledger %.12s", idx, hash)
	waitFor(t, 30*time.Second, "linearizable read on the old leader after healing", func() string {
		rec, err := oldCl.Get(ctx, "kv", "k", client.Linearizable())
		if err != nil {
			return err.Error()
		}
		if err := rec.Decode(&v); err != nil || v.V != "after" {
			return fmt.Sprintf("k = %s", rec.JSON)
		}
		return ""
	})
	d := requireSameOnAllNodes(t, c, cl)
	for _, key := range acked {
		if _, ok := d.Records["kv"][key]; !ok {
			t.Errorf("acknowledged write %s is missing after healing", key)
		}
	}
	for key := range d.Records["kv"] {
		if strings.HasPrefix(key, "lost") {
			t.Logf("%s, sent to the cut-off node with an unknown outcome, was applied after healing", key)
		}
	}
}

// waitLeaderAmong waits until one of ns says it leads and returns it.
func waitLeaderAmong(t *testing.T, c *harness.Cluster, ns []*harness.Node, d time.Duration) *harness.Node {
	t.Helper()
	var leader *harness.Node
	waitFor(t, d, "a leader among the majority", func() string {
		for _, n := range ns {
			if st, err := c.NodeStatus(n); err == nil && st.Leader {
				leader = n
				return ""
			}
		}
		return "none says it leads"
	})
	return leader
}
