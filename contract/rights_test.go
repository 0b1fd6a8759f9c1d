package contract_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
	"github.com/tandemdb/tandem/contract"
	"github.com/tandemdb/tandem/tests/harness"
)

// TestCallerRights: a version deployed with caller rights is held to the
// caller's permissions on every host operation (reads filtered, queries
// on unreadable attributes and writes without the right refused with
// forbidden); the same module with the contract's own rights sees and
// does everything.
func TestCallerRights(t *testing.T) {
	// The caller ("alice", see env.exec) may read kv except n, and
	// nothing else.
	perms := auth.Compile(&tandem.Role{Name: "nurse", Permissions: []tandem.Permission{
		{Action: tandem.ActTableRead, Resource: "kv", Except: []string{"n"}},
	}})
	var asked, denied []string
	e := probeEnv(t, contract.Options{Rights: func(caller string) contract.Rights {
		asked = append(asked, caller)
		return auth.ContractRights{Perms: perms}
	}, OnDenied: func(req tandem.ContractCall, err error) {
		if tandem.ErrorCode(err) != tandem.CodeForbidden {
			t.Errorf("OnDenied told of %v", err)
		}
		denied = append(denied, req.Caller+" "+req.Function)
	}})
	e.deployCallerRights()
	e.commit("probe", "put", map[string]any{"id": "a", "n": 5})

	// Contract rights: everything, and the caller's rights are not asked.
	out, err := e.exec("probe", "get", "a")
	if err != nil || !strings.Contains(string(out.Result), `"n":5`) {
		t.Fatalf("contract rights get: %s, %v; want the record with n", resultOf(out), err)
	}
	if out, err = e.exec("probe", "query", "n=eq.5&limit=10"); err != nil || !strings.Contains(string(out.Result), `"n":5`) {
		t.Fatalf("contract rights query: %s, %v; want the record", resultOf(out), err)
	}
	if _, err := e.exec("probe", "put", map[string]any{"id": "b", "n": 1}); err != nil {
		t.Fatalf("contract rights put: %v", err)
	}
	if len(asked) != 0 {
		t.Fatalf("rights asked for %v under contract rights", asked)
	}

	// Caller rights: n is filtered out of reads.
	out, err = e.exec("probe_caller", "get", "a")
	if err != nil {
		t.Fatalf("caller rights get: %v", err)
	}
	var rec map[string]any
	if err := json.Unmarshal(out.Result, &rec); err != nil || rec["id"] != "a" || rec["n"] != nil {
		t.Fatalf("caller rights get = %s; want the record without n", out.Result)
	}
	if len(asked) == 0 || asked[0] != "alice" {
		t.Fatalf("rights asked for %v; want alice", asked)
	}
	out, err = e.exec("probe_caller", "query", "limit=10")
	if err != nil || !strings.Contains(string(out.Result), `"id":"a"`) || strings.Contains(string(out.Result), `"n"`) {
		t.Fatalf("caller rights query = %s, %v; want records without n", resultOf(out), err)
	}
	if len(denied) != 0 {
		t.Fatalf("filtered reads reported as denials: %v", denied)
	}
	// A query whose outcome depends on n is refused, and so are writes;
	// each refusal is reported (OnDenied, for the audit log).
	for i, tc := range []struct {
		fn   string
		arg  any
		perm string
	}{
		{"query", "n=eq.5&limit=10", `table.read on attribute "n"`},
		{"query", "sort=n&limit=10", `table.read on attribute "n"`},
		{"put", map[string]any{"id": "b", "n": 1}, "table.update"},
		{"insert", map[string]any{"id": "b", "n": 1}, "table.insert"},
		{"patch", map[string]any{"id": "a", "n": 1}, "table.update"},
		{"delete", map[string]any{"id": "a"}, "table.delete"},
	} {
		_, err := e.exec("probe_caller", tc.fn, tc.arg)
		wantCode(t, err, tandem.CodeContractError, tc.fn)
		if msg := tandem.ErrorMessage(err); !strings.Contains(msg, tc.perm) {
			t.Fatalf("%s %v: %q; want a forbidden error naming %s", tc.fn, tc.arg, msg, tc.perm)
		}
		if len(denied) != i+1 || denied[i] != "alice "+tc.fn {
			t.Fatalf("after %s: denials reported %v; want alice %s last of %d", tc.fn, denied, tc.fn, i+1)
		}
	}

	// The guest sees the refusal's code and may handle it.
	if out, err = e.exec("probe_caller", "put_code", map[string]any{"id": "b", "n": 1}); err != nil || string(out.Result) != `"forbidden"` {
		t.Fatalf("put_code = %s, %v; want \"forbidden\"", resultOf(out), err)
	}
	if last := denied[len(denied)-1]; last != "alice put_code" {
		t.Fatalf("a refusal the function handled was not reported: last %q", last)
	}

	// With the rights to write, the same calls go through: insert needs
	// table.insert, put also unrestricted table.update.
	perms = auth.Compile(&tandem.Role{Name: "writer", Permissions: []tandem.Permission{
		{Action: tandem.ActTableRead, Resource: "kv"},
		{Action: tandem.ActTableInsert, Resource: "kv"},
		{Action: tandem.ActTableUpdate, Resource: "kv", Except: []string{"n"}},
	}})
	if _, err := e.exec("probe_caller", "insert", map[string]any{"id": "b", "n": 1}); err != nil {
		t.Fatalf("insert with table.insert: %v", err)
	}
	_, err = e.exec("probe_caller", "put", map[string]any{"id": "b", "n": 1})
	wantCode(t, err, tandem.CodeContractError, "put with restricted table.update")
	if out, err = e.exec("probe_caller", "get", "a"); err != nil || !strings.Contains(string(out.Result), `"n":5`) {
		t.Fatalf("caller rights get with full read: %s, %v", resultOf(out), err)
	}
}

// TestCallerRightsWithoutResolver: a runtime that cannot tell a caller's
// rights refuses caller-rights functions every table access.
func TestCallerRightsWithoutResolver(t *testing.T) {
	e := probeEnv(t, contract.Options{})
	e.deployCallerRights()
	_, err := e.exec("probe_caller", "get", "a")
	wantCode(t, err, tandem.CodeContractError, "get without a rights resolver")
}

// deployCallerRights deploys the probe again as probe_caller, with
// caller rights.
func (e *env) deployCallerRights() {
	e.t.Helper()
	wasm := harness.Contract(e.t, "contract/testdata/probe")
	fns, err := e.rt.Validate(context.Background(), wasm)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mustApply(tandem.Command{Type: tandem.CmdDeployContract, Contract: &tandem.ContractDeploy{
		Name: "probe_caller", Wasm: wasm, SHA256: tandem.WasmSHA256(wasm), Functions: fns, Rights: tandem.RightsCaller}})
}

func resultOf(out *contract.Outcome) string {
	if out == nil {
		return "<nil>"
	}
	return string(out.Result)
}
