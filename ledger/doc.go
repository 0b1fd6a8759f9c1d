// Package ledger computes Tandem's tamper-evident chain of applied log
// entries.
//
// Every node's state machine hashes every command entry it applies, in log
// order, into a running SHA-256 value:
//
//	h(0)    = 32 zero bytes (genesis)
//	h(next) = SHA-256(h(prev) || uint64 index, big-endian || entry bytes)
//
// Because each hash covers the previous one, the hash at an index commits to
// the whole history up to it: two nodes that report the same (index, hash)
// pair have applied byte-identical entries at identical indexes, and a node
// whose history was altered anywhere in the past reports a different hash
// from then on. Entries without a command payload (Raft configuration
// changes) are not hashed.
//
// The package is pure computation; the store keeps the current hash next to
// the applied index, in the same atomic write.
package ledger
