package store_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// TestCrashLeavesConsistentPrefix simulates power loss on a store that runs
// without a Pebble WAL. Whatever survives must be exactly the state after
// some prefix of the applied entries, at least up to the last snapshot (the
// point up to which Raft may drop its log), with the matching applied index
// and ledger hash; replaying the rest must give the same state as a store
// that never crashed.
func TestCrashLeavesConsistentPrefix(t *testing.T) {
	const total, snapAt = 120, 60
	for seed := int64(0); seed < 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s, err := store.Open(store.Options{Dir: "db", FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			entries := crashWorkload(t, total)
			applyAll(t, s, entries[:snapAt])
			sn, err := s.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sn.WriteTo(io.Discard); err != nil {
				t.Fatal(err)
			}
			sn.Close()
			applyAll(t, s, entries[snapAt:])
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: int(seed * 20), RNG: rand.New(rand.NewPCG(uint64(seed), 1))})
			s.Close()

			s2, err := store.Open(store.Options{Dir: "db", FS: crashed})
			if err != nil {
				t.Fatalf("reopen after crash: %v", err)
			}
			defer s2.Close()
			applied, hash := s2.State()
			// entries[:snapAt] hold indexes 1..snapAt.
			if applied < uint64(snapAt) || applied > uint64(total)+1 {
				t.Fatalf("after crash applied index is %d; want between %d (snapshot) and %d", applied, snapAt, total+1)
			}
			// The survivor must equal a reference store that applied
			// exactly the entries up to its applied index.
			ref := openStore(t, t.TempDir())
			applyAll(t, ref, entries[:applied])
			if _, refHash := ref.State(); refHash != hash {
				t.Fatalf("ledger hash at %d differs from a store that applied the same prefix", applied)
			}
			if got, want := store.Dump(s2), store.Dump(ref); got != want {
				t.Fatalf("state at applied index %d is not the state of that prefix:\n got %s\nwant %s", applied, got, want)
			}
			// Replay (as Raft does after restart): entries at or below the
			// applied index are skipped, the rest applied once.
			applyAll(t, s2, entries)
			applyAll(t, ref, entries[applied:])
			if got, want := store.Dump(s2), store.Dump(ref); got != want {
				t.Fatalf("after replay the state differs from a store that never crashed")
			}
		})
	}
}

// crashWorkload builds entries: a table, then upserts of distinct records
// and of one counter record, so that any lost or doubled entry shows.
func crashWorkload(t *testing.T, n int) []store.LogEntry {
	a := &applier{t: t}
	entries := []store.LogEntry{a.entry(createTable(tandem.TableSchema{
		Name: "t", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"},
	}))}
	for i := 1; i <= n; i++ {
		entries = append(entries, a.entry(
			upsert("t", map[string]any{"id": fmt.Sprint("r", i), "n": i}),
			upsert("t", map[string]any{"id": "counter", "n": i}),
		))
	}
	return entries
}

// applyAll applies entries in small groups, as Raft hands them over.
func applyAll(t *testing.T, s *store.Store, entries []store.LogEntry) {
	t.Helper()
	for len(entries) > 0 {
		n := min(len(entries), 1+len(entries)%3)
		if _, err := s.Apply(entries[:n]); err != nil {
			t.Fatal(err)
		}
		entries = entries[n:]
	}
}
