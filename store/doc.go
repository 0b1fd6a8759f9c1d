// Package store keeps a node's replicated state in Pebble: table schemas,
// records, secondary indexes, cluster nodes, users, roles, API tokens, the
// audit log, and the applied log index with
// its ledger hash.
//
// # Ownership
//
// Only the Raft state machine changes the store, through Apply and Restore
// (and takes snapshots between Applies). The API reads it concurrently with
// Get, Query, Table, Tables, Nodes and State. Each call to Apply writes one
// Pebble batch holding every change of its entries plus the new applied
// index and ledger hash. Pebble runs without a WAL: Raft's log is the
// durability point, a crash leaves the state of the last flushed memtable
// (a consistent prefix, since every batch carries its applied index),
// entries at or below the stored applied index are skipped on replay, and
// Snapshot.WriteTo flushes the memtable before Raft may drop the log
// behind a snapshot. Schemas, the applied index and the ledger hash are
// also held in memory and replaced only after the batch commits.
//
// # Apply
//
// Security commands (users, roles, API tokens, audit; security_apply.go)
// check everything before writing, keep users, roles and tokens in memory
// too (published after the commit, like schemas), and write the audit
// entries a command carries only if the command succeeds. Deleting a user
// deletes its API tokens; a role in use and the last user holding the
// admin role cannot be deleted (CodeConflict).
//
// Commands are applied in order; each sees the writes of those before it
// (reads go through the transaction's own writes, then the batch, then the
// database). A command that fails (an *tandem.Error in its Result) leaves
// nothing behind. Every record written by an entry gets the entry's index
// as its version. Schema changes: a table is created with Version set to
// the entry index; sending create_table again may declare new attributes
// (every existing record must fit their types) and add indexes (filled from
// the existing records in the same batch) or remove indexes; declared
// attributes cannot be removed or retyped and the primary key cannot
// change (CodeConflict). An identical schema is a no-op.
//
// # Key layout
//
//	m/applied                      8-byte applied index | 32-byte ledger hash
//	m/restoring                    present while a Restore is incomplete
//	s/<table>                      JSON of the tandem.TableSchema
//	n/<node id>                    JSON of the tandem.NodeInfo
//	j/<token id>                   JSON of the tandem.JoinToken (secret hash, expiry, use)
//	x/<node id>                    empty: the node was removed and has not enrolled since
//	r/<table>\x00<pk>              8-byte version | canonical record JSON
//	i/<table>\x00<attr>\x00<v><pk> empty: an index entry
//	u/<user>                       JSON of the tandem.User
//	g/<role>                       JSON of a stored tandem.Role (built-ins are not stored)
//	k/<token id>                   JSON of the tandem.APIToken (SHA-256 of the secret only)
//	a/<index><seq>                 JSON of a tandem.AuditEntry; index 8 bytes and seq 4
//	                               bytes big-endian: log order
//	c/<contract>                   JSON of the tandem.ContractInfo (versions, active)
//	w/<contract>\x00<version>      the version's wasm bytes (version: 8 bytes big-endian)
//	e/<index><seq>                 JSON of a tandem.StoredEvent (8 + 4 bytes big-endian)
//
// Names cannot contain \x00 (tandem.ValidateName), so the separators are
// unambiguous. <pk> and <v> use the order-preserving encoding of keys.go:
// a type tag, then
//
//	null    nothing (sorts first)
//	bool    one byte, 0 or 1
//	int     8 bytes big-endian with the sign bit flipped
//	float   8 bytes of IEEE 754 bits, all flipped for negatives and the
//	        sign bit flipped otherwise (-0 is stored as 0)
//	time    seconds since 1970 as int, then 4 bytes of nanoseconds (covers
//	        every RFC 3339 year, unlike int64 nanoseconds)
//	string  the bytes with \x00 escaped as \x00\xff, then \x00\x01
//	json    canonical JSON text, escaped like a string (sorting only)
//
// so byte order equals value order within a type, and each value is
// self-delimiting so the primary key can follow it. Integer keys encode as
// int (numeric order), string keys as string. Values of declared
// attributes are encoded by their declared type; values of undeclared
// attributes by their JSON kind, with every number as a float. A record
// lacking an indexed attribute (or holding null) is indexed under null, so
// an index scan sees every record.
//
// The stored record JSON is the tandem.Record re-encoded canonically
// (tandem.AppendCanonicalJSON: byte for byte what encoding/json writes,
// keys sorted, numbers exactly as received). Records leave
// the store (Get, Query) with "_version": N inserted as the first
// attribute.
//
// # Contracts and events
//
// deploy_contract checks the module's hash, appends version
// len(versions)+1 (deployed at the entry's time) and makes it active;
// activate_contract makes an existing version active. A contract condition
// compares the active version; a query condition re-runs its query against
// the state as of that point of the batch and compares tandem.QueryHash.
// The events of an applied tx are stored under (entry index, sequence
// within the entry), so they read back in commit order on every node.
// Contracts and events are ordinary keys, so snapshots carry them.
//
// # Queries
//
// A filter literal is converted to the attribute's declared type (the
// primary key's type for the key); for undeclared attributes, true/false
// are booleans, JSON numbers are numbers and anything else is a string.
// A missing or null attribute matches only ne; comparisons between
// different types are false; prefix applies to strings only; attributes
// declared json cannot be filtered on (CodeInvalid) but can be sorted by.
//
// The planner uses the first of these that applies, then evaluates every
// other filter and OR group on the fetched records:
//
//  1. pk get: eq or in on the primary key (point reads);
//  2. index A eq / index A in: eq or in on an indexed attribute;
//  3. index A range: gt, ge, lt, le, prefix on an indexed attribute, all
//     such filters on A combined into one range;
//  4. pk range: the same on the primary key;
//  5. index A order: no usable filter, but the sort attribute is indexed;
//  6. scan: every record in key order.
//
// Among indexed attributes the sort attribute is preferred, then the first
// filter. Results are ordered by (sort value, primary key), or by primary
// key, ascending or descending; null and missing values sort first. When
// the access path yields that order the scan stops after one page;
// otherwise every match is collected and sorted, which is refused past
// MaxSortRows matches. Cursors (cursor.go) hold the last row's position and
// a fingerprint of the query.
//
// # Snapshots
//
// A Snapshot is a Pebble snapshot plus the applied state; WriteTo streams a
// versioned, checksummed format (snapshot.go). Restore sets the restore
// marker, deletes everything, writes the pairs in batches of a few MB, and
// only after the checksum verifies writes the applied state, clears the
// marker and syncs. Until then Dirty reports true and Apply and Snapshot
// refuse to run.
package store
