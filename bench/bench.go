package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
)

// Workload is what each client does in its loop.
type Workload string

// Workloads. Keys are drawn uniformly from the key space.
const (
	// WorkloadWrite upserts a record: PUT /v1/tables/{t}/records/{key}.
	WorkloadWrite Workload = "write"
	// WorkloadReadLocal reads a record with consistency=local.
	WorkloadReadLocal Workload = "read-local"
	// WorkloadReadLinearizable reads a record with the default, linearizable
	// consistency.
	WorkloadReadLinearizable Workload = "read-linearizable"
	// WorkloadMixed does 90% linearizable reads and 10% writes.
	WorkloadMixed Workload = "mixed"
	// WorkloadTx posts a transaction of two upserts: POST /v1/tx.
	WorkloadTx Workload = "tx"
)

// Workloads returns every key-value workload (any Target).
func Workloads() []Workload {
	return []Workload{WorkloadWrite, WorkloadReadLocal, WorkloadReadLinearizable, WorkloadMixed, WorkloadTx}
}

// ContractWorkloads returns the workloads of the token contract (Tandem
// target only).
func ContractWorkloads() []Workload {
	return []Workload{WorkloadTransfer, WorkloadTransferHot, WorkloadTransferTx}
}

// reads reports whether the workload reads, and so needs the key space
// preloaded.
func (w Workload) reads() bool {
	return w == WorkloadReadLocal || w == WorkloadReadLinearizable || w == WorkloadMixed
}

// Config describes a run. Zero fields take the documented defaults.
type Config struct {
	// Target is the store to drive. If nil, Run drives the Tandem cluster
	// at Addrs through its REST API (NewTandemTarget, connections pinned).
	Target Target
	// Addrs are the base URLs of the nodes. Required without Target.
	Addrs []string
	// Workload defaults to WorkloadWrite.
	Workload Workload
	// Clients is the number of concurrent clients, default 64. With the
	// default target, client i sends every request to Addrs[i % len(Addrs)].
	Clients int
	// Duration is the length of the measured window, default 10s.
	Duration time.Duration
	// Warmup is how long the workload runs, unmeasured, before the window.
	// Zero means no warm-up.
	Warmup time.Duration
	// Keys is the size of the key space, default 100000.
	Keys int
	// ValueSize is the size in bytes of a written value, default 256. The
	// Tandem target stores it as the record {"v": value}.
	ValueSize int
	// NoPreload skips the preload of the key space before read workloads,
	// for a caller that knows every key has been written already.
	NoPreload bool
	// PreloadRate, if positive, paces the preload to about this many keys
	// per second. A burst of writes can leave a store slower for the
	// reads that follow than its steady state is: etcd 3.4 copies its
	// backend's read buffer on every serializable read, and the copy is as
	// long as the largest burst the buffer has held (bench/compare/README.md).
	PreloadRate int
	// Table is the table the default target uses, default "bench". Run
	// creates it with primary key "id" (string) and attribute "v"
	// (string), or keeps it if it exists with that shape.
	Table string
	// Timeout bounds each operation of the default target, default 30s;
	// a Target given in Config applies its own.
	Timeout time.Duration
	// Seed seeds each client's choice of keys and operations; runs with the
	// same seed make the same choices.
	Seed uint64
	// ClientOptions are passed to client.New, for instance to use another
	// http.Client.
	ClientOptions []client.Option
	// Logf, if set, is told about setup and preload progress.
	Logf func(format string, args ...any)
	// Window, if set, is called with true when the measured window opens
	// and with false once it has closed and every client has stopped: a
	// caller can sample the servers' resource use over the window.
	Window func(open bool)
	// Contract is the token module (examples/token built with `tandem
	// contract build`) for the transfer workloads.
	Contract []byte
	// Observe, if set, is called after every operation of the run, warm-up
	// included, with its kind ("read", "write", "tx"), when it was sent,
	// when its answer came, and its error. Clients call it concurrently.
	Observe func(kind string, start, end time.Time, err error)
}

// Config defaults.
const (
	DefaultClients   = 64
	DefaultDuration  = 10 * time.Second
	DefaultKeys      = 100000
	DefaultValueSize = 256
	DefaultTable     = "bench"
	DefaultTimeout   = 30 * time.Second
)

// withDefaults returns a copy of cfg with the defaults filled in, or an
// error naming the first bad field.
func (cfg Config) withDefaults() (Config, error) {
	cfg.Addrs = slices.Clone(cfg.Addrs)
	cfg.ClientOptions = slices.Clone(cfg.ClientOptions)
	if cfg.Workload == "" {
		cfg.Workload = WorkloadWrite
	}
	if cfg.Clients == 0 {
		cfg.Clients = DefaultClients
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Keys == 0 {
		cfg.Keys = DefaultKeys
	}
	if cfg.ValueSize == 0 {
		cfg.ValueSize = DefaultValueSize
	}
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	switch {
	case cfg.Target == nil && len(cfg.Addrs) == 0:
		return cfg, errors.New("bench: no node addresses")
	case !slices.Contains(Workloads(), cfg.Workload) && !slices.Contains(ContractWorkloads(), cfg.Workload):
		return cfg, fmt.Errorf("bench: unknown workload %q (want one of %v or %v)", cfg.Workload, Workloads(), ContractWorkloads())
	case cfg.Clients < 0, cfg.Duration < 0, cfg.Warmup < 0, cfg.Keys < 0, cfg.ValueSize < 0, cfg.Timeout < 0:
		return cfg, errors.New("bench: clients, duration, warm-up, keys, value size and timeout must not be negative")
	}
	if cfg.Target == nil {
		if err := tandem.ValidateName("table", cfg.Table); err != nil {
			return cfg, fmt.Errorf("bench: %w", err)
		}
		opts := append(cfg.ClientOptions, client.WithTimeout(cfg.Timeout))
		c, err := client.New(cfg.Addrs, opts...)
		if err != nil {
			return cfg, fmt.Errorf("bench: %w", err)
		}
		cfg.Target = NewTandemTarget(c, cfg.Table, false)
	}
	return cfg, nil
}

// Result is the outcome of a run.
type Result struct {
	Workload  Workload      `json:"workload"`
	Addrs     []string      `json:"addrs"`
	Clients   int           `json:"clients"`
	Keys      int           `json:"keys"`
	ValueSize int           `json:"value_size"`
	Start     time.Time     `json:"start"` // when the warm-up began
	Warmup    time.Duration `json:"warmup_ns"`
	Duration  time.Duration `json:"duration_ns"` // length of the measured window
	OpStats
	// ByOp breaks OpStats down by kind of operation ("read", "write",
	// "tx") for workloads that mix kinds.
	ByOp map[string]OpStats `json:"by_op,omitempty"`
	// ColdStart is, for contract workloads, the time from the deploy
	// request to the first call's answer.
	ColdStart time.Duration `json:"cold_start_ns,omitempty"`
	// Errors counts the operations of the window that failed, by error
	// code: an API code such as "unavailable", "client_timeout" when
	// Config.Timeout passed, or "transport" when no answer came.
	Errors map[string]int64 `json:"errors,omitempty"`
}

// ErrorCount returns the number of failed operations in the window.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// OpStats is the throughput and latency of successful operations.
type OpStats struct {
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Latency   Latency `json:"latency"`
}

// Latency summarizes a Histogram.
type Latency struct {
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}

// LatencyOf summarizes h.
func LatencyOf(h *Histogram) Latency {
	return Latency{
		Mean: h.Mean(),
		P50:  h.Quantile(0.50),
		P90:  h.Quantile(0.90),
		P99:  h.Quantile(0.99),
		P999: h.Quantile(0.999),
		Max:  h.Max(),
	}
}

func statsOf(h *Histogram, window time.Duration) OpStats {
	return OpStats{
		Ops:       int64(h.Count()),
		OpsPerSec: float64(h.Count()) / window.Seconds(),
		Latency:   LatencyOf(h),
	}
}

// Run prepares the store, runs the workload for cfg.Warmup plus
// cfg.Duration, and returns what it measured. It fails if the setup fails or
// ctx ends; failed operations during the run are counted in the Result, not
// returned.
func Run(ctx context.Context, cfg Config) (Result, error) {
	made := cfg.Target == nil
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	if t, ok := cfg.Target.(*TandemTarget); ok && made {
		defer t.c.Close() // its multiplexed connections, if any
	}
	val := newValue(cfg.ValueSize, cfg.Seed)
	if err := cfg.Target.Prepare(ctx); err != nil {
		return Result{}, err
	}
	if t, ok := cfg.Target.(*TandemTarget); ok {
		cfg.Logf("table %s ready", t.table)
	} else {
		cfg.Logf("target %v ready", cfg.Target.Endpoints())
	}
	if cfg.Workload.reads() && !cfg.NoPreload {
		if err := preload(ctx, &cfg, val); err != nil {
			return Result{}, err
		}
		// Local reads on a follower that has not applied the preload yet
		// would find no record (TestBenchSmoke saw a few not_found).
		if s, ok := cfg.Target.(Settler); ok {
			if err := s.Settle(ctx); err != nil {
				return Result{}, err
			}
		}
	}
	var cold time.Duration
	if cfg.Workload.contract() {
		if cold, err = prepareToken(ctx, &cfg); err != nil {
			return Result{}, err
		}
	}
	res, err := measure(ctx, &cfg, val)
	res.ColdStart = cold
	return res, err
}

func measure(ctx context.Context, cfg *Config, val []byte) (Result, error) {
	start := time.Now()
	warmEnd := start.Add(cfg.Warmup)
	end := warmEnd.Add(cfg.Duration)
	// Operations still in flight at the end would not count anyway.
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	workers := make([]*worker, cfg.Clients)
	var wg sync.WaitGroup
	if cfg.Window != nil {
		wg.Go(func() {
			t := time.NewTimer(time.Until(warmEnd))
			defer t.Stop()
			select {
			case <-t.C:
			case <-runCtx.Done():
			}
			cfg.Window(true)
		})
	}
	for i := range workers {
		w := newWorker(cfg.Target.Conn(i), cfg, val, uint64(i))
		workers[i] = w
		wg.Go(func() { w.loop(runCtx, warmEnd, end) })
	}
	wg.Wait() // the window goroutine too: it ends by runCtx at the latest
	if cfg.Window != nil {
		cfg.Window(false)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}

	res := Result{
		Workload:  cfg.Workload,
		Addrs:     cfg.Target.Endpoints(),
		Clients:   cfg.Clients,
		Keys:      cfg.Keys,
		ValueSize: cfg.ValueSize,
		Start:     start,
		Warmup:    cfg.Warmup,
		Duration:  cfg.Duration,
	}
	var all Histogram
	var byKind [numKinds]*Histogram
	for _, w := range workers {
		for k, h := range w.hists {
			if h == nil {
				continue
			}
			if byKind[k] == nil {
				byKind[k] = new(Histogram)
			}
			byKind[k].Merge(h)
			all.Merge(h)
		}
		for code, n := range w.errs {
			if res.Errors == nil {
				res.Errors = make(map[string]int64)
			}
			res.Errors[code] += n
		}
	}
	res.OpStats = statsOf(&all, cfg.Duration)
	if cfg.Workload == WorkloadMixed {
		res.ByOp = make(map[string]OpStats)
		for k, h := range byKind {
			if h != nil {
				res.ByOp[opKind(k).String()] = statsOf(h, cfg.Duration)
			}
		}
	}
	return res, nil
}
