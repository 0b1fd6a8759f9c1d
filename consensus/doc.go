// Package consensus runs the node's member of the cluster's single Raft
// group, on github.com/hashicorp/raft.
//
// It owns the Raft log (raft-wal or raft-boltdb, chosen by Options.LogStore),
// the snapshot store and the transport, and adds what hashicorp/raft lacks
// for a database:
//
//   - ReadIndex: the leader's answer to "what must a reader have applied to
//     be linearizable?". hashicorp/raft has no read index, so the leader
//     confirms its leadership with VerifyLeader (a heartbeat round) and
//     returns its commit index. Concurrent callers share one confirmation
//     round (package coalesce), so linearizable reads cost one round per batch,
//     not one per read.
//
//   - A term marker: a new leader's commit index may lag entries committed by
//     its predecessor, and hashicorp/raft's own no-op entry is never shown to
//     the FSM (so a reader could wait for it forever). On every leadership
//     gain the leader therefore proposes an empty command entry (the marker)
//     and serves no read index until it has applied it; read indexes are
//     never below the marker.
//
// The package knows nothing of tables or records: it moves opaque byte
// entries into the raft.FSM it is given.
package consensus
