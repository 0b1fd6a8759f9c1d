package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemdb/tandem/client"
)

// keyName returns the primary key of key number i.
func keyName(i int) string { return "k" + strconv.Itoa(i) }

// newValue returns the value every write stores: size letters and digits,
// built once and shared read-only by every client so that the load
// generator spends its time on requests.
func newValue(size int, seed uint64) []byte {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rng := rand.New(rand.NewPCG(seed, 0x7a6d))
	v := make([]byte, max(1, size))
	for i := range v {
		v[i] = letters[rng.IntN(len(letters))]
	}
	return v
}

type opKind int

const (
	opRead opKind = iota
	opWrite
	opTx
	opCall
	numKinds
)

func (k opKind) String() string {
	switch k {
	case opRead:
		return "read"
	case opWrite:
		return "write"
	case opTx:
		return "tx"
	case opCall:
		return "call"
	}
	return "op" + strconv.Itoa(int(k))
}

// worker is one client of the closed loop. Only its own goroutine touches
// it until the run ends.
type worker struct {
	conn     Conn
	workload Workload
	keys     int
	val      []byte
	rng      *rand.Rand
	observe  func(kind string, start, end time.Time, err error)
	hists    [numKinds]*Histogram // allocated on first use
	errs     map[string]int64
}

func newWorker(conn Conn, cfg *Config, val []byte, id uint64) *worker {
	return &worker{
		conn:     conn,
		workload: cfg.Workload,
		keys:     cfg.Keys,
		val:      val,
		rng:      rand.New(rand.NewPCG(cfg.Seed, id)),
		observe:  cfg.Observe,
		errs:     make(map[string]int64),
	}
}

func (w *worker) loop(ctx context.Context, warmEnd, end time.Time) {
	for {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		kind := w.next()
		err := w.do(ctx, kind)
		t1 := time.Now()
		if w.observe != nil {
			w.observe(kind.String(), t0, t1, err)
		}
		if t1.Before(warmEnd) || !t1.Before(end) {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.errs[errorCode(err)]++
			continue
		}
		h := w.hists[kind]
		if h == nil {
			h = new(Histogram)
			w.hists[kind] = h
		}
		h.Record(t1.Sub(t0))
	}
}

func (w *worker) next() opKind {
	switch w.workload {
	case WorkloadWrite:
		return opWrite
	case WorkloadTx:
		return opTx
	case WorkloadTransfer, WorkloadTransferHot, WorkloadTransferTx:
		return opCall
	case WorkloadMixed:
		if w.rng.IntN(10) == 0 {
			return opWrite
		}
	}
	return opRead
}

func (w *worker) do(ctx context.Context, kind opKind) error {
	if kind == opCall {
		return w.transfer(ctx)
	}
	k := w.rng.IntN(w.keys)
	switch kind {
	case opWrite:
		return w.conn.Put(ctx, keyName(k), w.val)
	case opTx:
		k2 := w.rng.IntN(w.keys)
		for k2 == k && w.keys > 1 {
			k2 = w.rng.IntN(w.keys)
		}
		return w.conn.Tx(ctx, []KV{{keyName(k), w.val}, {keyName(k2), w.val}})
	default:
		cons := Linearizable
		if w.workload == WorkloadReadLocal {
			cons = Local
		}
		return w.conn.Get(ctx, keyName(k), cons)
	}
}

// errorCode classifies a failed operation for Result.Errors.
func errorCode(err error) string {
	var e *client.Error
	var coded interface{ ErrorCode() string }
	switch {
	case errors.As(err, &e):
		return string(e.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "client_timeout"
	case errors.As(err, &coded):
		return coded.ErrorCode()
	}
	return "transport"
}

// Preload writes every key of cfg's key space, as Run does before a read
// workload unless cfg.NoPreload is set: a caller that runs several read
// workloads can load once and skip it in each run.
func Preload(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if err := cfg.Target.Prepare(ctx); err != nil {
		return err
	}
	return preload(ctx, &cfg, newValue(cfg.ValueSize, cfg.Seed))
}

// preload upserts every key of the key space, in transactions of many
// records sent by a few goroutines: far faster than one PUT per key, and
// the preload is not what is measured.
func preload(parent context.Context, cfg *Config, val []byte) error {
	// Keep each transaction near 1 MiB, and within the target's bound.
	batch := max(1, min(500, (1<<20)/(cfg.ValueSize+64)))
	if l, ok := cfg.Target.(TxLimiter); ok {
		batch = max(1, min(batch, l.MaxTxRecords()))
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)

	var done atomic.Int64
	starts := make(chan int)
	var wg sync.WaitGroup
	for i := range min(cfg.Clients, 16, (cfg.Keys+batch-1)/batch) {
		conn := cfg.Target.Conn(i)
		wg.Go(func() {
			for start := range starts {
				end := min(start+batch, cfg.Keys)
				kvs := make([]KV, 0, end-start)
				for i := start; i < end; i++ {
					kvs = append(kvs, KV{keyName(i), val})
				}
				if err := conn.Tx(ctx, kvs); err != nil {
					cancel(fmt.Errorf("bench: preload keys %s to %s: %w", keyName(start), keyName(end-1), err))
					return
				}
				done.Add(int64(end - start))
			}
		})
	}

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	cfg.Logf("preloading %d keys", cfg.Keys)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	began := time.Now()
	feed, stop, next := starts, ctx.Done(), 0
	// With a rate, batch next is handed out no earlier than next/rate
	// seconds in: until then feed is held back (nil) and pace fires.
	var pace <-chan time.Time
	hold := func() {
		if cfg.PreloadRate <= 0 || feed == nil {
			return
		}
		due := began.Add(time.Duration(float64(next) / float64(cfg.PreloadRate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			feed, pace = nil, time.After(d)
		}
	}
	for feed != nil || pace != nil || finished != nil {
		select {
		case feed <- next: // a nil channel once every batch is handed out
			if next += batch; next >= cfg.Keys {
				close(starts)
				feed = nil
			} else {
				hold()
			}
		case <-pace:
			feed, pace = starts, nil
		case <-stop:
			if feed != nil || pace != nil {
				close(starts)
				feed, pace = nil, nil
			}
			stop = nil
		case <-tick.C:
			cfg.Logf("preloaded %d/%d keys", done.Load(), cfg.Keys)
		case <-finished:
			finished = nil
		}
	}
	if err := context.Cause(ctx); err != nil {
		if perr := parent.Err(); perr != nil {
			return fmt.Errorf("bench: preload: %w", perr)
		}
		return err
	}
	cfg.Logf("preloaded %d keys in %v", cfg.Keys, time.Since(began).Round(time.Millisecond))
	return nil
}
