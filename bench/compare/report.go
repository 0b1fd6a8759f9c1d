package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// workloadTitle names a workload for people.
func workloadTitle(w string) string {
	switch w {
	case "write":
		return "Replicated writes"
	case "read-local":
		return "Reads without a leader round trip (Tandem local, etcd serializable)"
	case "read-linearizable":
		return "Linearizable reads"
	case "mixed":
		return "90/10 read/write mix (linearizable reads)"
	case "tx":
		return "Two-record transactions"
	}
	return w
}

func (s *System) step(w string, c int) *Step {
	for i := range s.Steps {
		if s.Steps[i].Workload == w && s.Steps[i].Clients == c {
			return &s.Steps[i]
		}
	}
	return nil
}

// pairs returns each Tandem system measured and etcd, if it was.
func (r *Results) pairs() (tandems []*System, etcd *System) {
	for i := range r.Systems {
		switch s := &r.Systems[i]; {
		case strings.HasPrefix(s.Key, "tandem"):
			tandems = append(tandems, s)
		case s.Key == "etcd":
			etcd = s
		}
	}
	return tandems, etcd
}

// how says how a system was driven.
func how(key string) string {
	if key == "etcd" {
		return "go.etcd.io/etcd/client/v3 (gRPC, 4 connections per member)"
	}
	for _, m := range tandemModes {
		if key == "tandem-"+m.name {
			return m.how()
		}
	}
	return "REST API"
}

func report(r *Results, charts []string) string {
	var b strings.Builder
	p := func(f string, args ...any) { fmt.Fprintf(&b, f, args...) }
	p("# Tandem and etcd, side by side\n\n")
	if r.Smoke {
		p("> **Smoke run** (CI): a few seconds per step; not a measurement.\n\n")
	}
	m := r.Machine
	p("Run %s, %v in all, by `go run ./bench/compare` (see bench/compare/README.md).\n",
		r.Started.Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second))
	p("Machine: %d cores (%s), %d GiB, Linux %s, %s. Every server's data on the same disk (%s), default durability (fsync on).\n\n",
		m.Cores, m.CPU, m.MemoryGiB, m.Kernel, m.GoVersion, m.DataDir)

	p("## What ran\n\n| store | version | driven through |\n|---|---|---|\n")
	for _, s := range r.Systems {
		p("| %s | %s | %s (load average %s → %s) |\n", s.Label, s.Version, how(s.Key), s.LoadAvg[0], s.LoadAvg[1])
	}
	for _, n := range r.NotRun {
		p("| %s | — | **not run**: %s |\n", n.Label, n.Reason)
	}
	st := r.Settings
	p("\nEach store: three members on loopback, each its own process, started one store after the other (never both at once). ")
	p("Load: a closed loop of C clients (C = %s), client i pinned to member i mod 3, %v warm-up then %v measured per step, %d-byte values over %d keys (preloaded before the read workloads). ",
		joinInts(st.Clients), st.Warmup, st.Duration, st.ValueSize, st.Keys)
	p("The load generator (bench/) runs on the same machine and the same cores as the servers.\n\n")

	tandems, etcd := r.pairs()
	if len(tandems) > 0 && etcd != nil {
		p("## Tandem ÷ etcd\n\nThroughput ratio (above 1: Tandem does more per second), and p99 latency ratio in brackets (below 1: Tandem is faster).\n\n")
	}
	for _, tandem := range tandems {
		if etcd == nil {
			break
		}
		p("### %s\n\n", tandem.Label)
		p("| workload |")
		for _, c := range st.Clients {
			p(" C=%d |", c)
		}
		p("\n|---|%s\n", strings.Repeat("---|", len(st.Clients)))
		for _, w := range r.Workloads {
			p("| %s |", shortName(w))
			for _, c := range st.Clients {
				a, e := tandem.step(w, c), etcd.step(w, c)
				if a == nil || e == nil || e.OpsPerSec == 0 || e.P99 == 0 {
					p(" — |")
					continue
				}
				p(" %.2f× (%.2f) |", a.OpsPerSec/e.OpsPerSec, a.P99/e.P99)
			}
			p("\n")
		}
		if tandem.Failover != nil && etcd.Failover != nil {
			p("| failover, median time to writes again (C=%d) | %s vs %s |\n", tandem.Failover.Clients, fmtMs(median(tandem.Failover)), fmtMs(median(etcd.Failover)))
		}
		p("\n")
	}

	for _, c := range charts {
		p("![%s](%s)\n\n", strings.TrimSuffix(c, ".png"), c)
	}

	for _, w := range r.Workloads {
		p("## %s\n\n", workloadTitle(w))
		p("| C | store | ops/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU s / 1k ops | client CPU s / 1k ops | errors |\n")
		p("|---|---|---|---|---|---|---|---|---|---|\n")
		for _, c := range st.Clients {
			for _, s := range r.Systems {
				x := s.step(w, c)
				if x == nil {
					continue
				}
				p("| %d | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f | %s |\n",
					c, s.Key, x.OpsPerSec, x.P50, x.P99, x.P999, x.Max, x.CPUPer1k, x.ClientCPUPer1k, fmtErrors(x.Errors))
			}
		}
		p("\n")
	}

	p("## Failover\n\n")
	p("SIGKILL of the leader one second into a write load of C=%d clients (every client may use every member: Tandem's client moves on when a node cannot be dialled, etcd's client balances over its endpoints). ", st.FailoverClients)
	p("Recovery is the time from the kill to the first successful write *sent after* the kill. The killed member is restarted, and the cluster healthy again, before the next trial.\n\n")
	p("| store | trials (ms) | median | max | errors after the kill |\n|---|---|---|---|---|\n")
	for _, s := range r.Systems {
		if s.Failover == nil {
			p("| %s | not run | | | |\n", s.Key)
			continue
		}
		var ts, es []string
		worst := 0.0
		for _, t := range s.Failover.Trials {
			if t.Error != "" {
				ts = append(ts, "failed: "+firstLine(t.Error))
				continue
			}
			if t.Recovered {
				ts = append(ts, fmt.Sprintf("%.0f", t.RecoveryMs))
				worst = max(worst, t.RecoveryMs)
			} else {
				ts = append(ts, fmt.Sprintf("> %.0f", (st.FailoverWindow-time.Second).Seconds()*1000))
			}
			es = append(es, fmt.Sprint(t.ErrorsAfterKill))
		}
		p("| %s | %s | %s | %s | %s |\n", s.Key, strings.Join(ts, ", "), fmtMs(median(s.Failover)), fmtMs(worst), strings.Join(es, ", "))
	}
	p("\n## Memory\n\nPeak resident memory (VmHWM) of each server process after the steps, before failover.\n\n| store | members (MiB) |\n|---|---|\n")
	for _, s := range r.Systems {
		names := make([]string, 0, len(s.PeakRSS))
		for n := range s.PeakRSS {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.0f", n, float64(s.PeakRSS[n])/(1<<20)))
		}
		p("| %s | %s |\n", s.Key, strings.Join(parts, ", "))
	}
	p("\n## How to read this\n\n")
	p("- Latencies are as the client sees them, of successful operations; errors are counted by code and not timed.\n")
	p("- Server CPU is utime+stime of the three server processes from /proc/<pid>/stat over the measured window, divided by the operations that succeeded in it; client CPU is the load generator's own.\n")
	p("- Tandem's reads go over HTTP/1.1 with a connection per client; etcd's over a few multiplexed gRPC connections. Both are each store's official client path.\n")
	p("- Both stores keep their defaults: Tandem `tandem serve` (raft-wal log, GOGC 400, 256 MiB block cache); etcd 3.4 (bbolt, 100 ms heartbeat, 1 s election timeout, no auto-compaction).\n")
	p("- A Tandem record is the JSON object {\"v\": value} (8 bytes more than the value); an etcd value is the bytes as they are.\n")
	return b.String()
}

func shortName(w string) string {
	switch w {
	case "read-local":
		return "read-local / serializable"
	case "mixed":
		return "mixed 90/10"
	case "tx":
		return "tx (2 puts)"
	}
	return w
}

func median(f *Failover) float64 {
	var v []float64
	for _, t := range f.Trials {
		if t.Recovered {
			v = append(v, t.RecoveryMs)
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func fmtMs(ms float64) string {
	if ms == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f ms", ms)
}

func fmtErrors(errs map[string]int64) string {
	if len(errs) == 0 {
		return "0"
	}
	var parts []string
	for c, n := range errs {
		parts = append(parts, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.ReplaceAll(l, "|", "/")
}
