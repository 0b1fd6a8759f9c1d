// Package checker holds the models and invariant checks of Tandem's chaos
// suite (tests/chaos). It does no I/O against a cluster: the workloads
// record what their clients saw as histories of operations, and the
// functions here judge them after the run.
//
// An operation has a call time, a return time and an Outcome. Ok and Fail
// are definite: the write took effect, or it surely did not (a 4xx answer
// such as 412). Unknown means it may or may not have taken effect (a
// timeout, a 503 or 504, a connection lost after the request was sent); as
// in Jepsen, such an operation is treated as possibly applied at any time
// after its call, so for the linearizability checker its return time is
// the end of the history. NotSent operations never reached a server (the
// connection could not be dialled) and are ignored.
//
// Registers: a few keys, each read and written by many clients with values
// that are never reused. Linearizable reads and every write and
// compare-and-set go to porcupine with RegisterModel, partitioned by key;
// the model also tracks the record's version (the log index of its last
// write, from the ETag), so a read must return the version the write that
// produced its value was given. Reads that promise less are checked by
// CheckRegisterReads against what they do promise: per node, local reads
// of a key never go back in time; a min_index read is served at that index
// or later; any read served at applied index I reflects every write
// acknowledged at an index at or below I.
//
// Bank: accounts with a fixed total, moved between by transactions that
// also insert a transfer record. CheckBankRead checks one snapshot (the
// total holds, no balance is negative); CheckBankFinal checks a node's
// state after the run against every transfer attempted.
//
// Token: the bank's invariant kept by the example token contract
// (examples/token). CheckToken judges the calls of its transfer function
// (ok, refused, conflict, unknown), the reads of its balance and supply
// functions and of its accounts table, and every node's final balances and
// contract events: the events, committed with the writes, replay into the
// final balances and give the order in which reads, refusals and
// acknowledged answers are checked.
//
// Set: unique inserts. CheckSetFinal checks a node's records against every
// insert attempted: each acknowledged one is there once, nothing that
// definitely failed or was never attempted is.
package checker
