package store_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// applier feeds commands to a store as consecutive log entries.
type applier struct {
	t     testing.TB
	s     *store.Store
	index uint64
}

func newApplier(t testing.TB, s *store.Store) *applier {
	return &applier{t: t, s: s, index: s.AppliedIndex()}
}

// entry builds the next log entry holding cmds.
func (a *applier) entry(cmds ...tandem.Command) store.LogEntry {
	a.index++
	e := &tandem.Entry{Commands: cmds}
	data, err := tandem.EncodeEntry(e)
	if err != nil {
		a.t.Fatal(err)
	}
	return store.LogEntry{Index: a.index, Data: data, Entry: e}
}

// apply applies cmds as one entry and fails the test on any error.
func (a *applier) apply(cmds ...tandem.Command) {
	a.t.Helper()
	res, err := a.s.Apply([]store.LogEntry{a.entry(cmds...)})
	if err != nil {
		a.t.Fatal(err)
	}
	for i, r := range res[0] {
		if r.Err != nil {
			a.t.Fatalf("command %d: %v", i, r.Err)
		}
	}
}

func createTable(sc tandem.TableSchema) tandem.Command {
	return tandem.Command{Type: tandem.CmdCreateTable, Table: &sc}
}

func upsert(table string, rec map[string]any) tandem.Command {
	b, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	return tandem.Command{Type: tandem.CmdTx, Tx: &tandem.Tx{Ops: []tandem.Op{{Op: tandem.OpUpsert, Table: table, Record: b}}}}
}

func mustGet(t testing.TB, s *store.Store, table, key string) string {
	t.Helper()
	rd, err := s.Get(table, key)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", table, key, err)
	}
	return fmt.Sprintf("v%d %s", rd.Version, rd.JSON)
}
