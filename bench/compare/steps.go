package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemdb/tandem/bench"
)

// preloadRate is the preload's pace in keys per second, the same for
// every store: 400 keys per etcd backend commit interval (100 ms), within
// the read buffer's initial 512 entries.
const preloadRate = 4000

// measureSystem runs every workload at every concurrency against c, then
// the failover trials, and fills in sys.
func measureSystem(ctx context.Context, o *options, c cluster, sys *System) error {
	tgt, release, err := c.target(false)
	if err != nil {
		return err
	}
	defer release()
	base := bench.Config{
		Target: tgt, Keys: o.keys, ValueSize: o.valueSize,
		Warmup: o.warmup, Duration: o.duration, Seed: 1,
		Logf: func(f string, args ...any) { o.logf("  "+sys.Key+": "+f, args...) },
	}
	loaded := false
	for _, w := range bench.Workloads() {
		if w != bench.WorkloadWrite && w != bench.WorkloadTx && !loaded {
			cfg := base
			cfg.Clients = 16
			// Paced below the write steps' own rate: a faster burst would
			// leave etcd 3.4 copying a needlessly long read buffer on
			// every read that follows (bench/compare/README.md).
			cfg.PreloadRate = preloadRate
			o.logf("%s: preloading %d keys at %d/s", sys.Key, o.keys, preloadRate)
			if err := bench.Preload(ctx, cfg); err != nil {
				return err
			}
			loaded = true
		}
		for _, n := range o.clients {
			step, err := runStep(ctx, base, w, n, c)
			if err != nil {
				return fmt.Errorf("%s %s C=%d: %w", sys.Key, w, n, err)
			}
			o.logf("%s %-17s C=%-3d %8.0f ops/s  p50 %6.2fms  p99 %6.2fms  p99.9 %6.2fms  cpu %.3fs/1k  errors %d",
				sys.Key, w, n, step.OpsPerSec, step.P50, step.P99, step.P999, step.CPUPer1k, step.ErrorCount())
			sys.Steps = append(sys.Steps, step)
		}
	}
	sys.PeakRSS = make(map[string]int64)
	names := c.names()
	for i, pid := range c.pids() {
		if pid == 0 {
			continue
		}
		if rss, err := peakRSS(pid); err == nil {
			sys.PeakRSS[names[i]] = rss
		}
	}
	if o.trials > 0 {
		f, err := failover(ctx, o, c, sys.Key)
		if err != nil {
			return err
		}
		sys.Failover = f
	}
	return nil
}

func runStep(ctx context.Context, base bench.Config, w bench.Workload, clients int, c cluster) (Step, error) {
	cfg := base
	cfg.Workload, cfg.Clients, cfg.NoPreload = w, clients, true
	pids := c.pids()
	self := os.Getpid()
	var srv0, srv1, cli0, cli1 float64
	cfg.Window = func(open bool) {
		if open {
			srv0, cli0 = sumCPU(pids), sumCPU([]int{self})
		} else {
			srv1, cli1 = sumCPU(pids), sumCPU([]int{self})
		}
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return Step{}, err
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	s := Step{
		Workload: string(w), Clients: clients, Ops: res.Ops, OpsPerSec: res.OpsPerSec,
		P50: ms(res.Latency.P50), P99: ms(res.Latency.P99), P999: ms(res.Latency.P999), Max: ms(res.Latency.Max),
		Errors: res.Errors, ServerCPU: srv1 - srv0,
	}
	if res.Ops > 0 {
		s.CPUPer1k = s.ServerCPU / float64(res.Ops) * 1000
		s.ClientCPUPer1k = (cli1 - cli0) / float64(res.Ops) * 1000
	}
	return s, nil
}

// failover kills the leader under a write load o.trials times, restarting
// the killed member between trials.
func failover(ctx context.Context, o *options, c cluster, key string) (*Failover, error) {
	f := &Failover{Clients: o.failoverClients}
	tgt, release, err := c.target(true)
	if err != nil {
		return nil, err
	}
	defer release()
	for trial := range o.trials {
		t, err := failoverTrial(ctx, o, c, tgt)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			// Keep what was measured; the report shows the failure.
			t.Error = err.Error()
			o.logf("%s failover %d: %v", key, trial+1, err)
			f.Trials = append(f.Trials, t)
			break
		}
		if t.Recovered {
			o.logf("%s failover %d: killed %s, writes back after %.0f ms (%d errors)", key, trial+1, t.Killed, t.RecoveryMs, t.ErrorsAfterKill)
		} else {
			o.logf("%s failover %d: killed %s, writes not back within the window", key, trial+1, t.Killed)
		}
		f.Trials = append(f.Trials, t)
	}
	return f, nil
}

func failoverTrial(ctx context.Context, o *options, c cluster, tgt bench.Target) (Trial, error) {
	var leader int
	var err error
	for range 100 { // up to ~10s for an election after the last restart
		if leader, err = c.leader(ctx); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return Trial{}, err
	}
	t := Trial{Killed: c.names()[leader]}

	// Times are nanoseconds since the kill's reference; 0 means unset.
	var killedAt atomic.Int64
	var firstOK atomic.Int64
	var errsAfter atomic.Int64
	var killErr error
	cfg := bench.Config{
		Target: tgt, Workload: bench.WorkloadWrite, Clients: o.failoverClients,
		Keys: o.keys, ValueSize: o.valueSize, Seed: 2,
		Warmup: o.warmup, Duration: o.failoverWindow,
		Observe: func(_ string, start, end time.Time, err error) {
			k := killedAt.Load()
			if k == 0 || start.UnixNano() < k {
				return
			}
			if err != nil {
				errsAfter.Add(1)
				return
			}
			e := end.UnixNano()
			for {
				cur := firstOK.Load()
				if cur != 0 && cur <= e || firstOK.CompareAndSwap(cur, e) {
					return
				}
			}
		},
	}
	var wg sync.WaitGroup
	// Kill one second into the measured window.
	wg.Go(func() {
		select {
		case <-time.After(o.warmup + time.Second):
		case <-ctx.Done():
			return
		}
		killedAt.Store(time.Now().UnixNano())
		killErr = c.kill(leader)
	})
	res, err := bench.Run(ctx, cfg)
	wg.Wait()
	if err != nil {
		return t, err
	}
	if killErr != nil {
		return t, killErr
	}
	t.OpsPerSec = res.OpsPerSec
	t.ErrorsAfterKill = errsAfter.Load()
	if ok := firstOK.Load(); ok != 0 {
		t.Recovered = true
		t.RecoveryMs = float64(ok-killedAt.Load()) / 1e6
	}
	if err := c.restart(ctx, leader); err != nil {
		return t, err
	}
	// Let the restarted member catch up before the next kill.
	time.Sleep(time.Second)
	return t, nil
}
