// Package multiplex carries many HTTP requests at once over one WebSocket
// connection, answered in any order.
//
// Why: on this kind of machine an HTTP/1.1 request costs more in the
// kernel (a write and a read on each side, a wake-up of the other process)
// and in net/http than Tandem spends replicating and applying a write.
// Over a multiplexed connection a burst of requests shares one message,
// so one syscall. etcd gets the same effect from gRPC; Go's HTTP/2 server
// would too, but it measured slower than HTTP/1.1 here (docs/benchmarks.md).
//
// The requests are ordinary HTTP requests (method, target, headers,
// body), served by an ordinary http.Handler: every endpoint, check and
// error of the REST API works unchanged through a multiplexed connection.
// Authentication is the upgrade request's: its Authorization header is
// passed to every request on the connection that has none of its own, so
// each is authenticated and authorized as if it came alone (a revoked token
// stops working at once, not at the next connection).
//
// Wire format (docs/api.md "Multiplexed connections"): each binary
// WebSocket message holds one or more frames, back to back. A frame is a
// sequence of fields; an integer is an unsigned varint and a string is its
// length as a varint followed by its bytes.
//
//	request:  id, method, target (path and query), header count, headers (name, value), body
//	response: id, status, header count, headers (name, value), body
//
// The client chooses ids; a response carries the id of its request.
//
// Cancel frames (FeatureCancel): a caller that gives up on a request should
// not leave it running on the node, as an HTTP client that hangs up does
// not. A client that names "cancel" in the Tandem-Multiplex header of its
// upgrade request, answered with the same by the server, may send a request
// frame with only an id (empty method and target, no fields, no body): the
// server ends that request's context and sends no response for it. Either
// side may be of a release without it; the feature is then unused.
package multiplex
