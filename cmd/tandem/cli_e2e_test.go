package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/node"
	"github.com/tandemdb/tandem/pki"
)

// e2eAdminPassword is the admin's password on the node of startSingleNode;
// tandemCLI sends it.
const e2eAdminPassword = "e2e-admin-password"

// startSingleNode runs a secure one-node cluster in this process and
// returns its base URL once it is ready and has registered its own
// address. The CLI trusts the node's CA through TANDEM_CA.
func startSingleNode(t *testing.T) string {
	t.Helper()
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	dataDir := t.TempDir()
	nd, err := node.Open(node.Options{
		ID:        "n1",
		DataDir:   dataDir,
		HTTPAddr:  free(),
		RaftAddr:  free(),
		Bootstrap: true,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Security: node.SecurityOptions{
			AdminPassword: e2eAdminPassword,
			HashParams:    &auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nd.Close() })
	addr := "https://" + nd.HTTPAddr()
	caFile := filepath.Join(dataDir, pki.CACertFile)
	t.Setenv("TANDEM_CA", caFile)
	c, err := client.New([]string{addr}, client.WithBasicAuth("admin", e2eAdminPassword), client.WithCAFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c.Ready(ctx) == nil {
			if st, err := c.Cluster(ctx); err == nil && len(st.Nodes) == 1 && st.Nodes[0].HTTPAddr != "" {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the node did not become ready")
		}
	}
}

// tandemCLI runs the real command tree of the binary against one node.
type tandemCLI struct {
	t    *testing.T
	addr string
}

// run runs the command with args, --addr and the admin's credentials
// (unless args has credentials), and returns its output.
func (c tandemCLI) run(stdin string, args ...string) (string, error) {
	c.t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	args = append(args, "--addr", c.addr)
	if !slices.Contains(args, "--api-key") && !slices.Contains(args, "--user") {
		args = append(args, "--user", "admin", "--password", e2eAdminPassword)
	}
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(io.Discard)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// ok runs the command, which must succeed, and checks that its output
// contains every string in has.
func (c tandemCLI) ok(args []string, has ...string) string {
	c.t.Helper()
	out, err := c.run("", args...)
	if err != nil {
		c.t.Fatalf("tandem %s: %v", strings.Join(args, " "), err)
	}
	for _, s := range has {
		if !strings.Contains(out, s) {
			c.t.Errorf("tandem %s: output does not contain %q:\n%s", strings.Join(args, " "), s, out)
		}
	}
	return out
}

// fails runs the command, which must fail with an API error of the given
// code whose text, as the binary prints it, contains msg.
func (c tandemCLI) fails(args []string, code tandem.Code, msg string) {
	c.t.Helper()
	_, err := c.run("", args...)
	var e *client.Error
	switch {
	case err == nil:
		c.t.Errorf("tandem %s: no error; want %s", strings.Join(args, " "), code)
	case !errors.As(err, &e) || e.Code != code:
		c.t.Errorf("tandem %s: error %v; want code %s", strings.Join(args, " "), err, code)
	case !strings.HasPrefix(err.Error(), string(code)+": ") || !strings.Contains(err.Error(), msg):
		c.t.Errorf("tandem %s: error %q; want %q, then a message containing %q", strings.Join(args, " "), err, string(code)+": ", msg)
	}
}

func decodeOut[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("output is not the expected JSON (%v):\n%s", err, out)
	}
	return v
}

// queryOut is what the query command prints.
type queryOut struct {
	Records []map[string]any `json:"records"`
	Next    string           `json:"next"`
	Plan    string           `json:"plan"`
	Count   *int             `json:"count"`
}

func (q queryOut) ids() []string {
	ids := []string{}
	for _, r := range q.Records {
		id, _ := r["id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// TestCLIEndToEnd drives every client command of the binary against a real
// single-node cluster.
func TestCLIEndToEnd(t *testing.T) {
	cli := tandemCLI{t: t, addr: startSingleNode(t)}

	t.Run("status", func(t *testing.T) {
		cli := tandemCLI{t: t, addr: cli.addr}
		out := cli.ok([]string{"status"}, "ID", "APPLIED", "n1", strings.TrimPrefix(cli.addr, "https://"), "Leader")
		if strings.Contains(out, "ERROR") {
			t.Errorf("status of a healthy node has an ERROR column:\n%s", out)
		}
		st := decodeOut[client.ClusterStatus](t, cli.ok([]string{"status", "--json"}))
		if st.Leader != "n1" || len(st.Nodes) != 1 || !st.Nodes[0].Leader || !st.Nodes[0].Voter || st.Nodes[0].AppliedIndex == 0 {
			t.Errorf("status --json: %+v", st)
		}
	})

	// Tables.
	created := decodeOut[tandem.TableSchema](t, cli.ok([]string{"table", "create", "accounts",
		"--attr", "name:string", "--attr", "balance:int", "--attr", "rate:float", "--attr", "vip:bool",
		"--attr", "joined:time", "--attr", "tags:json", "--index", "balance", "--index", "name"}))
	wantAttrs := map[string]tandem.AttrType{"name": "string", "balance": "int", "rate": "float", "vip": "bool", "joined": "time", "tags": "json"}
	if created.Name != "accounts" || created.PrimaryKey != "id" || fmt.Sprint(created.Attributes) != fmt.Sprint(wantAttrs) ||
		!slices.Equal(created.Indexes, []string{"balance", "name"}) || created.Version == 0 {
		t.Fatalf("table create: %+v", created)
	}
	// The command sends the whole schema: adding an index restates the rest.
	changed := decodeOut[tandem.TableSchema](t, cli.ok([]string{"table", "create", "accounts", "--index", "balance,name,joined",
		"--attr", "name:string,balance:int,rate:float,vip:bool,joined:time,tags:json"}))
	if !slices.Equal(changed.Indexes, []string{"balance", "joined", "name"}) || changed.Version <= created.Version || len(changed.Attributes) != len(wantAttrs) {
		t.Errorf("table create adding an index: %+v", changed)
	}
	cli.ok([]string{"table", "create", "transfers", "--pk", "tid", "--attr", "tid:int", "--attr", "amount:int"})
	tables := decodeOut[[]tandem.TableSchema](t, cli.ok([]string{"table", "list", "--json"}))
	if len(tables) != 2 || tables[0].Name != "accounts" || tables[1].Name != "transfers" || tables[1].PrimaryKey != "tid" {
		t.Fatalf("table list --json: %+v", tables)
	}
	list := strings.Split(strings.TrimSpace(cli.ok([]string{"table", "list"})), "\n")
	wantList := [][]string{
		{"NAME", "PRIMARY", "KEY", "ATTRIBUTES", "INDEXES", "VERSION"},
		{"accounts", "id", "balance:int,joined:time,name:string,rate:float,tags:json,vip:bool", "balance,joined,name", fmt.Sprint(changed.Version)},
		{"transfers", "tid", "amount:int,tid:int", fmt.Sprint(tables[1].Version)},
	}
	for i, line := range list {
		if len(list) != len(wantList) || !slices.Equal(strings.Fields(line), wantList[i]) {
			t.Errorf("table list:\n%s\nwant rows %q", strings.Join(list, "\n"), wantList)
			break
		}
	}
	if got := decodeOut[tandem.TableSchema](t, cli.ok([]string{"table", "get", "accounts"})); got.Version != changed.Version || len(got.Indexes) != 3 {
		t.Errorf("table get: %+v", got)
	}
	cli.fails([]string{"table", "get", "nosuch"}, tandem.CodeNotFound, "nosuch")
	cli.fails([]string{"table", "create", "accounts", "--index", "balance,name,joined",
		"--attr", "name:string,balance:string,rate:float,vip:bool,joined:time,tags:json"}, tandem.CodeConflict, `"balance"`)
	cli.fails([]string{"table", "create", "bad", "--index", "tags", "--attr", "tags:json"}, tandem.CodeInvalid, "json")

	// alter changes by difference: the rest of the schema is kept.
	altered := decodeOut[tandem.TableSchema](t, cli.ok([]string{"table", "alter", "transfers", "--attr", "note:string", "--index", "amount"}))
	if !slices.Equal(altered.Indexes, []string{"amount"}) || altered.Attributes["note"] != "string" || altered.Attributes["amount"] != "int" || altered.PrimaryKey != "tid" {
		t.Errorf("table alter adding: %+v", altered)
	}
	altered = decodeOut[tandem.TableSchema](t, cli.ok([]string{"table", "alter", "transfers", "--drop-index", "amount"}))
	if len(altered.Indexes) != 0 || len(altered.Attributes) != 3 {
		t.Errorf("table alter dropping: %+v", altered)
	}
	if _, err := cli.run("", "table", "alter", "transfers", "--drop-index", "nope"); err == nil || !strings.Contains(err.Error(), "no such index") {
		t.Errorf("table alter --drop-index of a missing index: %v", err)
	}
	cli.fails([]string{"table", "alter", "nosuch", "--index", "x"}, tandem.CodeNotFound, "nosuch")

	// Writes and reads.
	ins := decodeOut[client.WriteResult](t, cli.ok([]string{"insert", "accounts", `{"id":"alice","name":"Alice","balance":10,"vip":true,"joined":"2026-01-02T03:04:05Z","tags":["a"]}`}))
	if ins.Key != "alice" || ins.Version == 0 || ins.Index != ins.Version {
		t.Errorf("insert: %+v", ins)
	}
	cli.fails([]string{"insert", "accounts", `{"id":"alice"}`}, tandem.CodeConflict, "alice")
	cli.fails([]string{"insert", "accounts", `{"id":"zed","balance":"lots"}`}, tandem.CodeInvalid, "balance")
	for _, r := range []struct{ key, doc string }{
		{"bob", `{"name":"Bob","balance":-5,"rate":0.5}`},
		{"carol", `{"name":"Carol","balance":25}`},
		{"dave", `{"name":"Dave","balance":-5}`},
		{"erin", `{"name":"Erin"}`},
		{"frank", `{"name":"Alfred","balance":7,"vip":false}`},
	} {
		if res := decodeOut[client.WriteResult](t, cli.ok([]string{"put", "accounts", r.key, r.doc})); res.Key != r.key || res.Version == 0 {
			t.Errorf("put %s: %+v", r.key, res)
		}
	}
	out, err := cli.run(`{"name":"Gina","balance":100}`, "put", "accounts", "gina", "-")
	if err != nil || !strings.Contains(out, `"key": "gina"`) {
		t.Errorf("put from stdin: %v\n%s", err, out)
	}

	patched := decodeOut[client.WriteResult](t, cli.ok([]string{"patch", "accounts", "alice", `{"balance":40,"tags":null}`}))
	cli.fails([]string{"patch", "accounts", "alice", `{"balance":41}`, "--if-match", fmt.Sprint(ins.Version)}, tandem.CodePreconditionFailed, "")
	cli.fails([]string{"patch", "accounts", "nobody", `{"balance":1}`}, tandem.CodeNotFound, "nobody")
	alice := decodeOut[map[string]any](t, cli.ok([]string{"get", "accounts", "alice", "--consistency", "local", "--min-index", fmt.Sprint(patched.Index)}))
	if alice["balance"] != 40.0 || alice["name"] != "Alice" || alice["_version"] != float64(patched.Version) {
		t.Errorf("get after patch: %v", alice)
	}
	if _, ok := alice["tags"]; ok {
		t.Errorf("patch with null did not remove tags: %v", alice)
	}
	cli.ok([]string{"put", "accounts", "alice", `{"name":"Alice","balance":40,"vip":true}`, "--if-match", fmt.Sprint(patched.Version)}, `"key": "alice"`)

	cli.ok([]string{"delete", "accounts", "erin"}, `"deleted": true`, `"key": "erin"`)
	cli.fails([]string{"get", "accounts", "erin"}, tandem.CodeNotFound, "erin")
	cli.fails([]string{"delete", "accounts", "erin"}, tandem.CodeNotFound, "erin")
	cli.fails([]string{"get", "nosuch", "erin"}, tandem.CodeNotFound, "nosuch")

	// Queries. Balances: frank 7 "Alfred", alice 40, bob -5, carol 25, dave -5, gina 100.
	t.Run("query", func(t *testing.T) {
		cli := tandemCLI{t: t, addr: cli.addr}
		q := decodeOut[queryOut](t, cli.ok([]string{"query", "accounts", "balance=ge.0", "--sort", "-balance", "--limit", "2", "--select", "name,balance"}))
		if !slices.Equal(q.ids(), []string{"gina", "alice"}) || q.Next == "" || q.Plan != "index balance range" {
			t.Errorf("first page: %+v", q)
		}
		for _, r := range q.Records {
			if len(r) != 4 || r["name"] == nil || r["balance"] == nil || r["_version"] == nil {
				t.Errorf("select name,balance: %v", r)
			}
		}
		q = decodeOut[queryOut](t, cli.ok([]string{"query", "accounts", "balance=ge.0", "--sort", "-balance", "--limit", "2", "--cursor", q.Next}))
		if !slices.Equal(q.ids(), []string{"carol", "frank"}) || q.Next != "" {
			t.Errorf("second page: %+v", q)
		}
		for _, tc := range []struct {
			args []string
			ids  []string
			plan string
		}{
			{[]string{"--sort", "balance"}, []string{"bob", "dave", "frank", "carol", "alice", "gina"}, "index balance order"},
			{[]string{"name=prefix.Al"}, []string{"alice", "frank"}, "index name range"},
			{[]string{"balance=-5", "--sort", "-id"}, []string{"dave", "bob"}, "index balance eq"},
			{[]string{"balance=ne.-5", "vip=true"}, []string{"alice"}, "scan"},
			{[]string{"name=in.(Bob,Gina,Zoe)"}, []string{"bob", "gina"}, "index name in"},
			{[]string{"or=(balance.gt.50,rate.lt.1)"}, []string{"bob", "gina"}, "scan"},
			{[]string{"--sort", "-rate"}, []string{"bob", "gina", "frank", "dave", "carol", "alice"}, "scan"},
		} {
			args := append([]string{"query", "accounts"}, tc.args...)
			q := decodeOut[queryOut](t, cli.ok(args))
			if !slices.Equal(q.ids(), tc.ids) || q.Plan != tc.plan {
				t.Errorf("tandem %s: %v with plan %q; want %v with %q", strings.Join(args, " "), q.ids(), q.Plan, tc.ids, tc.plan)
			}
		}
		all := decodeOut[queryOut](t, cli.ok([]string{"query", "accounts", "--all", "--limit", "2", "--sort", "-balance"}))
		if want := []string{"gina", "alice", "carol", "frank", "dave", "bob"}; !slices.Equal(all.ids(), want) || all.Next != "" {
			t.Errorf("--all: %v, want %v", all.ids(), want)
		}
		empty := cli.ok([]string{"query", "accounts", "balance=gt.1000"})
		if q := decodeOut[queryOut](t, empty); q.Records == nil || len(q.Records) != 0 {
			t.Errorf("a query that matches nothing printed:\n%s", empty)
		}
		if n := decodeOut[queryOut](t, cli.ok([]string{"query", "accounts", "balance=lt.30", "--count"})); n.Count == nil || *n.Count != 4 {
			t.Errorf("--count: %v", n.Count)
		}
		cli.fails([]string{"query", "accounts", "--limit", "10001"}, tandem.CodeInvalid, "limit")
		cli.fails([]string{"query", "accounts", "balance=ge.x"}, tandem.CodeInvalid, "balance")
		cli.fails([]string{"query", "accounts", "--cursor", "garbage"}, tandem.CodeInvalid, "cursor")
		cli.fails([]string{"query", "nosuch"}, tandem.CodeNotFound, "nosuch")
	})

	// Transactions from a file.
	t.Run("tx", func(t *testing.T) {
		cli := tandemCLI{t: t, addr: cli.addr}
		alice := decodeOut[map[string]any](t, cli.ok([]string{"get", "accounts", "alice"}))
		version := uint64(alice["_version"].(float64))
		dir := t.TempDir()
		write := func(name, tx string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(tx), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		transfer := fmt.Sprintf(`{
  "conditions": [{"if": "version", "table": "accounts", "key": "alice", "version": %d},
                 {"if": "not_exists", "table": "transfers", "key": "1"}],
  "ops": [
    {"op": "patch", "table": "accounts", "key": "alice", "record": {"balance": 30}},
    {"op": "patch", "table": "accounts", "key": "bob", "record": {"balance": 5}},
    {"op": "insert", "table": "transfers", "record": {"tid": 1, "amount": 10}}]}`, version)
		file := write("transfer.json", transfer)
		res := decodeOut[map[string]uint64](t, cli.ok([]string{"tx", file}))
		if res["index"] <= version {
			t.Errorf("tx: %v", res)
		}
		for key, want := range map[string]float64{"alice": 30, "bob": 5} {
			rec := decodeOut[map[string]any](t, cli.ok([]string{"get", "accounts", key}))
			if rec["balance"] != want || rec["_version"] != float64(res["index"]) {
				t.Errorf("%s after the tx: %v; want balance %v at version %d", key, rec, want, res["index"])
			}
		}
		cli.ok([]string{"get", "transfers", "1"}, `"amount": 10`, `"tid": 1`)
		// The same file again: its conditions no longer hold, and nothing applies.
		cli.fails([]string{"tx", file}, tandem.CodeConflict, "condition 0 failed")
		cli.fails([]string{"tx", write("op.json", `{"ops": [{"op": "patch", "table": "accounts", "key": "alice", "record": {"balance": 1}},
			{"op": "delete", "table": "accounts", "key": "nobody"}]}`)}, tandem.CodeNotFound, "op 1: record \"nobody\"")
		if rec := decodeOut[map[string]any](t, cli.ok([]string{"get", "accounts", "alice"})); rec["balance"] != 30.0 {
			t.Errorf("a failed tx changed alice: %v", rec)
		}
		if _, err := cli.run("", "tx", filepath.Join(dir, "missing.json")); err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("tx of a missing file: %v", err)
		}
	})

	t.Run("drop", func(t *testing.T) {
		cli := tandemCLI{t: t, addr: cli.addr}
		cli.ok([]string{"table", "drop", "transfers"}, `"deleted": "transfers"`, `"index": `)
		cli.fails([]string{"get", "transfers", "1"}, tandem.CodeNotFound, "transfers")
		cli.fails([]string{"table", "drop", "transfers"}, tandem.CodeNotFound, "transfers")
	})
}
