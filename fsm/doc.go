// Package fsm is the Raft state machine: the only code that changes a
// node's store. hashicorp/raft hands it committed log entries in order; it
// decodes them and applies each batch of entries to the store in one atomic
// Pebble batch (which also records the applied index and the ledger hash),
// then wakes the readers waiting for that index.
//
// Restart safety: the store keeps its applied index, and the store skips
// entries at or below it, so replaying the Raft log after a crash never
// applies an entry twice; because Raft is started with
// NoSnapshotRestoreOnStart, the state is never rebuilt from a snapshot on a
// normal restart either. Snapshots are Pebble snapshots streamed to Raft's
// snapshot store after the store's WAL has been synced, so Raft never drops
// log entries whose effects are not yet durable.
package fsm
