package contract_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/contract"
	"github.com/tandemdb/tandem/tests/harness"
)

// TestDataDriven runs the scripts in testdata/exec against the probe and
// token contracts. Run with -rewrite to regenerate the expected output.
// Commands:
//
//	exec contract=C fn=F [commit]   input: the JSON argument (may be empty).
//	                                Prints the result (or error), then the
//	                                transaction the call produced; with
//	                                commit, applies it and prints the outcome.
//	apply                           input: one tx as JSON, applied as is
//	get table=T key=K
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/exec", func(t *testing.T, path string) {
		e := newEnv(t, contract.Options{})
		e.createTable(tandem.TableSchema{Name: "kv", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"}})
		e.createTable(tandem.TableSchema{Name: "token_accounts", Attributes: map[string]tandem.AttrType{"balance": tandem.TypeInt}})
		e.createTable(tandem.TableSchema{Name: "token_meta"})
		e.deploy("probe", harness.Contract(t, "contract/testdata/probe"))
		e.deploy("token", harness.Contract(t, "examples/token"))
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "exec":
				return runExec(t, e, d)
			case "apply":
				var tx tandem.Tx
				if err := json.Unmarshal([]byte(d.Input), &tx); err != nil {
					t.Fatal(err)
				}
				return resultString(e.apply(tandem.Command{Type: tandem.CmdTx, Tx: &tx})[0])
			case "get":
				var table, key string
				d.ScanArgs(t, "table", &table)
				d.ScanArgs(t, "key", &key)
				rd, err := e.s.Get(table, key)
				if err != nil {
					return fmt.Sprintf("%s: %s\n", tandem.ErrorCode(err), tandem.ErrorMessage(err))
				}
				return string(rd.JSON) + "\n"
			}
			t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			return ""
		})
	})
}

func runExec(t *testing.T, e *env, d *datadriven.TestData) string {
	var name, fn string
	d.ScanArgs(t, "contract", &name)
	d.ScanArgs(t, "fn", &fn)
	var arg any
	if in := strings.TrimSpace(d.Input); in != "" {
		arg = json.RawMessage(in)
	}
	out, err := e.exec(name, fn, arg)
	if err != nil {
		return fmt.Sprintf("error %s: %s\n", tandem.ErrorCode(err), tandem.ErrorMessage(err))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "result %s\n", out.Result)
	for _, c := range out.Conditions {
		if c.Kind == tandem.CondQuery {
			fmt.Fprintf(&sb, "if query %s limit=%d\n", c.Table, c.Query.Limit)
			continue
		}
		b, _ := json.Marshal(c)
		fmt.Fprintf(&sb, "if %s\n", b)
	}
	for _, op := range out.Ops {
		fmt.Fprintf(&sb, "op %s %s/%s %s\n", op.Op, op.Table, op.Key, op.Record)
	}
	for _, ev := range out.Events {
		fmt.Fprintf(&sb, "event %s %s\n", ev.Topic, ev.Payload)
	}
	if d.HasArg("commit") {
		sb.WriteString(resultString(e.apply(tandem.Command{Type: tandem.CmdTx, Tx: out.Tx()})[0]))
	}
	return sb.String()
}

func resultString(r tandem.Result) string {
	if r.Err != nil {
		return fmt.Sprintf("applied: %s: %s\n", tandem.ErrorCode(r.Err), tandem.ErrorMessage(r.Err))
	}
	return "applied: ok\n"
}
