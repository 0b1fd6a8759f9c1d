package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/tandemdb/tandem"
)

// A fault is one kind of nemesis: it injects faults of its kind into r
// until ctx is done, on the test goroutine while the workloads' clients
// run on theirs. It must leave every member it touched either healthy or
// marked (down, paused) for heal to repair. A node that is slow to come
// back is logged, not fatal: the checks after healing decide.
type fault struct {
	name   string
	inject func(ctx context.Context, r *run, rng *rand.Rand)
	// nodes is the cluster's size (0: three).
	nodes int
	// network runs the cluster with each node in its own network
	// namespace (harness.Options.Network), which needs root.
	network bool
	// token runs the token workload in the short run too; long runs run
	// it under every fault. (Deploying and checking it costs a few
	// seconds a fault; the short run keeps it where it adds most: leader
	// changes, new members, cut links.)
	token bool
}

var faults = []fault{
	{name: "crash", inject: crashNodes, token: true},
	{name: "pause", inject: pauseNodes},
	{name: "powerloss", inject: powerLoss},
	{name: "membership", inject: changeMembership, token: true},
	{name: "partition", inject: partitionNodes, nodes: partitionClusterSize, network: true, token: true},
}

// target picks the leader half of the time, else a random running member.
func (r *run) target(rng *rand.Rand) *member {
	if rng.IntN(2) == 0 {
		if l := r.leader(); l != nil {
			return l
		}
	}
	var up []*member
	for _, m := range r.current() {
		if m.node.Running() && !m.paused.Load() {
			up = append(up, m)
		}
	}
	if len(up) == 0 {
		return nil
	}
	return up[rng.IntN(len(up))]
}

func role(r *run, m *member) string {
	if st, err := r.c.NodeStatus(m.node); err == nil && st.Leader {
		return "leader"
	}
	return "follower"
}

// crashNodes kills one node at a time with SIGKILL and restarts it on its
// data after a random delay.
func crashNodes(ctx context.Context, r *run, rng *rand.Rand) {
	for sleep(ctx, between(rng, 500*time.Millisecond, 2500*time.Millisecond)) {
		m := r.target(rng)
		if m == nil {
			continue
		}
		ev := faultEvent{Start: r.now(), Kind: "crash", Node: m.node.ID, Note: role(r, m)}
		m.down.Store(true)
		r.c.Kill(m.node)
		sleep(ctx, between(rng, 200*time.Millisecond, 3*time.Second))
		r.startNode(m)
		m.down.Store(false)
		ev.End = r.now()
		r.logFault(ev)
		if nr := waitReady(30*time.Second, m); len(nr) > 0 {
			r.t.Logf("nemesis: %s not ready 30s after its restart%s", m.node.ID, lastPanic(m.node))
		}
	}
}

// pauseNodes freezes one node at a time with SIGSTOP, often for longer
// than an election timeout, then thaws it.
func pauseNodes(ctx context.Context, r *run, rng *rand.Rand) {
	for sleep(ctx, between(rng, 500*time.Millisecond, 2500*time.Millisecond)) {
		m := r.target(rng)
		if m == nil {
			continue
		}
		ev := faultEvent{Start: r.now(), Kind: "pause", Node: m.node.ID, Note: role(r, m)}
		m.paused.Store(true)
		r.c.Pause(m.node)
		sleep(ctx, between(rng, 300*time.Millisecond, 4*time.Second))
		r.c.Resume(m.node)
		m.paused.Store(false)
		ev.End = r.now()
		r.logFault(ev)
		waitReady(30*time.Second, m)
	}
}

// powerLoss kills every node at once, as a power cut would, and restarts
// them all.
func powerLoss(ctx context.Context, r *run, rng *rand.Rand) {
	for sleep(ctx, between(rng, 1500*time.Millisecond, 4*time.Second)) {
		ms := r.current()
		rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		ev := faultEvent{Start: r.now(), Kind: "powerloss"}
		for _, m := range ms {
			m.down.Store(true)
			r.c.Kill(m.node)
		}
		sleep(ctx, between(rng, 100*time.Millisecond, 2*time.Second))
		for _, m := range ms {
			r.startNode(m)
			m.down.Store(false)
		}
		ev.End = r.now()
		r.logFault(ev)
		for _, m := range ms {
			if nr := waitReady(30*time.Second, m); len(nr) > 0 {
				r.t.Logf("nemesis: %s not ready 30s after the power came back%s", m.node.ID, lastPanic(m.node))
			}
		}
	}
}

// changeMembership adds a node and removes one (sometimes the leader),
// alternating the order, so the cluster goes 3 -> 4 -> 3 and 3 -> 2 -> 3.
func changeMembership(ctx context.Context, r *run, rng *rand.Rand) {
	for i := 0; sleep(ctx, between(rng, 500*time.Millisecond, 2*time.Second)); i++ {
		if i%2 == 0 {
			r.addNode()
			if sleep(ctx, between(rng, 500*time.Millisecond, 2*time.Second)) {
				r.removeNode(rng)
			}
		} else {
			r.removeNode(rng)
			r.addNode()
		}
	}
}

// addNode starts a new node that joins the cluster, and waits until it is
// ready and registered.
func (r *run) addNode() {
	ev := faultEvent{Start: r.now(), Kind: "add"}
	n := r.c.NewNode(false)
	m := r.addMember(n)
	ev.Node = n.ID
	r.startNode(m)
	if nr := waitReady(30*time.Second, m); len(nr) > 0 {
		ev.Note = "not ready after 30s"
	} else if !r.waitListed(n.ID, true, 20*time.Second) {
		ev.Note = "not listed after 20s"
	}
	ev.End = r.now()
	r.logFault(ev)
}

// removeNode removes a random member through another one, waits until the
// others stop listing it, and then kills its process.
func (r *run) removeNode(rng *rand.Rand) {
	ms := r.current()
	if len(ms) < 3 {
		return
	}
	gone := r.target(rng)
	if gone == nil {
		return
	}
	ev := faultEvent{Start: r.now(), Kind: "remove", Node: gone.node.ID, Note: role(r, gone)}
	others := slices.DeleteFunc(slices.Clone(ms), func(m *member) bool { return m == gone })
	via := others[rng.IntN(len(others))]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = via.cl.RemoveNode(ctx, gone.node.ID); err == nil || strings.Contains(err.Error(), "not a member") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !r.waitListed(gone.node.ID, false, 20*time.Second) {
		ev.End = r.now()
		ev.Note += fmt.Sprintf(" (remove through %s: %v; still listed, kept)", via.node.ID, err)
		r.logFault(ev)
		return
	}
	gone.removed.Store(true)
	r.c.Kill(gone.node)
	ev.End = r.now()
	ev.Note += " via " + via.node.ID
	r.logFault(ev)
}

// waitListed waits until every other current member that answers lists
// (or, with want false, no longer lists) the node id in GET /v1/cluster.
func (r *run) waitListed(id string, want bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		agree, asked := 0, 0
		for _, m := range r.current() {
			if m.node.ID == id || !m.node.Running() {
				continue
			}
			asked++
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := m.cl.Cluster(ctx)
			cancel()
			if err != nil {
				continue
			}
			// A new node counts once its addresses are registered.
			listed := slices.ContainsFunc(st.Nodes, func(n tandem.NodeStatus) bool {
				return n.ID == id && (n.HTTPAddr != "" || !want)
			})
			if listed == want {
				agree++
			}
		}
		if asked > 0 && agree == asked {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// heal repairs whatever the nemesis left: restores cut links, thaws
// paused nodes and restarts killed ones.
func (r *run) heal() {
	if r.partitioned.Load() {
		r.c.Heal()
		r.partitioned.Store(false)
	}
	for _, m := range r.current() {
		if m.paused.Load() {
			r.c.Resume(m.node)
			m.paused.Store(false)
		}
		if m.down.Load() || !m.node.Running() {
			r.startNode(m)
			m.down.Store(false)
		}
	}
}
