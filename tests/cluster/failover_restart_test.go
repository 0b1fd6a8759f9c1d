package cluster_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

var (
	failoverRounds = flag.Int("failover.rounds", 4, "leader kill/restart rounds per TestLeaderFailoverRestarts variant")
	failoverHeavy  = flag.Bool("failover.heavy", false, "also run TestLeaderFailoverRestarts with default snapshot settings and with the bolt log store")
	failoverKeep   = flag.String("failover.keep", "", "copy the node folders of a failed run under this directory")
)

// TestLeaderFailoverRestarts repeatedly SIGKILLs the leader under write load
// and restarts it a moment later; once it has caught up it is SIGKILLed and
// restarted once more. Every restart must stay up and the cluster must
// converge.
//
// Regression test for a "failed to get log" panic on restart seen in
// benchmark failover trials: a killed leader comes back with uncommitted
// entries the new leader overwrites, so Raft deletes that log suffix
// ("clearing log suffix"). raft-wal v0.4.0 then marked its tail segment
// sealed without writing the segment's index block, so after the next
// restart none of that segment's entries could be read and Raft panicked
// (hashicorp/raft-wal#31, fixed in v0.4.1). The default variant takes no
// snapshots, so the truncated segment stays above the snapshot index and
// must be read back on restart.
func TestLeaderFailoverRestarts(t *testing.T) {
	small := []string{"--snapshot-threshold", "64", "--trailing-logs", "32", "--snapshot-interval", "100ms"}
	none := []string{"--snapshot-threshold", "10000000", "--snapshot-interval", "1h"}
	variants := []struct {
		name  string
		args  []string
		heavy bool
	}{
		{"no-snapshots", none, false},
		{"small-snapshots", small, true},
		{"defaults", nil, true},
		{"no-snapshots-bolt", append(none[:len(none):len(none)], "--log-store", "bolt"), true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			if v.heavy && !*failoverHeavy {
				t.Skip("opt-in: -failover.heavy")
			}
			runFailoverRestarts(t, v.args, *failoverRounds)
		})
	}
}

func runFailoverRestarts(t *testing.T, args []string, rounds int) {
	c := harness.Start(t, harness.Options{Nodes: 3, ExtraArgs: args})
	t.Cleanup(func() {
		if t.Failed() && *failoverKeep != "" {
			for _, n := range c.Nodes {
				dst := filepath.Join(*failoverKeep, strings.ReplaceAll(t.Name(), "/", "_"), n.ID)
				os.MkdirAll(filepath.Dir(dst), 0o755)
				if out, err := exec.Command("cp", "-a", n.Dir, dst).CombinedOutput(); err != nil {
					t.Logf("keeping %s: %v %s", n.ID, err, out)
				} else {
					t.Logf("kept %s in %s", n.ID, dst)
				}
			}
		}
	})
	cl := clusterClient(t, c, client.WithTimeout(3*time.Second))
	createTable(t, cl, tandem.TableSchema{Name: "kv", Attributes: map[string]tandem.AttrType{"id": "string", "v": "int"}})

	const writers = 16
	var (
		stop  atomic.Bool
		acked atomic.Int64
		wg    sync.WaitGroup
	)
	ctx := t.Context()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("k%d-%d", w, i%500)
				if _, err := cl.Put(ctx, "kv", key, map[string]any{"v": i}); err == nil {
					acked.Add(1)
				} else {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	for round := 1; round <= rounds; round++ {
		time.Sleep(700 * time.Millisecond)
		leader := c.Leader(15 * time.Second)
		t.Logf("round %d: killing leader %s after %d acknowledged writes", round, leader.ID, acked.Load())
		c.Kill(leader)
		// A new leader takes over and the log moves on.
		c.Leader(15 * time.Second)
		time.Sleep(1500 * time.Millisecond)
		restartAndWatch(t, c, leader, fmt.Sprintf("round %d: restart", round))
		// Once it has caught up (its uncommitted tail, if any, replaced by
		// the new leader's entries), crash it again: the next start reads
		// back the log as the previous run left it.
		waitCaughtUp(t, c, leader)
		c.Kill(leader)
		restartAndWatch(t, c, leader, fmt.Sprintf("round %d: second restart", round))
	}
	suffixes := 0
	for _, n := range c.Nodes {
		suffixes += strings.Count(n.ReadLog(), "clearing log suffix")
	}
	t.Logf("Raft cleared a log suffix %d times on restarted nodes", suffixes)
	stop.Store(true)
	wg.Wait()
	for _, n := range c.Nodes {
		if exited, err := n.Exited(); exited {
			t.Fatalf("%s exited (%v); log tail:\n%s", n.ID, err, harness.Tail(n.LogPath(), 30))
		}
		if strings.Contains(n.ReadLog(), "panic") {
			t.Fatalf("%s logged a panic; log tail:\n%s", n.ID, harness.Tail(n.LogPath(), 30))
		}
	}
	idx, hash := c.WaitConverged(30 * time.Second)
	t.Logf("%d rounds, %d acknowledged writes; all nodes at index %d, ledger %.12s", rounds, acked.Load(), idx, hash)
}

// restartAndWatch starts n and fails the test if the process exits within
// a few seconds (a replay panic happens as soon as Raft reads its log) or
// does not become ready.
func restartAndWatch(t *testing.T, c *harness.Cluster, n *harness.Node, what string) {
	t.Helper()
	c.Start(n)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if exited, err := n.Exited(); exited {
			t.Fatalf("%s: %s exited (%v); log tail:\n%s", what, n.ID, err, harness.Tail(n.LogPath(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.WaitReady(n, 30*time.Second)
	if exited, err := n.Exited(); exited {
		t.Fatalf("%s: %s exited (%v); log tail:\n%s", what, n.ID, err, harness.Tail(n.LogPath(), 30))
	}
}

// waitCaughtUp waits until n has applied at least what the leader had
// applied when the call started.
func waitCaughtUp(t *testing.T, c *harness.Cluster, n *harness.Node) {
	t.Helper()
	leader := c.Leader(15 * time.Second)
	st, err := c.NodeStatus(leader)
	if err != nil {
		t.Fatalf("status of leader %s: %v", leader.ID, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := c.NodeStatus(n)
		if err == nil && got.AppliedIndex >= st.AppliedIndex {
			return
		}
		if exited, xerr := n.Exited(); exited {
			t.Fatalf("%s exited while catching up (%v); log tail:\n%s", n.ID, xerr, harness.Tail(n.LogPath(), 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach index %d within 30s (status %+v, %v)", n.ID, st.AppliedIndex, got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
