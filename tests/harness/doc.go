// Package harness runs real Tandem clusters for tests: the tandem binary is
// built once per test binary, and every node is its own OS process with its
// own data folder, listening on real sockets. Tests kill nodes with
// SIGKILL, pause them with SIGSTOP, and restart them on the same data, so
// crash recovery is exercised for real.
//
// With Options.Network every node runs in its own network namespace with
// its own address, joined to a bridge that the test process also reaches
// (netns.go). Partition, Isolate and Lossy then cut or degrade real links
// between nodes with nftables rules inside the namespaces, while clients
// keep reaching every node; Heal restores them. The harness creates the
// namespaces, bridge and links itself, removes them (and kills any
// process left in them) at test cleanup, and removes leftovers of test
// binaries that died without cleaning up. It needs root, iproute2 and
// nftables; without them a test that asks for a network fails, naming
// what is missing.
//
// Contract builds a contract package (examples/token, test modules) into
// WebAssembly once per test binary, for tests that deploy it.
//
// Logs of every node go to files in the node's folder; when a test fails,
// the harness prints where they are (and keeps them under t.TempDir until
// the test binary exits).
package harness
