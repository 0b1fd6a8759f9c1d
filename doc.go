// Package tandem is the vocabulary of the Tandem system: the domain types that
// every other package agrees on (tables, records, transactions, queries,
// cluster nodes), the replicated command format, and the error codes.
//
// Adapter packages (store, consensus, api, ...) depend on this package and
// never on each other except through the small interfaces they define where
// they use them; cmd/tandem wires them together. Nothing here does I/O.
//
// The model in one paragraph: a cluster holds tables of JSON records. Every
// change is a Command carried in a replicated log Entry, ordered by Raft and
// applied by every node's state machine in the same order. A record's version
// is the log index of the entry that last wrote it. A transaction is a list
// of operations plus conditions; the state machine checks the conditions at
// apply time and applies all of the operations or none.
package tandem
