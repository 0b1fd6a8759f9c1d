package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/tandemdb/tandem/bench"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// TestBenchSmoke runs every benchmark workload for a moment against a real
// cluster, so the benchmark command cannot rot unnoticed. It checks that
// work was done without errors; it asserts no speed (that lives in
// docs/benchmarks.md, measured by scripts/bench-core.sh).
func TestBenchSmoke(t *testing.T) {
	c := harness.Start(t, harness.Options{})
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.URL())
	}
	// Over HTTP/1.1, then over multiplexed connections (tandem bench
	// --multiplex), both secure.
	for _, mux := range []bool{false, true} {
		opts := c.ClientOptions() // a secure cluster, as by default
		if mux {
			opts = append(opts, client.WithMultiplex(1))
		}
		for _, w := range bench.Workloads() {
			res, err := bench.Run(context.Background(), bench.Config{
				Addrs: addrs, Workload: w, Clients: 16, Keys: 500,
				Duration: 700 * time.Millisecond, Warmup: 100 * time.Millisecond,
				ClientOptions: opts,
			})
			if err != nil {
				t.Fatalf("%s (multiplexed %v): %v", w, mux, err)
			}
			if res.Ops == 0 || res.ErrorCount() != 0 {
				t.Fatalf("%s (multiplexed %v): %d ops, errors %v", w, mux, res.Ops, res.Errors)
			}
			t.Logf("%s (multiplexed %v): %.0f ops/s p99 %v (smoke run; not a measurement)", w, mux, res.OpsPerSec, res.Latency.P99)
		}
	}
}
