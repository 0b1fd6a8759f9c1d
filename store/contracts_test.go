package store_test

import (
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// TestQueryCondition: the hash a contract computes from Store.Query holds
// at apply while the query's answer is unchanged, and fails when a record
// appears (phantom), changes version, or leaves the answer. Conditions see
// earlier commands of the same entry.
func TestQueryCondition(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "acc", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"}}))
	a.apply(upsert("acc", map[string]any{"id": "a", "n": 5}), upsert("acc", map[string]any{"id": "b", "n": 1}))

	q := &tandem.Query{Table: "acc", Filters: []tandem.Filter{{Attr: "n", Op: tandem.FilterGe, Values: []string{"5"}}}, Limit: 10}
	sc, err := s.Table("acc")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := tandem.QueryHash(sc, res)
	if err != nil {
		t.Fatal(err)
	}
	guarded := func(rec map[string]any) tandem.Command {
		c := upsert("acc", rec)
		c.Tx.Conditions = []tandem.Condition{{Kind: tandem.CondQuery, Table: "acc", Query: q, Hash: hash}}
		return c
	}
	applyOne := func(cmds ...tandem.Command) []tandem.Result {
		t.Helper()
		res, err := s.Apply([]store.LogEntry{a.entry(cmds...)})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	// b stays below 5: the answer is unchanged.
	if r := applyOne(guarded(map[string]any{"id": "b", "n": 2})); r[0].Err != nil {
		t.Fatalf("unchanged answer: %v", r[0].Err)
	}
	// An earlier command of the same entry adds c to the answer.
	r := applyOne(upsert("acc", map[string]any{"id": "c", "n": 9}), guarded(map[string]any{"id": "b", "n": 3}))
	if r[0].Err != nil || tandem.ErrorCode(r[1].Err) != tandem.CodeConflict {
		t.Fatalf("phantom: %v, %v", r[0].Err, r[1].Err)
	}
	// Recompute; then a version change of a matching record fails it.
	res, _ = s.Query(q)
	hash, _ = tandem.QueryHash(sc, res)
	if r := applyOne(upsert("acc", map[string]any{"id": "a", "n": 6}), guarded(map[string]any{"id": "b", "n": 3})); tandem.ErrorCode(r[1].Err) != tandem.CodeConflict {
		t.Fatalf("changed version: %v", r[1].Err)
	}
	if got := mustGet(t, s, "acc", "b"); got == "" {
		t.Fatal("b vanished")
	}
}

// TestViewContractCache: View.Contract and Store.Contract decode a
// contract's info once and share it while the contracts are unchanged; a
// new version, a rollback and a new contract are seen at once, and an
// older view keeps its own state.
func TestViewContractCache(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	deploy := func(code string) tandem.Command {
		return tandem.Command{Type: tandem.CmdDeployContract, Contract: &tandem.ContractDeploy{
			Name: "c", Wasm: []byte(code), SHA256: tandem.WasmSHA256([]byte(code)),
			Functions: []tandem.ContractFunction{{Name: "f"}},
		}}
	}
	info := func() *tandem.ContractInfo {
		t.Helper()
		v, err := s.View()
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		c, err := v.Contract("c")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a.apply(deploy("one"))
	first := info()
	if again := info(); again != first {
		t.Error("the unchanged info was decoded again")
	}
	a.apply(deploy("two"))
	second := info()
	if second == first || second.Active != 2 || len(second.Versions) != 2 {
		t.Fatalf("after a second deploy: %+v (same as before: %v)", second, second == first)
	}
	a.apply(tandem.Command{Type: tandem.CmdActivateContract, Name: "c", Version: 1})
	if back := info(); back.Active != 1 {
		t.Fatalf("after the rollback: active %d, want 1", back.Active)
	}
	// A view opened before a change keeps its own state.
	old, err := s.View()
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	a.apply(tandem.Command{Type: tandem.CmdActivateContract, Name: "c", Version: 2})
	if c, err := old.Contract("c"); err != nil || c.Active != 1 {
		t.Fatalf("an older view: %+v, %v; want version 1 active", c, err)
	}
	if now := info(); now.Active != 2 {
		t.Fatalf("after activating 2: active %d", now.Active)
	}
	// ... also once the cache holds the newer state.
	if c, err := old.Contract("c"); err != nil || c.Active != 1 {
		t.Fatalf("an older view after the cache moved on: %+v, %v; want version 1 active", c, err)
	}
	// Store.Contract shares the cache and sees every change at once, a
	// contract that did not exist included.
	if c, err := s.Contract("c"); err != nil || c.Active != 2 || c != info() {
		t.Fatalf("Store.Contract: %+v, %v; want the shared info with version 2 active", c, err)
	}
	if _, err := s.Contract("d"); tandem.ErrorCode(err) != tandem.CodeNotFound {
		t.Fatalf("Store.Contract of a missing contract: %v", err)
	}
	d := deploy("three")
	d.Contract.Name = "d"
	a.apply(d)
	if c, err := s.Contract("d"); err != nil || c.Active != 1 {
		t.Fatalf("Store.Contract right after a deploy: %+v, %v", c, err)
	}
	a.apply(tandem.Command{Type: tandem.CmdActivateContract, Name: "c", Version: 1})
	if c, err := s.Contract("c"); err != nil || c.Active != 1 {
		t.Fatalf("Store.Contract right after a rollback: %+v, %v", c, err)
	}
}

// TestContractConditionAtApply: a transaction conditioned on a contract's
// active version holds exactly when that version is active, whether the
// version changed in an earlier entry (the info comes from the decoding
// cache), earlier in the same entry, or in the same batch of entries (the
// info comes from the batch).
func TestContractConditionAtApply(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t"}))
	deploy := func(code string) tandem.Command {
		return tandem.Command{Type: tandem.CmdDeployContract, Contract: &tandem.ContractDeploy{
			Name: "c", Wasm: []byte(code), SHA256: tandem.WasmSHA256([]byte(code)),
			Functions: []tandem.ContractFunction{{Name: "f"}},
		}}
	}
	activate := func(v uint64) tandem.Command {
		return tandem.Command{Type: tandem.CmdActivateContract, Name: "c", Version: v}
	}
	onVersion := func(v uint64) tandem.Command {
		cmd := upsert("t", map[string]any{"id": "k", "v": v})
		cmd.Tx.Conditions = []tandem.Condition{{Kind: tandem.CondContract, Key: "c", Version: v}}
		return cmd
	}
	// results applies each group of commands as one entry, all entries in
	// one batch, and returns whether each command succeeded.
	results := func(entries ...[]tandem.Command) []bool {
		t.Helper()
		var les []store.LogEntry
		for _, cmds := range entries {
			les = append(les, a.entry(cmds...))
		}
		res, err := s.Apply(les)
		if err != nil {
			t.Fatal(err)
		}
		var ok []bool
		for _, r := range res {
			for _, x := range r {
				ok = append(ok, x.Err == nil)
			}
		}
		return ok
	}
	cmds := func(c ...tandem.Command) []tandem.Command { return c }

	if got := results(cmds(onVersion(1))); got[0] {
		t.Fatal("a condition on a contract that does not exist held")
	}
	a.apply(deploy("one"))
	a.apply(deploy("two"))
	// From the cache: version 2 is active.
	if got := results(cmds(onVersion(1)), cmds(onVersion(2))); got[0] || !got[1] {
		t.Fatalf("after two deploys, conditions on 1 and 2: %v, want false true", got)
	}
	// A rollback earlier in the same entry, then in an earlier entry of
	// the same batch.
	if got := results(cmds(activate(1), onVersion(1), onVersion(2))); !got[0] || !got[1] || got[2] {
		t.Fatalf("rollback then conditions in one entry: %v, want true true false", got)
	}
	if got := results(cmds(activate(2)), cmds(onVersion(2), onVersion(1))); !got[0] || !got[1] || got[2] {
		t.Fatalf("activation then conditions in the next entry of the batch: %v, want true true false", got)
	}
	// And from the cache again, in later batches.
	if got := results(cmds(onVersion(2), onVersion(1))); !got[0] || got[1] {
		t.Fatalf("in a later batch: %v, want true false", got)
	}
	a.apply(activate(1))
	if got := results(cmds(onVersion(1), onVersion(2))); !got[0] || got[1] {
		t.Fatalf("after a rollback in an earlier batch: %v, want true false", got)
	}
}
