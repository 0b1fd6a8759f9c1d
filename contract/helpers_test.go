package contract_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/contract"
	"github.com/tandemdb/tandem/store"
	"github.com/tandemdb/tandem/tests/harness"
)

// env is a store with contracts deployed and a runtime to run them.
type env struct {
	t     testing.TB
	s     *store.Store
	rt    *contract.Runtime
	index uint64
}

func newEnv(t testing.TB, opts contract.Options) *env {
	t.Helper()
	s, err := store.Open(store.Options{Dir: t.TempDir(), CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Clock == nil {
		opts.Clock = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	}
	rt, err := contract.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, s: s, rt: rt}
	t.Cleanup(func() {
		rt.Close(context.Background())
		s.Close()
	})
	return e
}

// apply applies one entry and returns its command results.
func (e *env) apply(cmds ...tandem.Command) []tandem.Result {
	e.t.Helper()
	e.index++
	entry := &tandem.Entry{Time: int64(e.index) * 1e9, Commands: cmds}
	data, err := tandem.EncodeEntry(entry)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.s.Apply([]store.LogEntry{{Index: e.index, Data: data, Entry: entry}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res[0]
}

func (e *env) mustApply(cmds ...tandem.Command) {
	e.t.Helper()
	for i, r := range e.apply(cmds...) {
		if r.Err != nil {
			e.t.Fatalf("command %d: %v", i, r.Err)
		}
	}
}

func (e *env) createTable(sc tandem.TableSchema) {
	e.mustApply(tandem.Command{Type: tandem.CmdCreateTable, Table: &sc})
}

// deploy validates and deploys wasm as contract name.
func (e *env) deploy(name string, wasm []byte) {
	e.t.Helper()
	fns, err := e.rt.Validate(context.Background(), wasm)
	if err != nil {
		e.t.Fatalf("validate %s: %v", name, err)
	}
	e.mustApply(tandem.Command{Type: tandem.CmdDeployContract, Contract: &tandem.ContractDeploy{
		Name: name, Wasm: wasm, SHA256: tandem.WasmSHA256(wasm), Functions: fns}})
}

// exec runs one call against the current state.
func (e *env) exec(name, fn string, arg any) (*contract.Outcome, error) {
	e.t.Helper()
	var raw json.RawMessage
	if arg != nil {
		b, err := json.Marshal(arg)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = b
	}
	v, err := e.s.View()
	if err != nil {
		e.t.Fatal(err)
	}
	defer v.Close()
	return e.rt.Execute(context.Background(), v, tandem.ContractCall{Contract: name, Function: fn, Arg: raw, Caller: "alice"})
}

// commit executes and applies a call's transaction, failing the test on
// any error.
func (e *env) commit(name, fn string, arg any) *contract.Outcome {
	e.t.Helper()
	out, err := e.exec(name, fn, arg)
	if err != nil {
		e.t.Fatalf("%s.%s: %v", name, fn, err)
	}
	e.mustApply(tandem.Command{Type: tandem.CmdTx, Tx: out.Tx()})
	return out
}

func wantCode(t testing.TB, err error, code tandem.Code, what string) {
	t.Helper()
	if tandem.ErrorCode(err) != code {
		t.Fatalf("%s: got %v (code %q), want code %q", what, err, tandem.ErrorCode(err), code)
	}
	if tandem.ErrorMessage(err) == "" {
		t.Fatalf("%s: error without a message", what)
	}
}

// tokenEnv is an env with the example token's tables, the token deployed
// and initialised (its admin is the env's caller, "alice").
func tokenEnv(t testing.TB) *env {
	t.Helper()
	e := newEnv(t, contract.Options{})
	e.createTable(tandem.TableSchema{Name: "token_accounts", Attributes: map[string]tandem.AttrType{"balance": tandem.TypeInt}})
	e.createTable(tandem.TableSchema{Name: "token_meta"})
	e.deploy("token", harness.Contract(t, "examples/token"))
	e.commit("token", "init", nil)
	return e
}
