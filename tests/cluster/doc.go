// Package cluster holds Tandem's multi-node behaviour tests. Every test
// starts its own cluster of real tandem processes on loopback sockets with
// package harness and drives it over HTTP with package client: replication
// and forwarding, leader crash under concurrent writers, whole-cluster
// restarts after SIGKILL and SIGTERM, catch-up from snapshots, conditional
// write races, membership changes and readiness, and bad input.
//
// The tests are not parallel: each cluster is three processes that fsync,
// and CI machines have few cores. Run them with
//
//	go test -count=1 ./tests/cluster/ -v
//
// The harness builds the binary itself (TANDEM_BIN overrides it). When a
// test fails, the paths of the nodes' logs are printed.
package cluster
