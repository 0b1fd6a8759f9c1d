// Package contract runs Tandem contracts: WebAssembly modules written
// with package sdk and built for GOOS=wasip1 as reactor modules, executed
// on wazero.
//
// # Model
//
// A call runs on one node (execute), becomes a transaction that the log
// orders (order), and is validated by the state machine on every node
// (validate), as in Hyperledger Fabric. The Runtime executes a function
// against a consistent read view (Execute): it records every record the
// function read with its version (absence included), every bounded query
// it ran with a hash of its answer, its writes (the final state of each
// record it touched) and its events. Outcome.Tx turns that into a
// tandem.Tx whose conditions are the reads, the queries and the contract's
// active version, and whose ops are the writes; if any of it changed
// before the transaction applies, the condition fails with
// CodeConflict and Engine.Call waits for the entry that failed it and runs
// the function again, up to MaxAttempts times.
//
// # Modules and instances
//
// Modules are compiled once per code hash (wazero's compilation cache
// shares the machine code) and instantiated on demand. An instance is
// initialised (_initialize) before it serves a call, serves one call at a
// time, and goes back to a small per-module pool only if its call finished
// cleanly; an instance whose call trapped, panicked, ran out of time or
// memory, or broke the ABI is closed, never reused.
//
// # Determinism and isolation
//
// The WASI environment is wazero's default: no file system, no network, a
// fake clock and a deterministic random source. Contracts get time only
// through Context.Now (the call's start time on the executing node; the
// transaction, not the clock, is what every node applies). Each call has a
// deadline (the module is closed when it passes), instances have a memory
// limit in pages, and the host bounds reads, queries, writes, events,
// argument and result sizes. A bad pointer or length from the guest is a
// contract fault (CodeContractFault), never a host panic.
//
// # Host ABI
//
// The guest exports tandem_alloc(size) ptr, tandem_invoke(fnPtr, fnLen,
// argPtr, argLen) status and tandem_describe(). The host module "tandem"
// provides host_call(reqPtr, reqLen) respLen (a small binary request,
// package internal/wire; the response is parked), host_read(bufPtr)
// (copies the parked response), set_result(ptr, len, isErr) and log(ptr,
// len). The host never calls into
// the guest while a host function runs.
package contract
