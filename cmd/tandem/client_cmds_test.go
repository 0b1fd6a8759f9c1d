package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

// TestMain lets a test run the real main in a child process, to see its
// exit status.
func TestMain(m *testing.M) {
	if os.Getenv("TANDEM_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type sentRequest struct {
	method, path string
	query        url.Values
	ifMatch      string
	body         string
}

// fakeNode answers API requests with reply and remembers them.
type fakeNode struct {
	*httptest.Server
	mu   sync.Mutex
	sent []sentRequest
}

func newFakeNode(t *testing.T, reply http.HandlerFunc) *fakeNode {
	t.Helper()
	f := &fakeNode{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.sent = append(f.sent, sentRequest{r.Method, r.URL.EscapedPath(), r.URL.Query(), r.Header.Get("If-Match"), string(b)})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		reply(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) requests() []sentRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentRequest(nil), f.sent...)
}

func reply(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// runCLI runs the client commands with args, as the tandem binary would.
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "tandem", SilenceUsage: true, SilenceErrors: true}
	addClientCommands(root)
	var out bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(io.Discard)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestClientCommands(t *testing.T) {
	txFile := filepath.Join(t.TempDir(), "tx.json")
	os.WriteFile(txFile, []byte(`{"ops":[{"op":"delete","table":"accounts","key":"bob"}]}`), 0o600)

	writeOK := reply(200, `{"key":"alice","version":13}`, "Tandem-Index: 13", `ETag: "13"`)
	for _, tc := range []struct {
		name    string
		args    []string
		stdin   string
		reply   http.HandlerFunc
		want    []sentRequest // nil: nothing must be sent
		wantOut string        // the whole output, if set
		outHas  []string      // substrings of the output
		wantErr string
	}{{
		name: "status",
		args: []string{"status"},
		reply: reply(200, `{"leader":"n1","nodes":[
			{"id":"n1","http_addr":"127.0.0.1:7001","raft_addr":"127.0.0.1:8001","voter":true,"leader":true,"state":"Leader","applied_index":42,"ledger_hash":"0123456789abcdef0123"},
			{"id":"n2","http_addr":"127.0.0.1:7002","raft_addr":"127.0.0.1:8002","voter":true,"state":"unreachable","error":"connection refused"}]}`),
		want:   []sentRequest{{method: "GET", path: "/v1/cluster"}},
		outHas: []string{"ID  HTTP ", "LEDGER", "ERROR", "n1  127.0.0.1:7001  127.0.0.1:8001  yes    yes     Leader       42       0123456789ab", "unreachable", "connection refused"},
	}, {
		name:  "table create",
		args:  []string{"table", "create", "accounts", "--pk", "id", "--attr", "name:string", "--attr", "balance:int", "--index", "balance"},
		reply: reply(200, `{"table":{"name":"accounts","primary_key":"id","attributes":{"balance":"int","name":"string"},"indexes":["balance"],"version":3}}`),
		want: []sentRequest{{method: "PUT", path: "/v1/tables/accounts",
			body: `{"name":"accounts","primary_key":"id","attributes":{"balance":"int","name":"string"},"indexes":["balance"]}`}},
		outHas: []string{`"version": 3`, `"balance": "int"`},
	}, {
		name:    "table create with a bad attribute",
		args:    []string{"table", "create", "accounts", "--attr", "balance:integer"},
		wantErr: `--attr "balance:integer": want NAME:TYPE`,
	}, {
		name:   "table list",
		args:   []string{"table", "list"},
		reply:  reply(200, `{"tables":[{"name":"accounts","primary_key":"id","attributes":{"name":"string","balance":"int"},"indexes":["balance"],"version":3}]}`),
		want:   []sentRequest{{method: "GET", path: "/v1/tables"}},
		outHas: []string{"NAME", "accounts  id           balance:int,name:string  balance  3"},
	}, {
		name:   "table get",
		args:   []string{"table", "get", "accounts"},
		reply:  reply(200, `{"table":{"name":"accounts","primary_key":"id"}}`),
		want:   []sentRequest{{method: "GET", path: "/v1/tables/accounts"}},
		outHas: []string{`"primary_key": "id"`},
	}, {
		name:    "table drop",
		args:    []string{"table", "drop", "accounts"},
		reply:   reply(200, `{"deleted":"accounts"}`, "Tandem-Index: 20"),
		want:    []sentRequest{{method: "DELETE", path: "/v1/tables/accounts"}},
		wantOut: "{\n  \"deleted\": \"accounts\",\n  \"index\": 20\n}\n",
	}, {
		name:    "put",
		args:    []string{"put", "accounts", "alice", `{"balance": 10}`, "--if-match", "12"},
		reply:   writeOK,
		want:    []sentRequest{{method: "PUT", path: "/v1/tables/accounts/records/alice", ifMatch: `"12"`, body: `{"balance": 10}`}},
		wantOut: "{\n  \"key\": \"alice\",\n  \"version\": 13,\n  \"index\": 13\n}\n",
	}, {
		name:  "put from stdin",
		args:  []string{"put", "accounts", "alice", "-"},
		stdin: `{"balance": 11}`,
		reply: writeOK,
		want:  []sentRequest{{method: "PUT", path: "/v1/tables/accounts/records/alice", body: `{"balance": 11}`}},
	}, {
		name:    "put with bad JSON",
		args:    []string{"put", "accounts", "alice", `{balance: 10}`},
		wantErr: "record is not valid JSON",
	}, {
		name:    "put with too few arguments",
		args:    []string{"put", "accounts", `{}`},
		wantErr: "accepts 3 arg(s), received 2",
	}, {
		name:  "insert",
		args:  []string{"insert", "accounts", `{"id":"bob"}`},
		reply: reply(201, `{"key":"bob","version":14}`, "Tandem-Index: 14"),
		want:  []sentRequest{{method: "POST", path: "/v1/tables/accounts/records", body: `{"id":"bob"}`}},
	}, {
		name:  "patch",
		args:  []string{"patch", "accounts", "alice", `{"note":null}`},
		reply: writeOK,
		want:  []sentRequest{{method: "PATCH", path: "/v1/tables/accounts/records/alice", body: `{"note":null}`}},
	}, {
		name:    "delete",
		args:    []string{"delete", "accounts", "a/b"},
		reply:   reply(200, `{"key":"a/b","deleted":true}`, "Tandem-Index: 15"),
		want:    []sentRequest{{method: "DELETE", path: "/v1/tables/accounts/records/a%2Fb"}},
		wantOut: "{\n  \"deleted\": true,\n  \"index\": 15,\n  \"key\": \"a/b\"\n}\n",
	}, {
		name:    "get",
		args:    []string{"get", "accounts", "alice", "--consistency", "local", "--min-index", "5"},
		reply:   reply(200, `{"id":"alice","_version":13}`, `ETag: "13"`),
		want:    []sentRequest{{method: "GET", path: "/v1/tables/accounts/records/alice", query: url.Values{"consistency": {"local"}, "min_index": {"5"}}}},
		wantOut: "{\n  \"id\": \"alice\",\n  \"_version\": 13\n}\n",
	}, {
		name:    "get with a bad consistency",
		args:    []string{"get", "accounts", "alice", "--consistency", "eventual"},
		wantErr: `--consistency "eventual": want local or linearizable`,
	}, {
		name:  "query",
		args:  []string{"query", "accounts", "balance=gt.10", "name=prefix.A=B", "--sort", "-balance", "--limit", "5", "--select", "name,balance"},
		reply: reply(200, `{"records":[{"id":"alice","name":"Al","balance":40}],"plan":"index balance range"}`),
		want: []sentRequest{{method: "GET", path: "/v1/tables/accounts/records", query: url.Values{
			"balance": {"gt.10"}, "name": {"prefix.A=B"}, "sort": {"-balance"}, "limit": {"5"}, "select": {"name,balance"}}}},
		outHas: []string{`"records": [`, `"balance": 40`, `"plan": "index balance range"`},
	}, {
		name:    "query count",
		args:    []string{"query", "accounts", "or=(balance.lt.0,status.eq.frozen)", "--count", "--consistency", "linearizable"},
		reply:   reply(200, `{"count":3}`),
		want:    []sentRequest{{method: "GET", path: "/v1/tables/accounts/records", query: url.Values{"or": {"(balance.lt.0,status.eq.frozen)"}, "count": {"true"}, "consistency": {"linearizable"}}}},
		wantOut: "{\n  \"count\": 3\n}\n",
	}, {
		name: "query all pages",
		args: []string{"query", "accounts", "--all", "--limit", "1"},
		reply: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("cursor") == "" {
				io.WriteString(w, `{"records":[{"id":"a"}],"next":"c1","plan":"scan"}`)
			} else {
				io.WriteString(w, `{"records":[{"id":"b"}],"plan":"scan"}`)
			}
		},
		want: []sentRequest{
			{method: "GET", path: "/v1/tables/accounts/records", query: url.Values{"limit": {"1"}}},
			{method: "GET", path: "/v1/tables/accounts/records", query: url.Values{"limit": {"1"}, "cursor": {"c1"}}},
		},
		wantOut: "{\n  \"records\": [\n    {\n      \"id\": \"a\"\n    },\n    {\n      \"id\": \"b\"\n    }\n  ],\n  \"plan\": \"scan\"\n}\n",
	}, {
		name:    "query with a bad filter",
		args:    []string{"query", "accounts", "balance"},
		wantErr: `filter "balance": want ATTR=VALUE`,
	}, {
		name:    "tx from stdin",
		args:    []string{"tx", "-"},
		stdin:   `{"conditions":[{"if":"exists","table":"accounts","key":"alice"}],"ops":[{"op":"patch","table":"accounts","key":"alice","record":{"balance":40}}]}`,
		reply:   reply(200, `{"index":16}`),
		want:    []sentRequest{{method: "POST", path: "/v1/tx", body: `{"conditions":[{"if":"exists","table":"accounts","key":"alice"}],"ops":[{"op":"patch","table":"accounts","key":"alice","record":{"balance":40}}]}`}},
		wantOut: "{\n  \"index\": 16\n}\n",
	}, {
		name:  "tx from a file",
		args:  []string{"tx", txFile},
		reply: reply(200, `{"index":17}`),
		want:  []sentRequest{{method: "POST", path: "/v1/tx", body: `{"ops":[{"op":"delete","table":"accounts","key":"bob"}]}`}},
	}, {
		name:    "tx with a misspelt field",
		args:    []string{"tx", "-"},
		stdin:   `{"condition":[],"ops":[]}`,
		wantErr: `unknown field "condition"`,
	}, {
		name:    "node remove",
		args:    []string{"node", "remove", "n3"},
		reply:   reply(200, `{}`),
		want:    []sentRequest{{method: "DELETE", path: "/v1/cluster/nodes/n3"}},
		wantOut: "{\n  \"removed\": \"n3\"\n}\n",
	}, {
		name:    "server error",
		args:    []string{"insert", "accounts", `{"id":"bob"}`},
		reply:   reply(409, `{"error":{"code":"conflict","message":"record accounts/bob exists"}}`),
		want:    []sentRequest{{method: "POST", path: "/v1/tables/accounts/records", body: `{"id":"bob"}`}},
		wantErr: "conflict: record accounts/bob exists",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.reply == nil {
				tc.reply = reply(500, `{"error":{"code":"internal","message":"unexpected request"}}`)
			}
			f := newFakeNode(t, tc.reply)
			out, err := runCLI(t, tc.stdin, append(tc.args, "--addr", f.URL)...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			got := f.requests()
			if len(got) != len(tc.want) {
				t.Fatalf("sent %d requests, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				g := got[i]
				if w.query == nil {
					w.query = url.Values{}
				}
				if g.method != w.method || g.path != w.path || g.query.Encode() != w.query.Encode() || g.ifMatch != w.ifMatch || g.body != w.body {
					t.Errorf("request %d = %+v\nwant %+v", i, g, w)
				}
			}
			if tc.wantOut != "" && out != tc.wantOut {
				t.Errorf("output:\n%s\nwant:\n%s", out, tc.wantOut)
			}
			for _, s := range tc.outHas {
				if !strings.Contains(out, s) {
					t.Errorf("output does not contain %q:\n%s", s, out)
				}
			}
		})
	}
}

func TestClientAddresses(t *testing.T) {
	f := newFakeNode(t, reply(200, `{"id":"alice"}`))

	t.Setenv("TANDEM_ADDR", f.URL)
	if _, err := runCLI(t, "", "get", "accounts", "alice"); err != nil || len(f.requests()) != 1 {
		t.Errorf("TANDEM_ADDR: err %v, %d requests", err, len(f.requests()))
	}

	// The first address does not answer; a read moves on to the next.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	if _, err := runCLI(t, "", "get", "accounts", "alice", "--addr", dead+", "+f.URL); err != nil || len(f.requests()) != 2 {
		t.Errorf("address list: err %v, %d requests", err, len(f.requests()))
	}
}

// The binary prints the server's code and message and exits with status 1.
func TestExitStatus(t *testing.T) {
	f := newFakeNode(t, reply(412, `{"error":{"code":"precondition_failed","message":"version is 14"}}`))
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"put", "accounts", "alice", "{}", "--if-match", "12", "--addr", f.URL}, 1, "tandem: precondition_failed: version is 14\n"},
		{[]string{"get", "accounts"}, 1, "tandem: accepts 2 arg(s), received 1\n"},
	} {
		cmd := exec.Command(os.Args[0], tc.args...)
		cmd.Env = append(os.Environ(), "TANDEM_TEST_RUN_MAIN=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.wantCode || stderr.String() != tc.wantErr {
			t.Errorf("tandem %s: exit %d, stderr %q; want %d, %q", strings.Join(tc.args, " "), code, stderr.String(), tc.wantCode, tc.wantErr)
		}
	}
}

func TestBenchCommand(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "PUT":
			if strings.Contains(r.URL.Path, "/records/") {
				io.WriteString(w, `{"key":"k","version":1}`)
			} else {
				io.WriteString(w, `{"table":{"name":"bench","primary_key":"id"}}`)
			}
		default:
			reply(404, `{"error":{"code":"not_found","message":"no"}}`)(w, r)
		}
	})
	var out, errOut bytes.Buffer
	cmd := newBenchCmd()
	cmd.SetArgs([]string{"--addrs", f.URL, "--clients", "2", "--duration", "100ms", "--warmup", "0s", "--keys", "10", "--json"})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Workload string `json:"workload"`
		Clients  int    `json:"clients"`
		Ops      int64  `json:"ops"`
		Latency  struct {
			P99 int64 `json:"p99_ns"`
		} `json:"latency"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("--json printed %q: %v", out.String(), err)
	}
	if res.Workload != "write" || res.Clients != 2 || res.Ops == 0 || res.Latency.P99 <= 0 {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(errOut.String(), "table bench ready") {
		t.Errorf("stderr = %q", errOut.String())
	}

	out.Reset()
	cmd = newBenchCmd()
	cmd.SetArgs([]string{"--addrs", f.URL, "--clients", "2", "--duration", "100ms", "--warmup", "0s", "--workload", "read-local", "--keys", "10"})
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err == nil || err.Error() != "bench: preload keys k0 to k9: not_found: no" {
		t.Errorf("bench with a failing preload: %v", err)
	}
}
