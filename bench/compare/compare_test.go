package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/bench"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// harnessCluster is a Tandem cluster of tests/harness, as a cluster.
type harnessCluster struct {
	c *harness.Cluster
}

func (h *harnessCluster) addrs() []string {
	var a []string
	for _, n := range h.c.Nodes {
		a = append(a, n.URL())
	}
	return a
}

func (h *harnessCluster) target(balanced bool, extra ...client.Option) (bench.Target, func(), error) {
	return tandemTarget(h.addrs(), balanced, h.c.CAFile(), append(h.c.ClientOptions(), extra...)...)
}

func (h *harnessCluster) pids() []int {
	p := make([]int, len(h.c.Nodes))
	for i, n := range h.c.Nodes {
		if n.Running() {
			p[i] = pidOfURL(n.URL())
		}
	}
	return p
}

func (h *harnessCluster) names() []string {
	var s []string
	for _, n := range h.c.Nodes {
		s = append(s, n.ID)
	}
	return s
}

func (h *harnessCluster) leader(ctx context.Context) (int, error) {
	return tandemLeader(ctx, h.addrs(), h.c.CAFile())
}

func (h *harnessCluster) kill(i int) error {
	h.c.Kill(h.c.Nodes[i])
	return nil
}

func (h *harnessCluster) restart(ctx context.Context, i int) error {
	h.c.Start(h.c.Nodes[i])
	for _, n := range h.c.Nodes {
		h.c.WaitReady(n, 30*time.Second)
	}
	return nil
}

func (h *harnessCluster) close() {} // the harness stops the nodes at cleanup

// TestSmoke runs the comparison in its CI mode (-smoke: Tandem only, C=16,
// short steps, one failover) against a cluster of tests/harness, and
// checks that the outputs are there and sane. It asserts no speed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	// Plain mode, as the comparison runs it (like for like with etcd).
	hc := &harnessCluster{c: harness.Start(t, harness.Options{Insecure: true})}
	out := t.TempDir()
	var log bytes.Buffer
	start := func(context.Context) (cluster, error) { return hc, nil }
	err := run(context.Background(), []string{"-smoke", "-out", out, "-data", t.TempDir()}, &log, start)
	t.Logf("log:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	// Plain and multiplexed modes: the same cluster, driven over HTTP/1.1
	// and over /v1/mux.
	if !res.Smoke || len(res.Systems) != 2 || res.Systems[0].Key != "tandem-plain" || res.Systems[1].Key != "tandem-mux" {
		t.Fatalf("results describe the wrong run: smoke %v, systems %+v", res.Smoke, res.Systems)
	}
	if len(res.NotRun) != 1 || !strings.Contains(res.NotRun[0].Label, "secure") {
		t.Errorf("not run = %+v, want secure mode listed", res.NotRun)
	}
	for _, sys := range res.Systems {
		if len(sys.Steps) != len(bench.Workloads()) {
			t.Errorf("%s: %d steps, want one per workload", sys.Key, len(sys.Steps))
		}
		for _, s := range sys.Steps {
			if s.Clients != 16 || s.Ops == 0 || s.OpsPerSec <= 0 || s.ErrorCount() != 0 {
				t.Errorf("%s %s: C=%d, %d ops, errors %v", sys.Key, s.Workload, s.Clients, s.Ops, s.Errors)
			}
			if !(0 < s.P50 && s.P50 <= s.P99 && s.P99 <= s.P999 && s.P999 <= s.Max) {
				t.Errorf("%s %s: latencies p50 %v p99 %v p99.9 %v max %v", sys.Key, s.Workload, s.P50, s.P99, s.P999, s.Max)
			}
			if s.ServerCPU <= 0 || s.CPUPer1k <= 0 {
				t.Errorf("%s %s: server CPU %v s, %v s per 1k ops", sys.Key, s.Workload, s.ServerCPU, s.CPUPer1k)
			}
		}
		if len(sys.PeakRSS) != 3 {
			t.Errorf("%s: peak RSS of %d processes, want 3: %v", sys.Key, len(sys.PeakRSS), sys.PeakRSS)
		}
		for n, rss := range sys.PeakRSS {
			if rss < 1<<20 {
				t.Errorf("%s: %s: peak RSS %d bytes", sys.Key, n, rss)
			}
		}
		if f := sys.Failover; f == nil || len(f.Trials) != 1 || !f.Trials[0].Recovered || f.Trials[0].RecoveryMs <= 0 {
			t.Errorf("%s: failover = %+v, want one trial that recovered", sys.Key, f)
		}
	}

	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Smoke run", "Replicated writes", "Two-record transactions", "Failover", "not selected", "/v1/mux", "throughput.png", "latency.png"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, png := range []string{"throughput.png", "latency.png"} {
		b, err := os.ReadFile(filepath.Join(out, png))
		if err != nil || len(b) < 1000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s: %d bytes, %v", png, len(b), err)
		}
	}
}
