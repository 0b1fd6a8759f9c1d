package cluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// crashWorkload is what concurrent writers saw while the leader crashed.
type crashWorkload struct {
	mu          sync.Mutex
	ackedKeys   map[string]int // key -> the seq written
	unknownKeys map[string]bool
	incAcked    []int // the counter values acknowledged increments wrote
	incUnknown  int
	incRejected int // 412: someone else incremented first
	readErrs    int
	errs        map[string]int // unknown outcomes by kind, for the log
}

func (w *crashWorkload) noteErr(err error) {
	kind := "transport"
	var ce *client.Error
	if errors.As(err, &ce) {
		kind = fmt.Sprintf("%d %s", ce.Status, ce.Code)
	}
	w.errs[kind]++
}

// TestLeaderCrash kills the leader with SIGKILL under concurrent inserts and
// compare-and-set increments: a new leader takes over, the old one catches
// up after a restart, no acknowledged write is lost and no increment is
// applied twice.
func TestLeaderCrash(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3})
	// Calls are bounded so a worker never hangs on a dead node; a call that
	// runs out of time has an unknown outcome.
	cl := clusterClient(t, c, client.WithTimeout(5*time.Second))
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{Name: "events", Attributes: map[string]tandem.AttrType{"id": "string", "worker": "int", "seq": "int"}})
	createTable(t, cl, tandem.TableSchema{Name: "counters", Attributes: map[string]tandem.AttrType{"id": "string", "n": "int"}})
	if _, err := cl.Put(ctx, "counters", "c", map[string]any{"n": 0}); err != nil {
		t.Fatal(err)
	}
	leader := c.Leader(10 * time.Second)

	const workers = 8
	var (
		wl        = &crashWorkload{ackedKeys: map[string]int{}, unknownKeys: map[string]bool{}, errs: map[string]int{}}
		stop      atomic.Bool
		killedAt  atomic.Int64 // UnixNano of the kill, 0 before
		recovered atomic.Int64 // UnixNano when the first write started after the kill succeeded
		ackedPre  atomic.Int64 // writes acknowledged before the kill
		wg        sync.WaitGroup
	)
	succeeded := func(start time.Time) {
		k := killedAt.Load()
		if k == 0 {
			ackedPre.Add(1)
			return
		}
		if start.UnixNano() > k {
			recovered.CompareAndSwap(0, time.Now().UnixNano())
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				start := time.Now()
				if i%2 == 0 {
					key := fmt.Sprintf("w%d-%d", w, i)
					_, err := cl.Insert(ctx, "events", map[string]any{"id": key, "worker": w, "seq": i})
					wl.mu.Lock()
					switch {
					case err == nil:
						wl.ackedKeys[key] = i
						succeeded(start)
					case outcomeUnknown(err):
						wl.unknownKeys[key] = true
						wl.noteErr(err)
					default:
						t.Errorf("insert %s: %v (a unique key cannot conflict; no client error expected)", key, err)
					}
					wl.mu.Unlock()
					continue
				}
				rec, err := cl.Get(ctx, "counters", "c")
				if err != nil {
					wl.mu.Lock()
					wl.readErrs++
					wl.mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var cur struct {
					N int `json:"n"`
				}
				if err := rec.Decode(&cur); err != nil {
					t.Errorf("counter %s: %v", rec.JSON, err)
					return
				}
				_, err = cl.Put(ctx, "counters", "c", map[string]any{"n": cur.N + 1, "by": w}, client.IfMatch(rec.Version))
				wl.mu.Lock()
				switch {
				case err == nil:
					wl.incAcked = append(wl.incAcked, cur.N+1)
					succeeded(start)
				case client.IsCode(err, tandem.CodePreconditionFailed):
					wl.incRejected++
				case outcomeUnknown(err):
					wl.incUnknown++
					wl.noteErr(err)
				default:
					t.Errorf("increment: %v", err)
				}
				wl.mu.Unlock()
			}
		}()
	}

	time.Sleep(1500 * time.Millisecond)
	t.Logf("killing leader %s (SIGKILL) after %d acknowledged writes", leader.ID, ackedPre.Load())
	killedAt.Store(time.Now().UnixNano())
	c.Kill(leader)
	deadline := time.Now().Add(30 * time.Second)
	for recovered.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r := recovered.Load(); r != 0 {
		time.Sleep(1500 * time.Millisecond) // keep writing under the new leader
	}
	stop.Store(true)
	wg.Wait()
	if ackedPre.Load() == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}
	r := recovered.Load()
	if r == 0 {
		t.Fatal("no write succeeded within 30s of killing the leader")
	}
	newLeader := c.Leader(10 * time.Second)
	failover := time.Duration(r - killedAt.Load())
	t.Logf("failover: first successful write %v after the kill; new leader %s", failover.Round(time.Millisecond), newLeader.ID)
	// With 1s election timeouts a new leader takes writes within a few
	// seconds; 10s means writes waited for a commit timeout somewhere.
	if failover > 8*time.Second {
		t.Errorf("writes resumed %v after the kill; want well under 8s", failover)
	}
	if newLeader == leader {
		t.Fatalf("the killed node %s is still reported leader", leader.ID)
	}
	// The survivors found the leader's Raft port closed and checked for a
	// new leader without waiting for their follower timers
	// (consensus/deadleader.go).
	probed := 0
	for _, n := range c.Nodes {
		if n != leader && strings.Contains(n.ReadLog(), deadLeaderLog) {
			probed++
		}
	}
	if probed == 0 {
		t.Errorf("no survivor logged %q after the leader's SIGKILL", deadLeaderLog)
	}

	// The old leader restarts on its data and catches up.
	c.Start(leader)
	c.WaitReady(leader, 30*time.Second)
	idx, hash := c.WaitConverged(30 * time.Second)
	t.Logf("after restart all nodes at index %d, ledger %.12s", idx, hash)

	wl.mu.Lock()
	defer wl.mu.Unlock()
	t.Logf("inserts: %d acknowledged, %d unknown; increments: %d acknowledged, %d unknown, %d lost a race; %d failed reads; unknown outcomes %v",
		len(wl.ackedKeys), len(wl.unknownKeys), len(wl.incAcked), wl.incUnknown, wl.incRejected, wl.readErrs, wl.errs)

	d := requireSameOnAllNodes(t, c, cl)
	events := d.Records["events"]
	for key, seq := range wl.ackedKeys {
		raw, ok := events[key]
		if !ok {
			t.Errorf("acknowledged insert %s is missing", key)
			continue
		}
		var got struct {
			Seq int `json:"seq"`
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil || got.Seq != seq {
			t.Errorf("events/%s = %s; want seq %d", key, raw, seq)
		}
	}
	for key := range events {
		if _, ok := wl.ackedKeys[key]; !ok && !wl.unknownKeys[key] {
			t.Errorf("events/%s exists but was never written", key)
		}
	}

	var counter struct {
		N int `json:"n"`
	}
	if err := json.Unmarshal([]byte(d.Records["counters"]["c"]), &counter); err != nil {
		t.Fatalf("counter: %v", err)
	}
	acked := len(wl.incAcked)
	if counter.N < acked || counter.N > acked+wl.incUnknown {
		t.Errorf("counter = %d; want between %d acknowledged and %d acknowledged+unknown increments", counter.N, acked, acked+wl.incUnknown)
	}
	// Each acknowledged compare-and-set wrote a value no other did: two
	// acknowledgements of the same value would be a lost update.
	sort.Ints(wl.incAcked)
	for i := 1; i < len(wl.incAcked); i++ {
		if wl.incAcked[i] == wl.incAcked[i-1] {
			t.Errorf("two acknowledged increments both wrote n=%d", wl.incAcked[i])
		}
	}
	if acked > 0 && wl.incAcked[acked-1] > counter.N {
		t.Errorf("an acknowledged increment wrote n=%d, above the final %d", wl.incAcked[acked-1], counter.N)
	}

	// Every node reports the same applied index and ledger hash, also in
	// the cluster view.
	waitFor(t, 10*time.Second, "cluster view agrees", func() string {
		st, err := cl.Cluster(ctx)
		if err != nil {
			return err.Error()
		}
		if len(st.Nodes) != 3 {
			return fmt.Sprintf("%d nodes", len(st.Nodes))
		}
		for _, n := range st.Nodes {
			if n.State == "unreachable" || n.AppliedIndex != idx || n.LedgerHash != hash {
				return fmt.Sprintf("%+v", st.Nodes)
			}
		}
		return ""
	})

	// And the cluster still takes writes on every node.
	for i := range c.Nodes {
		res, err := cl.Node(i).Insert(ctx, "events", map[string]any{"id": "after-" + c.Nodes[i].ID})
		if err != nil {
			t.Errorf("write through %s after recovery: %v", c.Nodes[i].ID, err)
			continue
		}
		for j := range c.Nodes {
			if _, err := cl.Node(j).Get(ctx, "events", res.Key, client.MinIndex(res.Index)); err != nil {
				t.Errorf("%s reading %s at its index: %v", c.Nodes[j].ID, res.Key, err)
			}
		}
	}
}

// deadLeaderLog is what a follower logs when its leader's Raft port
// refuses connections.
const deadLeaderLog = "the leader's Raft port refuses connections"

// TestPausedLeader stops the leader's process (SIGSTOP) for two seconds: its
// port still completes TCP handshakes, so the followers must not take it
// for dead, and elect a new leader on Raft's own timers; once resumed, the
// old leader follows and the cluster converges with every write.
func TestPausedLeader(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3})
	cl := clusterClient(t, c, client.WithTimeout(5*time.Second))
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{Name: "kv", Attributes: map[string]tandem.AttrType{"id": "string"}})
	leader := c.Leader(10 * time.Second)
	if _, err := cl.Put(ctx, "kv", "before", map[string]any{"v": 1}); err != nil {
		t.Fatal(err)
	}
	c.Pause(leader)
	paused := time.Now()
	var newLeader *harness.Node
	waitFor(t, 20*time.Second, "a new leader while the old one is paused", func() string {
		for _, n := range c.Nodes {
			if n == leader {
				continue
			}
			if st, err := c.NodeStatus(n); err == nil && st.Leader {
				newLeader = n
				return ""
			}
		}
		return "no leader among the running nodes"
	})
	// Through the new leader: a request to the paused node would hang.
	lc, err := client.New([]string{newLeader.URL()}, append(c.ClientOptions(), client.WithTimeout(5*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if _, err := lc.Put(ctx, "kv", "during", map[string]any{"v": 2}); err != nil {
		t.Fatalf("write with the old leader paused: %v", err)
	}
	if d := time.Since(paused); d < 2*time.Second {
		time.Sleep(2*time.Second - d)
	}
	c.Resume(leader)
	for _, n := range c.Nodes {
		if n != leader && strings.Contains(n.ReadLog(), deadLeaderLog) {
			t.Errorf("%s took the paused leader %s for dead: its log has %q", n.ID, leader.ID, deadLeaderLog)
		}
	}
	t.Logf("new leader %s", newLeader.ID)
	if _, err := cl.Put(ctx, "kv", "after", map[string]any{"v": 3}); err != nil {
		t.Fatalf("write after the resume: %v", err)
	}
	c.WaitConverged(30 * time.Second)
	requireSameOnAllNodes(t, c, cl)
}
