package contract_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/contract"
	"github.com/tandemdb/tandem/tests/harness"
)

func probeEnv(t *testing.T, opts contract.Options) *env {
	e := newEnv(t, opts)
	e.createTable(tandem.TableSchema{Name: "kv", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"}})
	e.deploy("probe", harness.Contract(t, "contract/testdata/probe"))
	return e
}

// TestValidate: only compiling modules that export the SDK's entry points
// and describe their functions are accepted, with a reason otherwise.
func TestValidate(t *testing.T) {
	e := newEnv(t, contract.Options{})
	fns, err := e.rt.Validate(context.Background(), harness.Contract(t, "examples/token"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(fns)
	want := `[{"name":"balance","read_only":true},{"name":"init"},{"name":"mint"},{"name":"supply","read_only":true},{"name":"transfer"}]`
	if string(got) != want {
		t.Fatalf("functions %s, want %s", got, want)
	}
	for _, tc := range []struct {
		name, wasm, msg string
	}{
		{"garbage", "not wasm at all", "does not compile"},
		{"empty module", "\x00asm\x01\x00\x00\x00", "does not export tandem_alloc"},
		{"truncated", "\x00asm\x01", "does not compile"},
	} {
		_, err := e.rt.Validate(context.Background(), []byte(tc.wasm))
		wantCode(t, err, tandem.CodeInvalid, tc.name)
		if !strings.Contains(tandem.ErrorMessage(err), tc.msg) {
			t.Errorf("%s: message %q does not say %q", tc.name, tandem.ErrorMessage(err), tc.msg)
		}
	}
}

// TestExecuteReadsAndWrites: a call's reads become version conditions
// (absent records: not_exists), its writes the final state of each
// record, its own writes are visible to later reads, and events are
// collected.
func TestExecuteReadsAndWrites(t *testing.T) {
	e := probeEnv(t, contract.Options{})
	out := e.commit("probe", "add", map[string]any{"id": "a", "n": 5})
	if string(out.Result) != `{"id":"a","n":5}` {
		t.Fatalf("result %s", out.Result)
	}
	conds, _ := json.Marshal(out.Conditions)
	if want := `[{"if":"contract","key":"probe","version":1},{"if":"not_exists","table":"kv","key":"a"}]`; string(conds) != want {
		t.Fatalf("conditions %s, want %s", conds, want)
	}
	if len(out.Ops) != 1 || out.Ops[0].Op != tandem.OpUpsert || string(out.Ops[0].Record) != `{"id":"a","n":5}` {
		t.Fatalf("ops %+v", out.Ops)
	}
	if len(out.Events) != 1 || out.Events[0].Topic != "added" || string(out.Events[0].Payload) != `{"id":"a","n":5}` {
		t.Fatalf("events %+v", out.Events)
	}
	out = e.commit("probe", "add", map[string]any{"id": "a", "n": 2})
	if string(out.Result) != `{"id":"a","n":7}` {
		t.Fatalf("second add: %s", out.Result)
	}
	if c := out.Conditions[1]; c.Kind != tandem.CondVersion || c.Version == 0 {
		t.Fatalf("second add conditions %+v", out.Conditions)
	}
	// Stale: running the same outcome after another write conflicts.
	stale, err := e.exec("probe", "add", map[string]any{"id": "a", "n": 1})
	if err != nil {
		t.Fatal(err)
	}
	e.commit("probe", "add", map[string]any{"id": "a", "n": 1})
	res := e.apply(tandem.Command{Type: tandem.CmdTx, Tx: stale.Tx()})
	wantCode(t, res[0].Err, tandem.CodeConflict, "stale outcome")

	e.commit("probe", "patch", map[string]any{"id": "a", "n": 100})
	rd, err := e.s.Get("kv", "a")
	if err != nil || !strings.Contains(string(rd.JSON), `"n":100,"patched":true`) {
		t.Fatalf("after patch: %s %v", rd.JSON, err)
	}
	// Creating and deleting a record in one call leaves nothing to do.
	out = e.commit("probe", "create_delete", map[string]any{"id": "tmp", "n": 1})
	if len(out.Ops) != 0 {
		t.Fatalf("create_delete ops %+v", out.Ops)
	}
	e.commit("probe", "delete", map[string]any{"id": "a"})
	if _, err := e.s.Get("kv", "a"); tandem.ErrorCode(err) != tandem.CodeNotFound {
		t.Fatalf("after delete: %v", err)
	}
	// Environment: caller and the runtime clock.
	out, err = e.exec("probe", "env", nil)
	if err != nil || string(out.Result) != `{"caller":"alice","now":"2026-01-02T03:04:05Z"}` {
		t.Fatalf("env: %s %v", out.Result, err)
	}
}

// TestContractErrors: errors a function can see and handle, errors it
// returns, and faults that fail the call whatever it does.
func TestContractErrors(t *testing.T) {
	e := probeEnv(t, contract.Options{MaxWrites: 10})
	e.commit("probe", "put", map[string]any{"id": "x", "n": 1})
	cases := []struct {
		fn   string
		arg  any
		code tandem.Code
		msg  string
	}{
		{"fail", nil, tandem.CodeContractError, "no such luck"},
		// The function returns the host's error as its own.
		{"insert", map[string]any{"id": "x", "n": 2}, tandem.CodeContractError, "already exists"},
		{"patch", map[string]any{"id": "nope", "n": 2}, tandem.CodeContractError, "does not exist"},
		{"delete", map[string]any{"id": "nope"}, tandem.CodeContractError, "does not exist"},
		{"sneaky_write", nil, tandem.CodeContractFault, "read-only function"},
		{"many", 11, tandem.CodeContractFault, "more than 10 records"},
		{"query", "n=gt.0", tandem.CodeContractError, "needs a limit"},
		{"query", "n=gt.0&limit=5000", tandem.CodeContractError, "needs a limit"},
	}
	for _, tc := range cases {
		_, err := e.exec("probe", tc.fn, tc.arg)
		wantCode(t, err, tc.code, tc.fn)
		if !strings.Contains(tandem.ErrorMessage(err), tc.msg) {
			t.Errorf("%s: message %q does not say %q", tc.fn, tandem.ErrorMessage(err), tc.msg)
		}
	}
	out, err := e.exec("probe", "bad_record", nil)
	if err != nil || !strings.Contains(string(out.Result), "invalid: ") {
		t.Fatalf("bad_record: %s %v", out.Result, err)
	}
	_, err = e.exec("probe", "nope", nil)
	wantCode(t, err, tandem.CodeNotFound, "unknown function")
	_, err = e.exec("nope", "echo", nil)
	wantCode(t, err, tandem.CodeNotFound, "unknown contract")
}

// TestLimits: a contract that panics, loops forever, exhausts memory,
// returns too much or breaks the ABI fails only its own call, with a clear
// contract_fault, and the runtime keeps serving other calls.
func TestLimits(t *testing.T) {
	e := probeEnv(t, contract.Options{CallTimeout: 2 * time.Second, MemoryPages: 512, MaxArgSize: 1000, MaxResultSize: 1000})
	e.deploy("raw", harness.Contract(t, "contract/testdata/raw"))
	cases := []struct {
		contract, fn string
		arg          any
		code         tandem.Code
		msg          string
	}{
		{"probe", "panic", nil, tandem.CodeContractFault, "panic: boom"},
		{"probe", "loop", nil, tandem.CodeContractFault, "computation limit (1000000000 loop iterations)"},
		{"probe", "loop_get", nil, tandem.CodeContractFault, "time limit (2s)"},
		{"probe", "bomb", nil, tandem.CodeContractFault, "out of memory"},
		{"probe", "big_result", 2000, tandem.CodeContractFault, "limit is 1000"},
		{"probe", "echo", strings.Repeat("x", 1000), tandem.CodeTooLarge, "limit is 1000"},
		{"raw", "garbage", nil, tandem.CodeContractFault, "invalid JSON"},
		{"raw", "badptr", nil, tandem.CodeContractFault, "outside its memory"},
		{"raw", "badread", nil, tandem.CodeContractFault, "outside its memory"},
		{"raw", "badrequest", nil, tandem.CodeContractFault, "unknown host request"},
		{"raw", "noresult", nil, tandem.CodeContractFault, "without a result"},
	}
	for _, tc := range cases {
		_, err := e.exec(tc.contract, tc.fn, tc.arg)
		wantCode(t, err, tc.code, tc.fn)
		if !strings.Contains(tandem.ErrorMessage(err), tc.msg) {
			t.Errorf("%s: message %q does not say %q", tc.fn, tandem.ErrorMessage(err), tc.msg)
		}
		// The runtime still serves a good call after each fault.
		if out, err := e.exec("probe", "echo", 1); err != nil || string(out.Result) != "1" {
			t.Fatalf("echo after %s: %s %v", tc.fn, out.Result, err)
		}
	}
}

// TestConcurrentCalls: many goroutines share the runtime's instance pool;
// every call sees its own argument (no instance serves two calls at once).
func TestConcurrentCalls(t *testing.T) {
	e := probeEnv(t, contract.Options{PoolSize: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				arg := map[string]any{"id": "k", "n": g*100 + i}
				out, err := e.exec("probe", "echo", arg)
				if err != nil {
					errs <- err
					return
				}
				want, _ := json.Marshal(arg)
				if string(out.Result) != string(want) {
					errs <- tandem.Errorf(tandem.CodeInternal, "got %s, want %s", out.Result, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestQueryPhantom: a bounded query becomes a query condition; a record
// that later joins its answer makes the stale transaction conflict.
func TestQueryPhantom(t *testing.T) {
	e := probeEnv(t, contract.Options{})
	e.commit("probe", "put", map[string]any{"id": "a", "n": 5})
	out, err := e.exec("probe", "query", "n=ge.5&limit=10")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out.Result), `"id":"a"`) || len(out.Conditions) != 2 || out.Conditions[1].Kind != tandem.CondQuery {
		t.Fatalf("result %s, conditions %+v", out.Result, out.Conditions)
	}
	// Still valid: nothing changed.
	if r := e.apply(tandem.Command{Type: tandem.CmdTx, Tx: out.Tx()}); r[0].Err != nil {
		t.Fatalf("unchanged query: %v", r[0].Err)
	}
	e.commit("probe", "put", map[string]any{"id": "b", "n": 9})
	r := e.apply(tandem.Command{Type: tandem.CmdTx, Tx: out.Tx()})
	wantCode(t, r[0].Err, tandem.CodeConflict, "phantom")
}

// TestTokenContract runs the example token: init, mint by the admin only,
// transfers that never overdraw, read-only balance and supply.
func TestTokenContract(t *testing.T) {
	e := tokenEnv(t) // caller "alice" is the admin
	if _, err := e.exec("token", "init", nil); !strings.Contains(tandem.ErrorMessage(err), "already initialised") {
		t.Fatalf("second init: %v", err)
	}
	e.commit("token", "mint", map[string]any{"to": "alice", "amount": 100})
	e.commit("token", "transfer", map[string]any{"from": "alice", "to": "bob", "amount": 30})
	_, err := e.exec("token", "transfer", map[string]any{"from": "bob", "to": "carol", "amount": 31})
	wantCode(t, err, tandem.CodeContractError, "overdraw")
	for acct, want := range map[string]string{"alice": `{"id":"alice","balance":70}`, "bob": `{"id":"bob","balance":30}`, "zed": `{"id":"zed","balance":0}`} {
		out, err := e.exec("token", "balance", map[string]string{"account": acct})
		if err != nil || string(out.Result) != want || len(out.Ops) != 0 {
			t.Fatalf("balance %s: %s %v", acct, out.Result, err)
		}
	}
	out, err := e.exec("token", "supply", nil)
	if err != nil || string(out.Result) != `{"supply":100}` {
		t.Fatalf("supply: %s %v", out.Result, err)
	}
}

// countingView counts the schema lookups a call makes.
type countingView struct {
	contract.View
	tables map[string]int
}

func (v *countingView) Table(name string) (*tandem.TableSchema, error) {
	v.tables[name]++
	return v.View.Table(name)
}

// TestExecuteLooksUpSchemasOnce: a call asks its view for a table's schema
// once, however many records of the table it reads and writes (a transfer
// reads and writes two accounts).
func TestExecuteLooksUpSchemasOnce(t *testing.T) {
	e := tokenEnv(t)
	e.commit("token", "mint", map[string]any{"to": "a", "amount": 10})
	sv, err := e.s.View()
	if err != nil {
		t.Fatal(err)
	}
	defer sv.Close()
	v := &countingView{View: sv, tables: map[string]int{}}
	arg := json.RawMessage(`{"from":"a","to":"b","amount":3}`)
	out, err := e.rt.Execute(context.Background(), v, tandem.ContractCall{Contract: "token", Function: "transfer", Arg: arg, Caller: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Ops) != 2 {
		t.Fatalf("transfer wrote %d records, want 2", len(out.Ops))
	}
	if v.tables["token_accounts"] != 1 || v.tables["token_meta"] != 1 {
		t.Fatalf("schema lookups %v, want one per table", v.tables)
	}
}

// TestRetain: Retain closes the modules no active version uses once idle
// for the grace, keeps the others, and a call needing a closed module
// compiles it again, also while Retain runs concurrently with calls.
func TestRetain(t *testing.T) {
	ctx := context.Background()
	probe := tandem.WasmSHA256(harness.Contract(t, "contract/testdata/probe"))
	echo := func(e *env, n int) error {
		arg := map[string]any{"id": "k", "n": n}
		out, err := e.exec("probe", "echo", arg)
		if err != nil {
			return err
		}
		if want, _ := json.Marshal(arg); string(out.Result) != string(want) {
			return tandem.Errorf(tandem.CodeInternal, "got %s, want %s", out.Result, want)
		}
		return nil
	}

	patient := probeEnv(t, contract.Options{})
	if err := echo(patient, 1); err != nil {
		t.Fatal(err)
	}
	if n := patient.rt.Retain(ctx, nil); n != 0 || patient.rt.Loaded() != 1 {
		t.Fatalf("a module used just now: Retain closed %d, %d loaded; want 0 closed, 1 loaded (the grace)", n, patient.rt.Loaded())
	}

	e := probeEnv(t, contract.Options{PoolSize: 2, RetainGrace: time.Nanosecond})
	if err := echo(e, 1); err != nil {
		t.Fatal(err)
	}
	if n := e.rt.Retain(ctx, map[string]bool{probe: true}); n != 0 || e.rt.Loaded() != 1 {
		t.Fatalf("an active module: Retain closed %d, %d loaded; want 0 closed, 1 loaded", n, e.rt.Loaded())
	}
	if n := e.rt.Retain(ctx, nil); n != 1 || e.rt.Loaded() != 0 {
		t.Fatalf("an unused module: Retain closed %d, %d loaded; want 1 closed, 0 loaded", n, e.rt.Loaded())
	}
	if err := echo(e, 2); err != nil {
		t.Fatalf("a call after its module was closed: %v", err)
	}
	if e.rt.Loaded() != 1 {
		t.Fatalf("%d modules loaded after the call; want 1, compiled again", e.rt.Loaded())
	}

	// Calls racing with Retain: instances come back to retired modules,
	// calls find their module closed between loading it and running, and
	// concurrent loads compile it once. Until Retain has closed it 3 times.
	stop := make(chan struct{})
	var closedTimes atomic.Int64
	go func() {
		defer close(stop)
		// Bounded, so that a Retain that never closes fails below
		// rather than hanging the test.
		for deadline := time.Now().Add(2 * time.Minute); closedTimes.Load() < 3 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			closedTimes.Add(int64(e.rt.Retain(ctx, nil)))
		}
	}()
	var wg sync.WaitGroup
	var calls atomic.Int64
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := echo(e, g*1000+i); err != nil {
					errs <- err
					return
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call while Retain closed modules: %v", err)
	}
	if n := closedTimes.Load(); n < 3 {
		t.Fatalf("Retain closed the module %d times in 2 minutes of calls; want 3", n)
	}
	t.Logf("%d calls while Retain closed the module 3 times", calls.Load())
}
