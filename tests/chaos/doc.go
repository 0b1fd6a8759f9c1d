// Package chaos runs Tandem's fault-injection suite: real clusters of the
// tandem binary (package harness), clients that record every operation,
// and a nemesis that injects faults while they run. After the faults heal,
// the histories are judged by package checker.
//
// Each fault gets its own run on a fresh three-node cluster (five for
// partitions), with the four workloads running side by side:
//
//   - crash: SIGKILL the leader or a follower, restart it after a random
//     delay;
//   - pause: SIGSTOP the leader or a follower, SIGCONT it after a random
//     delay (long enough, often, for an election);
//   - powerloss: SIGKILL every node at once, restart them all;
//   - membership: add a node, remove a node (sometimes the leader), under
//     load;
//   - partition: on five nodes, each in its own network namespace, cut a
//     follower or the leader off from its peers (clients still reach it),
//     split 2|3 with the leader on the minority side, cut the leader from
//     one follower only, or make the leader's links lossy; heal after a
//     random delay. It needs root, ip and nft.
//
// The workloads are registers (reads at every consistency level, writes
// and compare-and-set on a few keys, checked with porcupine), bank
// (transfers between accounts in transactions with version conditions;
// the total never changes), set (unique inserts, all there at the end) and
// token (the bank's invariant through the example token contract: its
// transfers, refusals, read-only functions and events; in the short run
// under crash, membership and partition only, in long runs under every
// fault).
// After every run all nodes must report the same applied index and ledger
// hash. docs/reliability.md describes what each check means.
//
// A short run of every fault is part of the normal test suite:
//
//	go test -count=1 ./tests/chaos/ -v
//
// A long run gives the faults more time (the time is shared among them;
// raise go test's -timeout above it):
//
//	go test ./tests/chaos -run . -timeout 0 -args -duration=30m
//
// A failing run writes its histories (JSON), porcupine's visualization
// (HTML), the faults it injected and the nodes' logs to a folder under
// tests/chaos/failures/ and names it in the failure message.
package chaos
