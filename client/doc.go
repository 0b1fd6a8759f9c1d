// Package client is the Go client of Tandem's HTTP API (docs/api.md). The
// command-line tool, the benchmark and the integration tests use it, and so
// can applications.
//
// A Client knows one or more node addresses. Every call goes to one node:
// by default the next one in turn (round-robin), or always the same one for
// a client returned by Node, which tests use to aim at a particular node.
// Any node answers any request (followers forward writes to the leader), so
// spreading calls is only about load and availability.
//
// Retries are deliberately narrow. When a node cannot be reached, a
// round-robin client tries the next address, but only when it is sure the
// request was not delivered: for a write that means the connection could not
// be dialled at all. A write whose connection broke after it was sent may
// have been committed, and sending it again could apply it twice (an insert
// would fail with a conflict, an upsert would bump the version, a transfer
// would move the money twice), so the error goes back to the caller, who
// knows whether the write is safe to repeat. Reads are retried on any
// transport failure. Answers from the server, including 503 unavailable, are
// never retried.
//
// A non-2xx answer becomes an *Error carrying the HTTP status and the
// server's error code and message; IsCode tests for a code. Errors from the
// transport (connection refused, timeouts) are returned as the net/http
// client reports them.
//
// A Client is safe for concurrent use. Its default transport keeps many idle
// connections per node so that hundreds of goroutines can share it without
// reconnecting.
package client
