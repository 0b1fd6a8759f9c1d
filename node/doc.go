// Package node assembles one Tandem node: the store, the state machine,
// the Raft member, the proposer and the HTTP API, and implements the
// cluster operations that need more than one of them (forwarding writes,
// contract calls and read-index requests to the leader, joining, removing,
// gathering status from every member).
//
// Lifecycle: Open starts everything and returns once the node listens;
// Close stops the HTTP server, the proposer, Raft and the store, in that
// order, and is safe to call twice.
//
// Node-to-node calls use the members' HTTP addresses, which are kept in
// replicated state (each node registers itself with a set_node command once
// a leader is known), so any node can find the leader's HTTP address from
// the Raft leader ID.
//
// Security (security.go, jointokens.go): unless Options.Insecure, Open
// first gives the node its TLS identity from its data folder (creating the
// cluster CA when bootstrapping, or enrolling with a join token), then
// serves the API over TLS, runs Raft over mutual TLS and calls other nodes
// with its node certificate. See docs/security.md.
package node
