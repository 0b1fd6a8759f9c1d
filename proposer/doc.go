// Package proposer turns concurrent client commands into Raft log entries
// (group commit).
//
// Every write goes through one Proposer per node. Commands that arrive
// while earlier entries are in flight are gathered into the next entry, so
// under load one Raft round trip and one fsync carry hundreds of commands;
// with no load an entry carries one command and adds no delay. At most
// MaxInFlight entries are outstanding at once (default one); that bound is
// what makes the batches grow under load.
//
// On the leader a batch becomes a log entry. On a follower the batch is
// forwarded to the leader in one internal call (Forwarder), where it joins
// the leader's own batching; followers therefore batch too, and a forwarded
// request costs the leader one HTTP exchange per batch, not per write. After
// an entry that carried forwarded batches, the leader holds its next entry
// open briefly for those followers' next batches (Options.FollowerWait):
// they are sent when the leader answers, just as its next round starts.
// A follower in turn yields once before gathering a batch, so that the
// commands of one burst (one multiplexed message, one commit's answers)
// leave together and reach the leader within that wait.
//
// Outcomes: a command's own rejection (bad type, failed condition) is in its
// tandem.Result.Err. An error from Propose itself means the command's fate
// is unknown or it was never sent: CodeUnavailable (no leader, shutting
// down, or leadership lost while in flight) or CodeTimeout.
package proposer
