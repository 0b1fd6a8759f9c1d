package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// opTimeout bounds every client call: a call to a paused node must give
// up (with an unknown outcome) rather than hang the worker.
const opTimeout = 5 * time.Second

// commitTimeout is how long the server waits for a write's commit, so
// that it usually answers 504 before the client gives up.
const commitTimeout = 4 * time.Second

// With partitions, a call to a cut-off node hangs until it times out, and
// every worker soon has one: with the timeouts above the workers would
// spend whole partitions waiting, and few calls would reach either side.
const (
	netOpTimeout     = 2 * time.Second
	netCommitTimeout = 1500 * time.Millisecond
)

// member is one node of the run: its process, a client pinned to it, and
// what the nemesis has done to it.
type member struct {
	node *harness.Node
	cl   *client.Client
	// inc counts the starts of the node's process; a read answered with
	// the same count it was called with was served by one process.
	inc     atomic.Int64
	down    atomic.Bool // killed by the nemesis, to be restarted
	paused  atomic.Bool
	removed atomic.Bool // no longer a member; its process is gone
}

// run is one cluster under one fault, shared by the workloads and the
// nemesis.
type run struct {
	t     *testing.T
	c     *harness.Cluster
	seed  uint64
	start time.Time

	mu       sync.Mutex
	members  []*member // every node started, in c.Nodes order
	faults   []faultEvent
	keepData []*harness.Node // nodes whose data the failure folder keeps

	// opTimeout and commitTimeout are the clients' and the writes'
	// timeouts in this run.
	opTimeout, commitTimeout time.Duration

	failed *failures // what failed, repeated at the end of the output

	processes   atomic.Int64 // porcupine client ids handed out
	partitioned atomic.Bool  // the nemesis has links cut or lossy
}

// faultEvent is one step of the nemesis, for the failure folder and the
// visualization.
type faultEvent struct {
	Start int64  `json:"start"` // ns since the run started
	End   int64  `json:"end"`
	Kind  string `json:"kind"`
	Node  string `json:"node,omitempty"`
	Note  string `json:"note,omitempty"`
	// Minority are the nodes a partition left without a majority;
	// CutFrom and CutUntil bound the time they surely were: from when the
	// rules were in force until healing began.
	Minority []string `json:"minority,omitempty"`
	CutFrom  int64    `json:"cut_from,omitempty"`
	CutUntil int64    `json:"cut_until,omitempty"`
}

// clusterArgs make snapshots frequent enough that restarts, catch-up and
// new members go through them during a short run.
var clusterArgs = []string{"--snapshot-threshold", "400", "--trailing-logs", "100", "--snapshot-interval", "1s"}

func newRun(t *testing.T, seed uint64, nodes int, network bool) *run {
	args := slices.Clone(clusterArgs)
	if *logStore != "" {
		args = append(args, "--log-store", *logStore)
	}
	c := harness.Start(t, harness.Options{Nodes: nodes, ExtraArgs: args, Network: network})
	r := &run{t: t, c: c, seed: seed, opTimeout: opTimeout, commitTimeout: commitTimeout}
	if network {
		r.opTimeout, r.commitTimeout = netOpTimeout, netCommitTimeout
	}
	for _, n := range c.Nodes {
		m := r.addMember(n)
		m.inc.Store(1)
	}
	r.start = time.Now()
	return r
}

// addMember registers a node of c.Nodes (not started by the run yet).
//
// Every other member's client sends over a multiplexed connection (GET
// /v1/mux) instead of HTTP/1.1, so every fault also meets that transport:
// a connection that breaks with its node, or hangs with a partition.
func (r *run) addMember(n *harness.Node) *member {
	opts := append(r.c.ClientOptions(), client.WithTimeout(r.opTimeout))
	r.mu.Lock()
	if len(r.members)%2 == 1 {
		opts = append(opts, client.WithMultiplex(1))
	}
	r.mu.Unlock()
	cl, err := client.New([]string{n.URL()}, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	m := &member{node: n, cl: cl}
	r.mu.Lock()
	r.members = append(r.members, m)
	r.mu.Unlock()
	return m
}

// now is the time since the run started, the clock of every history.
func (r *run) now() int64 { return time.Since(r.start).Nanoseconds() }

// rand returns a generator for one goroutine of the run, derived from the
// run's seed.
func (r *run) rand(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(r.seed, stream))
}

// newProcess hands out a porcupine client id.
func (r *run) newProcess() int { return int(r.processes.Add(1) - 1) }

// current returns the members that have not been removed.
func (r *run) current() []*member {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*member
	for _, m := range r.members {
		if !m.removed.Load() {
			out = append(out, m)
		}
	}
	return out
}

// pick returns a random current member, whatever its state: clients keep
// calling nodes that are down or paused, as real clients would.
func (r *run) pick(rng *rand.Rand) *member {
	ms := r.current()
	if len(ms) == 0 { // the test is failing: every node is gone
		r.mu.Lock()
		ms = slices.Clone(r.members)
		r.mu.Unlock()
	}
	return ms[rng.IntN(len(ms))]
}

func (r *run) logFault(ev faultEvent) {
	r.mu.Lock()
	r.faults = append(r.faults, ev)
	r.mu.Unlock()
	r.t.Logf("%7.3fs nemesis: %s %s %s", float64(ev.Start)/1e9, ev.Kind, ev.Node, ev.Note)
}

func (r *run) faultLog() []faultEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.faults)
}

// startNode (re)starts a member's process.
func (r *run) startNode(m *member) {
	m.inc.Add(1)
	r.c.Start(m.node)
}

// ready reports whether a node answers /readyz with 200.
func ready(ctx context.Context, m *member) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return m.cl.Ready(ctx) == nil
}

// waitReady waits up to d for every given member to be ready, and reports
// those that are not. Unlike the harness's, it never fails the test: the
// nemesis logs a slow node and goes on.
func waitReady(d time.Duration, ms ...*member) []string {
	deadline := time.Now().Add(d)
	var notReady []string
	for _, m := range ms {
		for !ready(context.Background(), m) {
			if time.Now().After(deadline) {
				notReady = append(notReady, m.node.ID)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return notReady
}

// leader returns the current member that says it leads, or nil.
func (r *run) leader() *member {
	for _, m := range r.current() {
		if !m.node.Running() || m.paused.Load() {
			continue
		}
		if st, err := r.c.NodeStatus(m.node); err == nil && st.Leader {
			return m
		}
	}
	return nil
}

// sleep waits for d or until ctx is done, and reports whether it waited
// the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// between returns a random duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// readOption returns the client option for a consistency level.
func readOption(consistency string, minIndex uint64) client.ReadOption {
	switch consistency {
	case "local":
		return client.Local()
	case "min_index":
		return client.MinIndex(max(minIndex, 1))
	}
	return client.Linearizable()
}

// errString is err's text, or "".
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// failures collects the messages that failed a run.
type failures struct {
	mu   sync.Mutex
	msgs []string
}

func (f *failures) add(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, msg)
}

// String lists the first messages, one a line.
func (f *failures) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	const most = 20
	var b strings.Builder
	for i, m := range f.msgs {
		if i == most {
			fmt.Fprintf(&b, "... and %d more\n", len(f.msgs)-most)
			break
		}
		b.WriteString("  " + m + "\n")
	}
	if len(f.msgs) == 0 {
		b.WriteString("  (see the errors above)\n")
	}
	return b.String()
}

// errorf fails t with the message and keeps it for the run's recap.
func (r *run) errorf(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.failed.add(msg)
	t.Error(msg)
}

// fatalf is errorf that stops t.
func (r *run) fatalf(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.failed.add(msg)
	t.Fatal(msg)
}
