package store_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// BenchmarkApplyUpsert measures applying entries that each hold one
// single-record upsert, the common case; ns/op is per upsert.
func BenchmarkApplyUpsert(b *testing.B) {
	for _, bc := range []struct {
		name    string
		batch   int // entries per Apply call
		indexed bool
	}{
		{"batch=1", 1, false},
		{"batch=64", 64, false},
		{"batch=64/indexed", 64, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := openStore(b, b.TempDir())
			defer s.Close()
			a := newApplier(b, s)
			sc := tandem.TableSchema{Name: "t", Attributes: map[string]tandem.AttrType{"balance": tandem.TypeInt, "name": tandem.TypeString}}
			if bc.indexed {
				sc.Indexes = []string{"balance"}
			}
			a.apply(createTable(sc))

			// A ring of prepared entries; keys repeat so upserts replace.
			rng := rand.New(rand.NewPCG(1, 1))
			ring := make([]store.LogEntry, 8192)
			for i := range ring {
				ring[i] = a.entry(upsert("t", map[string]any{
					"id": fmt.Sprintf("user-%05d", i%2048), "name": "Some Body", "balance": rng.IntN(1_000_000),
				}))
			}
			next := a.index
			batch := make([]store.LogEntry, bc.batch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += bc.batch {
				n := min(bc.batch, b.N-i)
				for j := range n {
					next++
					batch[j] = ring[(i+j)%len(ring)]
					batch[j].Index = next
				}
				res, err := s.Apply(batch[:n])
				if err != nil {
					b.Fatal(err)
				}
				if res[0][0].Err != nil {
					b.Fatal(res[0][0].Err)
				}
			}
		})
	}
}

// BenchmarkGet measures point reads of small records.
func BenchmarkGet(b *testing.B) {
	s := openStore(b, b.TempDir())
	defer s.Close()
	a := newApplier(b, s)
	a.apply(createTable(tandem.TableSchema{Name: "t"}))
	const n = 10_000
	for i := 0; i < n; i += 100 {
		var entries []store.LogEntry
		for j := i; j < i+100; j++ {
			entries = append(entries, a.entry(upsert("t", map[string]any{"id": fmt.Sprintf("user-%05d", j), "name": "Some Body", "balance": j})))
		}
		if _, err := s.Apply(entries); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%05d", (i*7919)%n)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Get("t", keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				rd, err := s.Get("t", keys[i%len(keys)])
				if err != nil || !json.Valid(rd.JSON) && i == 0 {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}
