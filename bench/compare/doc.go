// Command compare benchmarks Tandem and etcd side by side: it starts a
// three-node Tandem cluster and a three-member etcd cluster on loopback,
// one after the other, drives each with the same closed-loop load
// generator (package bench, with a bench.Target per store), kills each
// leader under write load to time the failover, and writes results.json,
// report.md and PNG charts.
//
// A store under test is a cluster: something that hands out load targets,
// names its server processes (for CPU and memory from /proc), finds its
// leader, and kills and restarts members. Tandem runs in each of its
// modes (tandemModes: plain HTTP, plain through multiplexed connections,
// secure). -smoke is the CI mode; TestSmoke runs it against a cluster of
// tests/harness. See README.md.
package main
