// Package api is Tandem's HTTP/JSON interface: the public /v1 API, the
// health endpoints and the internal node-to-node endpoints.
//
// Handlers only read and propose. Reads go to the local store after the
// consistency barrier the client asked for (see docs/api.md); writes become
// commands handed to the proposer, which batches them into Raft entries and
// forwards them to the leader when this node is a follower. The state
// machine alone changes the store.
//
// Security (security.go, authz.go, users.go, audit.go): every route is
// registered with an access rule; ServeHTTP authenticates the request
// before the mux runs it (except the health and internal routes) and puts
// the principal in the context (auth.FromContext). Handlers check table
// and attribute permissions before they read or propose anything, so a
// denied request changes nothing. With Options.Security nil the server is
// insecure: every request is an anonymous admin.
//
// Errors: every failure is answered as {"error": {"code", "message"}} with
// the status for its tandem.Code (httpStatus). Bad input is a 4xx that says
// what was wrong; a panic in a handler is caught and answered 500 without
// taking the node down.
package api
