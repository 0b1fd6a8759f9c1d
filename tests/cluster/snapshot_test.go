package cluster_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// Snapshot settings small enough that a few hundred writes compact the log.
const trailingLogs = 20

var snapshotArgs = []string{
	"--snapshot-threshold", "50",
	"--trailing-logs", strconv.Itoa(trailingLogs),
	"--snapshot-interval", "200ms",
}

// snapshotIndexes returns the log indexes of the complete Raft snapshots
// in a node's data folder (hashicorp/raft names them term-index-millis).
func snapshotIndexes(t *testing.T, n *harness.Node) []uint64 {
	t.Helper()
	dir := filepath.Join(n.Dir, "data", "raft", "snapshots")
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("read %s: %v", dir, err)
	}
	var out []uint64
	for _, e := range entries {
		parts := strings.Split(e.Name(), "-")
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") || len(parts) != 3 {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "meta.json")); err != nil {
			continue
		}
		if idx, err := strconv.ParseUint(parts[1], 10, 64); err == nil {
			out = append(out, idx)
		}
	}
	return out
}

func maxIndex(xs []uint64) uint64 {
	var m uint64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// TestSnapshotCatchUp stops a follower, writes until the leader has
// compacted its log past the follower's last entry, and restarts the
// follower: it can only catch up by installing a snapshot. A brand-new
// node joining the loaded cluster gets everything the same way.
func TestSnapshotCatchUp(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3, ExtraArgs: snapshotArgs})
	cl := clusterClient(t, c)
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{
		Name:       "recs",
		Attributes: map[string]tandem.AttrType{"id": "string", "n": "int", "body": "string"},
		Indexes:    []string{"n"},
	})

	leader := c.Leader(10 * time.Second)
	fs := followers(c, leader)
	lagger, other := fs[0], fs[1]
	stoppedAt, _ := c.WaitConverged(10 * time.Second)
	c.Stop(lagger)
	t.Logf("stopped %s at index %d", lagger.ID, stoppedAt)

	// 600 records in transactions of 5, through the two live nodes in turn.
	const records, perTx = 600, 5
	live := []*client.Client{cl.Node(nodeIndex(t, c, leader)), cl.Node(nodeIndex(t, c, other))}
	body := strings.Repeat("x", 200)
	var lastIdx uint64
	for i := 0; i < records; i += perTx {
		var ops []tandem.Op
		for j := i; j < i+perTx; j++ {
			ops = append(ops, tandem.Op{Op: tandem.OpInsert, Table: "recs",
				Record: json.RawMessage(fmt.Sprintf(`{"id": "r%04d", "n": %d, "body": %q}`, j, j, body))})
		}
		idx, err := live[(i/perTx)%2].Tx(ctx, tandem.Tx{Ops: ops})
		if err != nil {
			t.Fatalf("tx at record %d: %v", i, err)
		}
		lastIdx = idx
	}
	// The live nodes' logs must no longer hold the entries after stoppedAt:
	// each keeps trailingLogs entries behind its latest snapshot.
	waitFor(t, 20*time.Second, "the live nodes compact their logs past the stopped follower", func() string {
		for _, n := range []*harness.Node{leader, other} {
			if snap := maxIndex(snapshotIndexes(t, n)); snap <= stoppedAt+trailingLogs+1 {
				return fmt.Sprintf("latest snapshot of %s at index %d; need above %d", n.ID, snap, stoppedAt+trailingLogs+1)
			}
		}
		return ""
	})
	t.Logf("wrote up to index %d; snapshots: %s at %v, %s at %v", lastIdx, leader.ID, snapshotIndexes(t, leader), other.ID, snapshotIndexes(t, other))
	// raft-wal keeps serving compacted entries from its open tail segment
	// until the log is reopened, so a leader that never restarted could
	// still replicate them one by one. Restart the live nodes so that the
	// stopped follower can only catch up from a snapshot.
	for _, n := range []*harness.Node{leader, other} {
		c.Stop(n)
	}
	for _, n := range []*harness.Node{leader, other} {
		c.Start(n)
	}
	for _, n := range []*harness.Node{leader, other} {
		c.WaitReady(n, 30*time.Second)
	}

	c.Start(lagger)
	c.WaitReady(lagger, 30*time.Second)
	idx, _ := c.WaitConverged(30 * time.Second)
	if idx < lastIdx {
		t.Fatalf("converged at %d, below the last write %d", idx, lastIdx)
	}
	if got := maxIndex(snapshotIndexes(t, lagger)); got <= stoppedAt {
		t.Errorf("%s holds no snapshot past index %d (has %v); it cannot have caught up from one", lagger.ID, stoppedAt, snapshotIndexes(t, lagger))
	}
	d := requireSameOnAllNodes(t, c, cl)
	checkRecs(t, d, records, body)

	// A new node joins the loaded cluster and receives all of it.
	n4 := c.NewNode(false)
	c.Start(n4)
	c.WaitReady(n4, 30*time.Second)
	c.WaitMembers(4, 30*time.Second)
	c.WaitConverged(30 * time.Second)
	cl = clusterClient(t, c)
	if got := snapshotIndexes(t, n4); len(got) == 0 {
		t.Errorf("%s joined without installing a snapshot", n4.ID)
	}
	d = requireSameOnAllNodes(t, c, cl)
	checkRecs(t, d, records, body)
	res, err := cl.Node(3).Insert(ctx, "recs", map[string]any{"id": "from-n4", "n": -1})
	if err != nil {
		t.Fatalf("write through the new node: %v", err)
	}
	for i := range c.Nodes {
		if _, err := cl.Node(i).Get(ctx, "recs", "from-n4", client.MinIndex(res.Index)); err != nil {
			t.Errorf("%s reading the new node's write: %v", c.Nodes[i].ID, err)
		}
	}

	// Power loss with compacted logs: every node restarts from its own
	// snapshot and log tail to the same state.
	before := requireSameOnAllNodes(t, c, cl)
	for _, n := range c.Nodes {
		c.Kill(n)
	}
	for _, n := range c.Nodes {
		c.Start(n)
	}
	for _, n := range c.Nodes {
		c.WaitReady(n, 30*time.Second)
	}
	c.WaitConverged(30 * time.Second)
	after := requireSameOnAllNodes(t, c, cl)
	if diff := diffDumps(before, after); diff != "" {
		t.Errorf("state changed across a restart of every node:\n%s", diff)
	}
}

// checkRecs checks that d holds exactly the records the snapshot test wrote.
func checkRecs(t *testing.T, d dump, n int, body string) {
	t.Helper()
	recs := d.Records["recs"]
	if len(recs) != n {
		t.Errorf("recs holds %d records, want %d", len(recs), n)
	}
	for i := range n {
		key := fmt.Sprintf("r%04d", i)
		var rec struct {
			N    int    `json:"n"`
			Body string `json:"body"`
		}
		if err := json.Unmarshal([]byte(recs[key]), &rec); err != nil || rec.N != i || rec.Body != body {
			t.Errorf("recs/%s = %.80s; want n=%d", key, recs[key], i)
			return
		}
	}
}

// TestStoreBehindSnapshotIsRestored: a follower persists a snapshot from the
// leader before restoring it into its store, so a crash in between leaves a
// local snapshot ahead of the store. Raft must then restore that snapshot on
// start rather than assume it applied (the entries the store lacks are no
// longer in the log). Emptying a stopped node's store reproduces the state.
func TestStoreBehindSnapshotIsRestored(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3, ExtraArgs: snapshotArgs})
	cl := clusterClient(t, c)
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{Name: "recs", Attributes: map[string]tandem.AttrType{"n": "int"}, Indexes: []string{"n"}})
	for i := 0; i < 300; i += 5 {
		var ops []tandem.Op
		for j := i; j < i+5; j++ {
			ops = append(ops, tandem.Op{Op: tandem.OpUpsert, Table: "recs", Record: json.RawMessage(fmt.Sprintf(`{"id": "r%04d", "n": %d}`, j, j))})
		}
		if _, err := cl.Tx(ctx, tandem.Tx{Ops: ops}); err != nil {
			t.Fatal(err)
		}
	}
	leader := c.Leader(10 * time.Second)
	victim := followers(c, leader)[0]
	waitFor(t, 20*time.Second, "the follower takes a snapshot and compacts its log", func() string {
		if snap := maxIndex(snapshotIndexes(t, victim)); snap <= trailingLogs+10 {
			return fmt.Sprintf("latest snapshot of %s at index %d", victim.ID, snap)
		}
		return ""
	})
	want := requireSameOnAllNodes(t, c, cl)
	c.Stop(victim)
	if err := os.RemoveAll(filepath.Join(victim.Dir, "data", "store")); err != nil {
		t.Fatal(err)
	}
	c.Start(victim)
	c.WaitReady(victim, 30*time.Second)
	c.WaitConverged(30 * time.Second)
	if diff := diffDumps(want, dumpAll(t, cl.Node(nodeIndex(t, c, victim)), client.Local())); diff != "" {
		t.Fatalf("after restart with its store behind its snapshot, %s serves different data:\n%s", victim.ID, diff)
	}
}
