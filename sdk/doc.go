// Package sdk is what a Tandem contract is written with. A contract is a Go
// main package built for WebAssembly as a reactor module:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o token.wasm ./token
//
// (or `tandem contract build ./token -o token.wasm`). It registers its
// functions in init and leaves main empty:
//
//	func init() {
//		sdk.Export("transfer", transfer)
//		sdk.ExportReadOnly("balance", balance)
//	}
//
//	func main() {}
//
//	func transfer(ctx *sdk.Context, arg TransferArg) (TransferResult, error) { ... }
//
// A function takes one JSON argument and returns a JSON result or an error;
// the SDK decodes and encodes them with encoding/json. The Context reads and
// writes tables (Get, Put, Insert, Patch, Delete, Query), tells who called
// (Caller) and when (Now), emits events (Emit) and logs (Log).
//
// # Transactions
//
// One call is one serializable transaction. The node that receives the call
// runs the function against its state; every record the function read
// (with its version, or its absence) and every query it ran becomes a
// condition, and its writes become the transaction's operations. If
// anything it read changed before the transaction commits, the node runs
// the function again on the newer state (a bounded number of times), so a
// function must be a pure function of what it reads: no global state that
// survives between calls, no randomness, no clock but Now. Reads see the
// call's own earlier writes. A function declared with ExportReadOnly runs
// locally at the caller's read consistency and may not write or emit.
//
// # Limits
//
// Each call has a time limit, a memory limit, a maximum number of writes,
// reads, queries and events, and a maximum argument size (docs/contracts.md).
// A function that panics, runs too long or uses too much memory fails its
// own call; nothing it wrote is kept.
//
// The package builds only for GOOS=wasip1 (apart from this documentation):
// it talks to the host through the "tandem" import module, which the SDK
// hides completely.
package sdk
