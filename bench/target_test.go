package bench_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem/bench"
)

// memTarget is a store in memory that fails every n-th write with a coded
// error.
type memTarget struct {
	mu        sync.Mutex
	data      map[string]int
	reads     map[bench.Consistency]int
	txs       int
	prepared  int
	failEvery int
	writes    atomic.Int64
}

type codedErr struct{}

func (codedErr) Error() string     { return "overloaded" }
func (codedErr) ErrorCode() string { return "overloaded" }

func (m *memTarget) Prepare(context.Context) error { m.prepared++; return nil }
func (m *memTarget) Conn(int) bench.Conn           { return m }
func (m *memTarget) Endpoints() []string           { return []string{"mem"} }
func (m *memTarget) MaxTxRecords() int             { return 7 }

func (m *memTarget) Put(_ context.Context, key string, v []byte) error {
	if n := m.writes.Add(1); m.failEvery > 0 && n%int64(m.failEvery) == 0 {
		return codedErr{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[key] = len(v)
	return nil
}

func (m *memTarget) Get(_ context.Context, key string, c bench.Consistency) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads[c]++
	if _, ok := m.data[key]; !ok {
		return errors.New("not found")
	}
	return nil
}

func (m *memTarget) Tx(_ context.Context, kvs []bench.KV) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(kvs) > 7 {
		return errors.New("too many records")
	}
	m.txs++
	for _, kv := range kvs {
		m.data[kv.Key] = len(kv.Value)
	}
	return nil
}

func TestRunTarget(t *testing.T) {
	m := &memTarget{data: make(map[string]int), reads: make(map[bench.Consistency]int), failEvery: 5}
	var observed, observedErrs atomic.Int64
	var window []bool
	cfg := bench.Config{
		Target: m, Workload: bench.WorkloadWrite, Clients: 3, Keys: 50, ValueSize: 40,
		Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond,
		Window: func(open bool) { window = append(window, open) },
		Observe: func(kind string, start, end time.Time, err error) {
			observed.Add(1)
			if err != nil {
				observedErrs.Add(1)
			}
			if kind != "write" || end.Before(start) {
				t.Errorf("observed %s from %v to %v", kind, start, end)
			}
		},
	}
	res, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m.prepared != 1 || len(window) != 2 || !window[0] || window[1] {
		t.Errorf("prepared %d times, window calls %v", m.prepared, window)
	}
	if res.Ops == 0 || res.Errors["overloaded"] == 0 || len(res.Errors) != 1 {
		t.Errorf("ops %d, errors %v", res.Ops, res.Errors)
	}
	if n := observed.Load(); n < res.Ops+res.ErrorCount() || observedErrs.Load() < res.ErrorCount() {
		t.Errorf("observed %d ops (%d failed), the window has %d and %d", n, observedErrs.Load(), res.Ops, res.ErrorCount())
	}
	if len(res.Addrs) != 1 || res.Addrs[0] != "mem" {
		t.Errorf("addrs %v", res.Addrs)
	}
	for _, size := range m.data {
		if size != 40 {
			t.Fatalf("value of %d bytes, want 40", size)
		}
	}

	// Reads: the preload respects MaxTxRecords and loads every key; local
	// reads ask for Local.
	m.failEvery = 0
	cfg.Workload, cfg.Window, cfg.Observe = bench.WorkloadReadLocal, nil, nil
	res, err = bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorCount() != 0 || m.reads[bench.Local] == 0 || m.reads[bench.Linearizable] != 0 || m.txs < 50/7 {
		t.Errorf("read-local: errors %v, reads %v, %d preload txs", res.Errors, m.reads, m.txs)
	}
}

// TestPreloadRate: a paced preload still loads every key, and hands out
// its batches no faster than the rate (a lower bound on its duration: the
// last batch of 7 keys may start at (keys-7)/rate seconds, not before).
func TestPreloadRate(t *testing.T) {
	m := &memTarget{data: make(map[string]int), reads: make(map[bench.Consistency]int)}
	const keys, rate = 700, 2000
	began := time.Now()
	if err := bench.Preload(context.Background(), bench.Config{Target: m, Keys: keys, Clients: 4, ValueSize: 10, PreloadRate: rate}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	if len(m.data) != keys {
		t.Fatalf("preloaded %d keys, want %d", len(m.data), keys)
	}
	if min := time.Duration(float64(keys-7) / rate * float64(time.Second)); took < min {
		t.Fatalf("preload of %d keys at %d/s took %v, less than %v", keys, rate, took, min)
	}
	// Cancelled while it waits for its next batch: it stops, with the
	// context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	m2 := &memTarget{data: make(map[string]int), reads: make(map[bench.Consistency]int)}
	err := bench.Preload(ctx, bench.Config{Target: m2, Keys: 7000, Clients: 4, ValueSize: 10, PreloadRate: 1000})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled paced preload: %v, want context.DeadlineExceeded", err)
	}
	if n := len(m2.data); n == 0 || n >= 7000 {
		t.Fatalf("cancelled paced preload loaded %d of 7000 keys", n)
	}
}
