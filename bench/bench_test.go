package bench_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/bench"
)

// cluster fakes the API of a few nodes over one in-memory table.
type cluster struct {
	mu        sync.Mutex
	records   map[string][]byte
	tables    int            // PUT /v1/tables/bench
	byNode    map[string]int // record and tx requests per node
	reads     map[string]int // GETs by consistency parameter
	puts, txs int
	badTx     string // first malformed transaction seen
	readsLate int    // GETs of a key that was not preloaded
	// failEvery, if set, makes every n-th record write fail with 503.
	failEvery int
	nodes     []*httptest.Server
}

func newCluster(t *testing.T, nodes int) *cluster {
	c := &cluster{records: make(map[string][]byte), byNode: make(map[string]int), reads: make(map[string]int)}
	for i := range nodes {
		name := string(rune('a' + i))
		mux := http.NewServeMux()
		mux.HandleFunc("PUT /v1/tables/bench", func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			c.tables++
			c.mu.Unlock()
			io.WriteString(w, `{"table":{"name":"bench","primary_key":"id","attributes":{"id":"string","v":"string"},"version":1}}`)
		})
		// TandemTarget.Settle reads the table on every node after a preload.
		mux.HandleFunc("GET /v1/tables/bench", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"table":{"name":"bench","primary_key":"id","attributes":{"id":"string","v":"string"},"version":1}}`)
		})
		mux.HandleFunc("PUT /v1/tables/bench/records/{key}", func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			c.mu.Lock()
			defer c.mu.Unlock()
			c.byNode[name]++
			c.puts++
			if c.failEvery > 0 && c.puts%c.failEvery == 0 {
				w.WriteHeader(503)
				io.WriteString(w, `{"error":{"code":"unavailable","message":"no leader"}}`)
				return
			}
			c.records[r.PathValue("key")] = b
			w.Header().Set("Tandem-Index", "5")
			io.WriteString(w, `{"key":"`+r.PathValue("key")+`","version":5}`)
		})
		mux.HandleFunc("GET /v1/tables/bench/records/{key}", func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.byNode[name]++
			c.reads[r.URL.Query().Get("consistency")]++
			b, ok := c.records[r.PathValue("key")]
			if !ok {
				c.readsLate++
				w.WriteHeader(404)
				io.WriteString(w, `{"error":{"code":"not_found","message":"no such record"}}`)
				return
			}
			w.Header().Set("ETag", `"5"`)
			w.Write(b)
		})
		mux.HandleFunc("POST /v1/tx", func(w http.ResponseWriter, r *http.Request) {
			var tx tandem.Tx
			err := json.NewDecoder(r.Body).Decode(&tx)
			c.mu.Lock()
			defer c.mu.Unlock()
			c.byNode[name]++
			c.txs++
			if err == nil {
				err = tx.Validate()
			}
			for _, op := range tx.Ops {
				var rec struct{ ID, V string }
				if json.Unmarshal(op.Record, &rec) != nil || rec.ID != op.Key || op.Op != tandem.OpUpsert || op.Table != "bench" {
					err = tandem.Errorf(tandem.CodeInvalid, "bad op %+v", op)
				}
				c.records[op.Key] = op.Record
			}
			if err != nil && c.badTx == "" {
				c.badTx = err.Error()
			}
			io.WriteString(w, `{"index":5}`)
		})
		s := httptest.NewServer(mux)
		t.Cleanup(s.Close)
		c.nodes = append(c.nodes, s)
	}
	return c
}

func (c *cluster) addrs() []string {
	var a []string
	for _, s := range c.nodes {
		a = append(a, s.URL)
	}
	return a
}

func TestRun(t *testing.T) {
	for _, w := range bench.Workloads() {
		t.Run(string(w), func(t *testing.T) {
			c := newCluster(t, 2)
			var logs []string
			cfg := bench.Config{
				Addrs:     c.addrs(),
				Workload:  w,
				Clients:   4,
				Warmup:    50 * time.Millisecond,
				Duration:  200 * time.Millisecond,
				Keys:      2000,
				ValueSize: 100,
				Logf:      func(f string, args ...any) { logs = append(logs, f) },
			}
			res, err := bench.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Workload != w || res.Clients != 4 || res.Duration != cfg.Duration || len(res.Addrs) != 2 {
				t.Errorf("result describes the wrong run: %+v", res)
			}
			if res.Ops == 0 || res.OpsPerSec <= 0 || res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
				t.Errorf("implausible stats: %+v", res.OpStats)
			}
			if res.ErrorCount() != 0 {
				t.Errorf("errors: %v", res.Errors)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.tables != 1 {
				t.Errorf("table created %d times", c.tables)
			}
			if c.byNode["a"] == 0 || c.byNode["b"] == 0 {
				t.Errorf("requests per node %v: the clients are not spread", c.byNode)
			}
			if c.badTx != "" {
				t.Errorf("bad transaction: %s", c.badTx)
			}
			if c.readsLate != 0 {
				t.Errorf("%d reads of keys that were not preloaded", c.readsLate)
			}
			preloaded := len(logs) > 0 && strings.Contains(strings.Join(logs, "\n"), "preloaded")
			switch w {
			case bench.WorkloadWrite:
				if c.puts == 0 || c.txs != 0 || len(c.reads) != 0 || preloaded {
					t.Errorf("write workload: %d puts, %d txs, reads %v, preloaded %v", c.puts, c.txs, c.reads, preloaded)
				}
				for _, rec := range c.records {
					if n := len(rec); n < 90 || n > 110 || !json.Valid(rec) {
						t.Errorf("record of %d bytes for a value size of 100: %s", n, rec)
					}
					break
				}
			case bench.WorkloadReadLocal:
				if c.reads["local"] == 0 || len(c.reads) != 1 || c.puts != 0 || !preloaded || len(c.records) != cfg.Keys {
					t.Errorf("read-local: reads %v, %d puts, %d keys, preloaded %v", c.reads, c.puts, len(c.records), preloaded)
				}
			case bench.WorkloadReadLinearizable:
				if c.reads[""] == 0 || len(c.reads) != 1 || c.puts != 0 || !preloaded {
					t.Errorf("read-linearizable: reads %v, %d puts, preloaded %v", c.reads, c.puts, preloaded)
				}
			case bench.WorkloadMixed:
				reads, writes := res.ByOp["read"], res.ByOp["write"]
				if reads.Ops+writes.Ops != res.Ops || writes.Ops == 0 {
					t.Fatalf("mixed: by op %+v, total %d", res.ByOp, res.Ops)
				}
				if share := float64(writes.Ops) / float64(res.Ops); share < 0.03 || share > 0.2 {
					t.Errorf("mixed: %.1f%% writes, want about 10%%", share*100)
				}
			case bench.WorkloadTx:
				if c.txs == 0 || c.puts != 0 {
					t.Errorf("tx workload: %d txs, %d puts", c.txs, c.puts)
				}
			}
		})
	}
}

func TestRunCountsErrors(t *testing.T) {
	c := newCluster(t, 1)
	c.failEvery = 4
	res, err := bench.Run(context.Background(), bench.Config{
		Addrs: c.addrs(), Clients: 2, Duration: 100 * time.Millisecond, Keys: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["unavailable"] == 0 || len(res.Errors) != 1 {
		t.Errorf("errors = %v, want some unavailable", res.Errors)
	}
	if ratio := float64(res.ErrorCount()) / float64(res.Ops+res.ErrorCount()); ratio < 0.15 || ratio > 0.35 {
		t.Errorf("%.2f of the operations failed, want about 1/4", ratio)
	}
}

func TestRunFails(t *testing.T) {
	c := newCluster(t, 1)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		cfg  bench.Config
		want string
	}{
		{"no addresses", context.Background(), bench.Config{}, "no node addresses"},
		{"unknown workload", context.Background(), bench.Config{Addrs: c.addrs(), Workload: "scan"}, "unknown workload"},
		{"negative", context.Background(), bench.Config{Addrs: c.addrs(), Clients: -1}, "must not be negative"},
		{"bad table", context.Background(), bench.Config{Addrs: c.addrs(), Table: "_x"}, "table name"},
		{"table refused", context.Background(), bench.Config{Addrs: c.addrs(), Table: "other"}, "create table other"},
		{"canceled", canceled, bench.Config{Addrs: c.addrs(), Duration: time.Second}, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bench.Run(tc.ctx, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
