package store_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// The applier answers conditions on recently written records from its
// cache of them (store/reccache.go). These check that the cache never
// answers with a record that is gone or changed some other way.

func insert(table string, rec string) tandem.Command {
	return tandem.Command{Type: tandem.CmdTx, Tx: &tandem.Tx{Ops: []tandem.Op{{Op: tandem.OpInsert, Table: table, Record: []byte(rec)}}}}
}

// applyOne applies cmd as one entry and returns its result's error.
func applyOne(t *testing.T, a *applier, cmd tandem.Command) error {
	t.Helper()
	res, err := a.s.Apply([]store.LogEntry{a.entry(cmd)})
	if err != nil {
		t.Fatal(err)
	}
	return res[0][0].Err
}

func versionIs(table, key string, v uint64) tandem.Command {
	return tandem.Command{Type: tandem.CmdTx, Tx: &tandem.Tx{
		Conditions: []tandem.Condition{{Kind: tandem.CondVersion, Table: table, Key: key, Version: v}},
		Ops:        []tandem.Op{{Op: tandem.OpUpsert, Table: "log", Record: []byte(`{"id":"x"}`)}},
	}}
}

func TestRecordCacheFollowsWrites(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t"}), createTable(tandem.TableSchema{Name: "log"}))
	a.apply(upsert("t", map[string]any{"id": "k", "n": 1}))
	v1 := a.index
	if err := applyOne(t, a, versionIs("t", "k", v1)); err != nil {
		t.Fatalf("condition on the version just written: %v", err)
	}
	a.apply(upsert("t", map[string]any{"id": "k", "n": 2}))
	if err := applyOne(t, a, versionIs("t", "k", v1)); tandem.ErrorCode(err) != tandem.CodeConflict {
		t.Fatalf("condition on a replaced version: %v, want a conflict", err)
	}
	// Two transactions of one entry: the second sees the first's write.
	e := a.entry(upsert("t", map[string]any{"id": "k", "n": 3}), versionIs("t", "k", a.index+1))
	res, err := s.Apply([]store.LogEntry{e})
	if err != nil || res[0][1].Err != nil {
		t.Fatalf("condition on a write earlier in the entry: %v %v", err, res[0][1].Err)
	}
	// A deleted record is gone for the next insert's existence check.
	a.apply(tandem.Command{Type: tandem.CmdTx, Tx: &tandem.Tx{Ops: []tandem.Op{{Op: tandem.OpDelete, Table: "t", Key: "k"}}}})
	if err := applyOne(t, a, insert("t", `{"id":"k","n":4}`)); err != nil {
		t.Fatalf("insert after delete: %v", err)
	}
}

func TestRecordCacheAfterDropTable(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t"}))
	a.apply(upsert("t", map[string]any{"id": "k", "n": 1}))
	a.apply(tandem.Command{Type: tandem.CmdDropTable, Name: "t"})
	a.apply(createTable(tandem.TableSchema{Name: "t"}))
	// The record went with the table (a range delete, not through the
	// applier's writes): inserting it again must not conflict.
	if err := applyOne(t, a, insert("t", `{"id":"k","n":2}`)); err != nil {
		t.Fatalf("insert into the re-created table: %v", err)
	}
	if got := mustGet(t, s, "t", "k"); got != "v5 {\"_version\":5,\"id\":\"k\",\"n\":2}" {
		t.Fatalf("record = %s", got)
	}
}

func TestRecordCacheAfterRestore(t *testing.T) {
	// A snapshot without record k, restored over a store that just wrote
	// it: k must not exist afterwards.
	src := openStore(t, t.TempDir())
	defer src.Close()
	sa := newApplier(t, src)
	sa.apply(createTable(tandem.TableSchema{Name: "t"}))
	sa.apply(upsert("t", map[string]any{"id": "other", "n": 0}))
	snap := snapshotBytes(t, src)

	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t"}))
	a.apply(upsert("t", map[string]any{"id": "k", "n": 1}))
	if err := s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	a = newApplier(t, s)
	if err := applyOne(t, a, insert("t", `{"id":"k","n":2}`)); err != nil {
		t.Fatalf("insert of a record the snapshot does not have: %v", err)
	}
}

// Readers take recent writes from the cache too (Get, View.Get); a view
// must still see its own moment, not the cache's newer one.
func TestViewReadsThroughRecordCache(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t"}))
	a.apply(upsert("t", map[string]any{"id": "k", "n": 1}), upsert("t", map[string]any{"id": "gone", "n": 1}))
	first := a.index
	old, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	a.apply(upsert("t", map[string]any{"id": "k", "n": 2}))
	a.apply(tandem.Command{Type: tandem.CmdTx, Tx: &tandem.Tx{Ops: []tandem.Op{{Op: tandem.OpDelete, Table: "t", Key: "gone"}}}})

	for _, key := range []string{"k", "gone"} {
		rd, err := old.Get("t", key)
		if err != nil || rd.Version != first {
			t.Fatalf("the older view's %s: v%d %s, %v; want version %d", key, rd.Version, rd.JSON, err, first)
		}
	}
	if got, want := mustGet(t, s, "t", "k"), fmt.Sprintf(`v%d {"_version":%d,"id":"k","n":2}`, first+1, first+1); got != want {
		t.Fatalf("Get = %s, want %s", got, want)
	}
	if _, err := s.Get("t", "gone"); tandem.ErrorCode(err) != tandem.CodeNotFound {
		t.Fatalf("Get of the deleted record: %v, want not found", err)
	}
	now, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	defer now.Close()
	if rd, err := now.Get("t", "k"); err != nil || rd.Version != first+1 {
		t.Fatalf("a new view's k: v%d, %v; want version %d", rd.Version, err, first+1)
	}
	if _, err := now.Get("t", "gone"); tandem.ErrorCode(err) != tandem.CodeNotFound {
		t.Fatalf("a new view's deleted record: %v, want not found", err)
	}
}

// Readers race the applier (run under -race in CI): every read through
// one view agrees with its first, whether it came from the cache or
// Pebble, and Get never goes back in time.
func TestRecordCacheConcurrentReaders(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t"}))
	keys := []string{"a", "b", "c", "d"}
	for _, k := range keys {
		a.apply(upsert("t", map[string]any{"id": k}))
	}
	done := make(chan struct{})
	errs := make(chan error, 4)
	for r := 0; r < 3; r++ {
		go func() {
			last := map[string]uint64{}
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				v, err := s.View()
				if err != nil {
					errs <- err
					return
				}
				for _, k := range keys {
					first, err1 := v.Get("t", k)
					again, err2 := v.Get("t", k)
					if err1 != nil || err2 != nil || first.Version != again.Version || !bytes.Equal(first.JSON, again.JSON) {
						v.Close()
						errs <- fmt.Errorf("one view read %s as v%d (%v), then v%d (%v)", k, first.Version, err1, again.Version, err2)
						return
					}
					rd, err := s.Get("t", k)
					if err != nil || rd.Version < last[k] {
						v.Close()
						errs <- fmt.Errorf("Get(%s) = v%d, %v after v%d", k, rd.Version, err, last[k])
						return
					}
					last[k] = rd.Version
				}
				v.Close()
			}
		}()
	}
	for i := 0; i < 600; i++ {
		a.apply(upsert("t", map[string]any{"id": keys[i%len(keys)], "n": i}))
	}
	close(done)
	for r := 0; r < 3; r++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
