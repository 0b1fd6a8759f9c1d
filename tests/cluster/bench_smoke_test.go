package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/tandemdb/tandem/bench"
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
	for _, w := range bench.Workloads() {
		res, err := bench.Run(context.Background(), bench.Config{
			Addrs: addrs, Workload: w, Clients: 16, Keys: 500,
			Duration: 700 * time.Millisecond, Warmup: 100 * time.Millisecond,
			ClientOptions: c.ClientOptions(), // a secure cluster, as by default
		})
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		if res.Ops == 0 || res.ErrorCount() != 0 {
			t.Fatalf("%s: %d ops, errors %v", w, res.Ops, res.Errors)
		}
		t.Logf("%s: %.0f ops/s p99 %v (smoke run; not a measurement)", w, res.OpsPerSec, res.Latency.P99)
	}
}
