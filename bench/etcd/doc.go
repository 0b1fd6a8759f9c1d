// Package etcd is a bench.Target for etcd, driven through its official Go
// client (go.etcd.io/etcd/client/v3), so that Tandem's load generator can
// put the same load on both stores.
//
// Keys live under a prefix ("bench/" by default); a value is written as it
// is. Serializable reads stand for bench.Local, etcd's default reads for
// bench.Linearizable, and a transaction is an unconditional Txn of puts.
// The client speaks gRPC over HTTP/2: a few connections, each carrying many
// clients' requests at once.
package etcd
