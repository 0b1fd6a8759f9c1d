package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tandemdb/tandem/tests/chaos/checker"
	"github.com/tandemdb/tandem/tests/harness"
)

// partitionNodes' cluster size: with five nodes the leader can be cut off
// together with a follower, so a stale leader still has a follower that
// forwards writes and read-index requests to it.
const partitionClusterSize = 5

// partitionKinds are the network faults partitionNodes chooses from.
var partitionKinds = []string{"isolate-follower", "isolate-leader", "split", "split", "bridge", "lossy"}

// partitionNodes cuts real network links between the nodes (each runs in
// its own network namespace) while the clients keep reaching every node,
// holds the cut for 0.5–5 s (often several election timeouts), heals it,
// and repeats:
//
//   - isolate-follower: one follower loses every peer;
//   - isolate-leader: the leader loses every peer. It keeps taking client
//     requests and believes it leads until its lease runs out; the
//     majority elects a new leader. Writes and linearizable reads on the
//     old leader must fail or time out, never succeed with stale data;
//   - split: the leader and one follower on the minority side (2|3): the
//     follower keeps forwarding writes and read-index requests to a
//     leader that cannot commit;
//   - bridge: the leader loses one follower only, the others see both (a
//     non-transitive partition);
//   - lossy: the leader drops 20–50% of its packets to and from its peers.
func partitionNodes(ctx context.Context, r *run, rng *rand.Rand) {
	for sleep(ctx, between(rng, 500*time.Millisecond, 2*time.Second)) {
		ms := r.current()
		leader := r.leader()
		if leader == nil || len(ms) < 3 {
			continue // an election is going on: cut a settled cluster
		}
		var followers []*member
		for _, m := range ms {
			if m != leader {
				followers = append(followers, m)
			}
		}
		f := followers[rng.IntN(len(followers))]
		ev := faultEvent{Start: r.now(), Kind: partitionKinds[rng.IntN(len(partitionKinds))]}
		if ev.Kind == "split" && len(ms) < 5 {
			ev.Kind = "isolate-leader" // with three nodes, the same thing
		}
		switch ev.Kind {
		case "isolate-follower":
			ev.Node, ev.Note = f.node.ID, fmt.Sprintf("follower; leader %s", leader.node.ID)
			ev.Minority = []string{f.node.ID}
			r.c.Isolate(f.node)
		case "isolate-leader":
			ev.Node, ev.Note = leader.node.ID, "leader"
			ev.Minority = []string{leader.node.ID}
			r.c.Isolate(leader.node)
		case "split":
			minority := []*harness.Node{leader.node, f.node}
			var majority []*harness.Node
			for _, m := range followers {
				if m != f {
					majority = append(majority, m.node)
				}
			}
			ev.Node, ev.Note = leader.node.ID, fmt.Sprintf("leader with %s on the minority side", f.node.ID)
			ev.Minority = []string{leader.node.ID, f.node.ID}
			r.c.Partition(minority, majority)
		case "bridge":
			ev.Node = leader.node.ID
			ev.Note = fmt.Sprintf("leader cut from %s only", f.node.ID)
			r.c.Partition([]*harness.Node{leader.node}, []*harness.Node{f.node})
		case "lossy":
			loss := 0.2 + 0.3*rng.Float64()
			ev.Node, ev.Note = leader.node.ID, fmt.Sprintf("leader loses %.0f%% of its packets to peers", loss*100)
			r.c.Lossy(leader.node, loss)
		}
		r.partitioned.Store(true)
		if len(ev.Minority) > 0 {
			ev.CutFrom = r.now() // the rules are in force from here
		}
		sleep(ctx, between(rng, 500*time.Millisecond, 5*time.Second))
		if ev.CutFrom != 0 {
			ev.CutUntil = r.now()
		}
		r.c.Heal()
		r.partitioned.Store(false)
		ev.End = r.now()
		r.logFault(ev)
		// Let the cluster settle before the next cut, as a network that
		// flaps faster than an election has nothing new to show.
		waitReady(30*time.Second, ms...)
	}
}

// checkCutOff checks what no timing argument can excuse: a node on the
// minority side of a partition (alone, or with the old leader) cannot
// reach a majority, so between the moment the cut took effect and the
// moment healing began it can neither commit a write nor confirm a read
// index. Any write or compare-and-set called on it and answered ok or 412
// within that window, and any linearizable read answered ok, is a
// violation (a cut-off leader serving from a stale lease, say), even if
// porcupine could fit it in. It also returns what the cut-off nodes
// answered, by kind and outcome, to show that the clients did reach them.
func checkCutOff(ops []checker.RegisterOp, faults []faultEvent) (violations []string, summary string) {
	counts := map[string]int{}
	for _, ev := range faults {
		if ev.CutFrom == 0 {
			continue
		}
		for _, op := range ops {
			if !slices.Contains(ev.Minority, op.Node) || op.Call < ev.CutFrom || op.Call > ev.CutUntil {
				continue
			}
			k := op.Kind
			if op.Kind == checker.Read {
				k += "/" + op.Consistency
			}
			counts[k+" "+string(op.Outcome)]++
			// A write's 412 is decided when it applies, so it needs a
			// commit as much as an ok does.
			definite := op.Outcome == checker.Ok || (op.Kind != checker.Read && op.Outcome == checker.Fail)
			needsQuorum := op.Kind != checker.Read || op.Consistency == checker.Linearizable
			if needsQuorum && definite && op.Return < ev.CutUntil {
				violations = append(violations, fmt.Sprintf("%s of %s on %s answered %s at %.3fs while %s could not reach a majority (%.3fs to %.3fs, %s %s): %+v",
					k, op.Key, op.Node, op.Outcome, float64(op.Return)/1e9, op.Node, float64(ev.CutFrom)/1e9, float64(ev.CutUntil)/1e9, ev.Kind, ev.Node, op))
			}
		}
	}
	return violations, formatCounts(counts)
}
