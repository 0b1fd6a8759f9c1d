package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/multiplex"
)

// request is what a fake server saw.
type request struct {
	Method, Path, Query string
	Header              http.Header
	Body                string
	Key                 string // the {key} path value, decoded by the mux
}

// fake is a node that answers every request with the reply of its handler
// and remembers what it was sent.
type fake struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newFake(t *testing.T, reply http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{}
	record := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, request{
			Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: string(b), Key: r.PathValue("key"),
		})
		f.mu.Unlock()
		if reply != nil {
			reply(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/tables/{table}/records/{key}", record)
	mux.HandleFunc("/", record)
	// The same routes over a multiplexed connection (TestMultiplexed).
	mux.Handle("GET /v1/mux", &multiplex.Server{Handler: mux})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fake) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

func (f *fake) last(t *testing.T) request {
	t.Helper()
	r := f.requests()
	if len(r) == 0 {
		t.Fatal("the server got no request")
	}
	return r[len(r)-1]
}

// answer replies with a status, headers given as "Name: value", and a body.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// clientOptions are given to every client newClient makes.
var clientOptions []client.Option

func newClient(t *testing.T, addrs ...string) *client.Client {
	t.Helper()
	c, err := client.New(addrs, clientOptions...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMultiplexed runs the tests of calls and their answers again, with
// the client sending over multiplexed connections (WithMultiplex): what
// the server sees and what the caller gets must not change.
func TestMultiplexed(t *testing.T) {
	clientOptions = []client.Option{client.WithMultiplex(2)}
	defer func() { clientOptions = nil }()
	for name, test := range map[string]func(*testing.T){
		"Writes": TestWrites, "Get": TestGet, "Query": TestQuery, "Admin": TestAdmin,
		"Errors": TestErrors, "RoundRobinAndNode": TestRoundRobinAndNode, "Retry": TestRetry,
	} {
		t.Run(name, test)
	}
}

// deadAddr returns an address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestNewAddresses(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		err  string
	}{
		{in: []string{"127.0.0.1:7001"}, want: []string{"http://127.0.0.1:7001"}},
		{in: []string{"http://a:1/", " https://b:2/prefix/ "}, want: []string{"http://a:1", "https://b:2/prefix"}},
		{in: nil, err: "no node addresses"},
		{in: []string{"ftp://a:1"}, err: "scheme must be http or https"},
		{in: []string{"http://"}, err: "want a base URL"},
		{in: []string{"http://a:1/?x=1"}, err: "want a base URL"},
	} {
		c, err := client.New(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("New(%q) = %v, want error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tc.in, err)
			continue
		}
		if got := c.Addrs(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("New(%q).Addrs() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWrites(t *testing.T) {
	ctx := context.Background()
	ok := answer(200, `{"key":"alice","version":7}`, "Tandem-Index: 7", `ETag: "7"`)
	for _, tc := range []struct {
		name    string
		reply   http.HandlerFunc
		call    func(c *client.Client) (client.WriteResult, error)
		want    request // Method, Path, Query, Body and the If-* headers in Header
		wantRes client.WriteResult
	}{{
		name:  "insert",
		reply: answer(201, `{"key":"alice","version":7}`, "Tandem-Index: 7", "Location: /v1/tables/accounts/records/alice"),
		call: func(c *client.Client) (client.WriteResult, error) {
			return c.Insert(ctx, "accounts", map[string]any{"id": "alice"})
		},
		want:    request{Method: "POST", Path: "/v1/tables/accounts/records", Body: `{"id":"alice"}`},
		wantRes: client.WriteResult{Key: "alice", Version: 7, Index: 7},
	}, {
		name:  "put raw bytes sent as they are, if-match",
		reply: ok,
		call: func(c *client.Client) (client.WriteResult, error) {
			return c.Put(ctx, "accounts", "alice", json.RawMessage(`{ "balance" : 10 }`), client.IfMatch(6))
		},
		want:    request{Method: "PUT", Path: "/v1/tables/accounts/records/alice", Body: `{ "balance" : 10 }`, Header: http.Header{"If-Match": {`"6"`}}},
		wantRes: client.WriteResult{Key: "alice", Version: 7, Index: 7},
	}, {
		name:  "put []byte, if-not-exists, commit timeout",
		reply: ok,
		call: func(c *client.Client) (client.WriteResult, error) {
			return c.Put(ctx, "accounts", "alice", []byte(`{"balance":10}`), client.IfNotExists(), client.CommitTimeout(3*time.Second))
		},
		want:    request{Method: "PUT", Path: "/v1/tables/accounts/records/alice", Query: "timeout=3s", Body: `{"balance":10}`, Header: http.Header{"If-None-Match": {"*"}}},
		wantRes: client.WriteResult{Key: "alice", Version: 7, Index: 7},
	}, {
		name:  "patch, if-exists, version from the ETag",
		reply: answer(200, `{"key":"alice"}`, "Tandem-Index: 9", `ETag: "9"`),
		call: func(c *client.Client) (client.WriteResult, error) {
			return c.Patch(ctx, "accounts", "alice", struct {
				Name *string `json:"name"`
			}{}, client.IfExists())
		},
		want:    request{Method: "PATCH", Path: "/v1/tables/accounts/records/alice", Body: `{"name":null}`, Header: http.Header{"If-Match": {"*"}}},
		wantRes: client.WriteResult{Key: "alice", Version: 9, Index: 9},
	}, {
		name:    "delete",
		reply:   answer(200, `{"key":"alice","version":11,"deleted":true}`, "Tandem-Index: 11", `ETag: "11"`),
		call:    func(c *client.Client) (client.WriteResult, error) { return c.Delete(ctx, "accounts", "alice") },
		want:    request{Method: "DELETE", Path: "/v1/tables/accounts/records/alice"},
		wantRes: client.WriteResult{Key: "alice", Index: 11},
	}, {
		name:    "key escaped in the path",
		reply:   answer(200, `{"key":"a/b c?","version":3}`, "Tandem-Index: 3"),
		call:    func(c *client.Client) (client.WriteResult, error) { return c.Put(ctx, "t", "a/b c?", []byte(`{}`)) },
		want:    request{Method: "PUT", Path: "/v1/tables/t/records/a%2Fb%20c%3F", Key: "a/b c?", Body: `{}`},
		wantRes: client.WriteResult{Key: "a/b c?", Version: 3, Index: 3},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.reply)
			res, err := tc.call(newClient(t, f.URL))
			if err != nil {
				t.Fatal(err)
			}
			if res != tc.wantRes {
				t.Errorf("result = %+v, want %+v", res, tc.wantRes)
			}
			got := f.last(t)
			if got.Method != tc.want.Method || got.Path != tc.want.Path || got.Query != tc.want.Query || got.Body != tc.want.Body {
				t.Errorf("sent %s %s?%s %q, want %s %s?%s %q", got.Method, got.Path, got.Query, got.Body,
					tc.want.Method, tc.want.Path, tc.want.Query, tc.want.Body)
			}
			if tc.want.Key != "" && got.Key != tc.want.Key {
				t.Errorf("server decoded key %q, want %q", got.Key, tc.want.Key)
			}
			for _, h := range []string{"If-Match", "If-None-Match"} {
				if g, w := got.Header.Get(h), tc.want.Header.Get(h); g != w {
					t.Errorf("%s = %q, want %q", h, g, w)
				}
			}
			if tc.want.Body != "" && got.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", got.Header.Get("Content-Type"))
			}
		})
	}
}

func TestGet(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, answer(200, `{"id":"alice","balance":10,"_version":5}`, `ETag: "5"`, "Tandem-Index: 8"))
	c := newClient(t, f.URL)
	for _, tc := range []struct {
		opts  []client.ReadOption
		query string
	}{
		{nil, ""},
		{[]client.ReadOption{client.Local()}, "consistency=local"},
		{[]client.ReadOption{client.Linearizable()}, "consistency=linearizable"},
		{[]client.ReadOption{client.MinIndex(42)}, "min_index=42"},
	} {
		rec, err := c.Get(ctx, "accounts", "alice", tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.last(t); got.Method != "GET" || got.Path != "/v1/tables/accounts/records/alice" || got.Query != tc.query {
			t.Errorf("sent %s %s?%s, want GET ...?%s", got.Method, got.Path, got.Query, tc.query)
		}
		if rec.Version != 5 || rec.Index != 8 || string(rec.JSON) != `{"id":"alice","balance":10,"_version":5}` {
			t.Errorf("record = %+v", rec)
		}
		var v struct{ Balance int }
		if err := rec.Decode(&v); err != nil || v.Balance != 10 {
			t.Errorf("Decode = %+v, %v", v, err)
		}
	}
}

func TestQuery(t *testing.T) {
	ctx := context.Background()
	// Three pages: the cursor of each names the next.
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("cursor") {
		case "":
			io.WriteString(w, `{"records":[{"id":"a"}],"next":"c1","plan":"index balance range"}`)
		case "c1":
			io.WriteString(w, `{"records":[{"id":"b"}],"next":"c2","plan":"index balance range"}`)
		default:
			io.WriteString(w, `{"records":[{"id":"c"}],"plan":"index balance range"}`)
		}
	})
	c := newClient(t, f.URL)
	params := url.Values{"balance": {"gt.10", "lt.50"}, "sort": {"-balance"}}
	res, err := c.Query(ctx, "accounts", params, client.Local())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || res.Next != "c1" || res.Plan != "index balance range" {
		t.Errorf("result = %+v", res)
	}
	got, _ := url.ParseQuery(f.last(t).Query)
	want := url.Values{"balance": {"gt.10", "lt.50"}, "sort": {"-balance"}, "consistency": {"local"}}
	if got.Encode() != want.Encode() {
		t.Errorf("sent query %v, want %v", got, want)
	}
	if len(params) != 2 {
		t.Errorf("Query modified the caller's params: %v", params)
	}

	var ids []string
	for page, err := range c.QueryPages(ctx, "accounts", params) {
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			ids = append(ids, string(r))
		}
	}
	if fmt.Sprint(ids) != `[{"id":"a"} {"id":"b"} {"id":"c"}]` {
		t.Errorf("pages gave %v", ids)
	}
	if _, ok := params["cursor"]; ok {
		t.Errorf("QueryPages modified the caller's params: %v", params)
	}
}

func TestAdmin(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Tandem-Index", "21")
		switch r.Method + " " + r.URL.Path {
		case "PUT /v1/tables/accounts", "GET /v1/tables/accounts":
			io.WriteString(w, `{"table":{"name":"accounts","primary_key":"id","attributes":{"balance":"int"},"indexes":["balance"],"version":21}}`)
		case "GET /v1/tables":
			io.WriteString(w, `{"tables":[{"name":"a","primary_key":"id"},{"name":"b","primary_key":"k"}]}`)
		case "DELETE /v1/tables/accounts":
			io.WriteString(w, `{"deleted":"accounts"}`)
		case "POST /v1/tx":
			io.WriteString(w, `{"index":21}`)
		case "GET /v1/cluster":
			io.WriteString(w, `{"leader":"n1","nodes":[{"id":"n1","http_addr":"h1","raft_addr":"r1","voter":true,"leader":true,"state":"Leader","applied_index":21,"ledger_hash":"ab"}]}`)
		case "POST /v1/cluster/join", "DELETE /v1/cluster/nodes/n4", "GET /healthz", "GET /readyz":
			io.WriteString(w, `{}`)
		default:
			answer(404, `{"error":{"code":"not_found","message":"no route"}}`)(w, r)
		}
	})
	c := newClient(t, f.URL)

	schema, index, err := c.CreateTable(ctx, tandem.TableSchema{Name: "accounts", Attributes: map[string]tandem.AttrType{"balance": tandem.TypeInt}, Indexes: []string{"balance"}, Version: 99})
	if err != nil || index != 21 || schema.Version != 21 || !schema.HasIndex("balance") {
		t.Errorf("CreateTable = %+v, %d, %v", schema, index, err)
	}
	var sent tandem.TableSchema
	if err := json.Unmarshal([]byte(f.last(t).Body), &sent); err != nil || sent.Version != 0 || sent.Name != "accounts" {
		t.Errorf("CreateTable sent %s", f.last(t).Body)
	}
	if schema, err := c.Table(ctx, "accounts", client.Local()); err != nil || schema.PrimaryKey != "id" || f.last(t).Query != "consistency=local" {
		t.Errorf("Table = %+v, %v (query %q)", schema, err, f.last(t).Query)
	}
	if tables, err := c.Tables(ctx); err != nil || len(tables) != 2 || tables[1].PrimaryKey != "k" {
		t.Errorf("Tables = %+v, %v", tables, err)
	}
	if index, err := c.DropTable(ctx, "accounts"); err != nil || index != 21 {
		t.Errorf("DropTable = %d, %v", index, err)
	}
	tx := tandem.Tx{Ops: []tandem.Op{{Op: tandem.OpUpsert, Table: "accounts", Key: "a", Record: json.RawMessage(`{"balance":1}`)}}}
	if index, err := c.Tx(ctx, tx); err != nil || index != 21 {
		t.Errorf("Tx = %d, %v", index, err)
	}
	if got := f.last(t).Body; got != `{"ops":[{"op":"upsert","table":"accounts","key":"a","record":{"balance":1}}]}` {
		t.Errorf("Tx sent %s", got)
	}
	st, err := c.Cluster(ctx)
	if err != nil || st.Leader != "n1" || len(st.Nodes) != 1 || st.Nodes[0].RaftAddr != "r1" || st.Nodes[0].AppliedIndex != 21 {
		t.Errorf("Cluster = %+v, %v", st, err)
	}
	if err := c.Join(ctx, tandem.NodeInfo{ID: "n4", HTTPAddr: "h4", RaftAddr: "r4"}); err != nil {
		t.Errorf("Join: %v", err)
	}
	if got := f.last(t).Body; got != `{"id":"n4","http_addr":"h4","raft_addr":"r4"}` {
		t.Errorf("Join sent %s", got)
	}
	if err := c.RemoveNode(ctx, "n4"); err != nil {
		t.Errorf("RemoveNode: %v", err)
	}
	if err := c.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		reply http.HandlerFunc
		want  client.Error
	}{
		{"api error", answer(409, `{"error":{"code":"conflict","message":"record accounts/alice exists"}}`),
			client.Error{Status: 409, Code: tandem.CodeConflict, Message: "record accounts/alice exists"}},
		{"precondition", answer(412, `{"error":{"code":"precondition_failed","message":"version is 14"}}`),
			client.Error{Status: 412, Code: tandem.CodePreconditionFailed, Message: "version is 14"}},
		{"unavailable", answer(503, `{"error":{"code":"unavailable","message":"no leader"}}`),
			client.Error{Status: 503, Code: tandem.CodeUnavailable, Message: "no leader"}},
		{"not json, from a proxy", answer(502, "<html>Bad Gateway</html>\n"),
			client.Error{Status: 502, Code: tandem.CodeInternal, Message: "<html>Bad Gateway</html>"}},
		{"empty 504", answer(504, ""),
			client.Error{Status: 504, Code: tandem.CodeTimeout, Message: "Gateway Timeout"}},
		{"json without error object", answer(404, `{"x":1}`),
			client.Error{Status: 404, Code: tandem.CodeNotFound, Message: `{"x":1}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.reply)
			_, err := newClient(t, f.URL).Put(ctx, "accounts", "alice", []byte(`{}`))
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *client.Error", err, err)
			}
			if *e != tc.want {
				t.Errorf("error = %+v, want %+v", *e, tc.want)
			}
			if !client.IsCode(fmt.Errorf("wrapped: %w", err), tc.want.Code) || client.IsCode(err, "other") {
				t.Errorf("IsCode is wrong for %v", err)
			}
			if got := tandem.ErrorCode(err); got != tc.want.Code {
				t.Errorf("tandem.ErrorCode = %q, want %q", got, tc.want.Code)
			}
			if want := "tandem: " + string(tc.want.Code) + ": " + tc.want.Message; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if len(f.requests()) != 1 {
				t.Errorf("an HTTP error was retried: %d requests", len(f.requests()))
			}
		})
	}

	t.Run("checked before sending", func(t *testing.T) {
		f := newFake(t, nil)
		c := newClient(t, f.URL)
		for _, err := range []error{
			func() error { _, err := c.Put(ctx, "accounts", "", []byte(`{}`)); return err }(),
			func() error { _, err := c.Get(ctx, "", "k"); return err }(),
			func() error { _, err := c.Insert(ctx, "accounts", nil); return err }(),
		} {
			var e *client.Error
			if !errors.As(err, &e) || e.Status != 0 || e.Code != tandem.CodeInvalid {
				t.Errorf("error = %v, want an invalid *client.Error with status 0", err)
			}
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})

	t.Run("not an HTTP error", func(t *testing.T) {
		_, err := newClient(t, deadAddr(t)).Get(ctx, "t", "k")
		if err == nil || client.IsCode(err, tandem.CodeInternal) {
			t.Errorf("connection refused gave %v", err)
		}
	})
}

func TestRoundRobinAndNode(t *testing.T) {
	ctx := context.Background()
	var fakes []*fake
	var addrs []string
	for range 3 {
		f := newFake(t, answer(200, `{}`))
		fakes = append(fakes, f)
		addrs = append(addrs, f.URL)
	}
	c := newClient(t, addrs...)
	for range 6 {
		if _, err := c.Get(ctx, "t", "k"); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range fakes {
		if n := len(f.requests()); n != 2 {
			t.Errorf("node %d got %d of 6 round-robin requests, want 2", i, n)
		}
	}
	for range 3 {
		if _, err := c.Node(1).Get(ctx, "t", "k"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fakes[1].requests()); n != 5 {
		t.Errorf("node 1 got %d requests, want 5", n)
	}
}

// hangUp reads the request and closes the connection without answering, so
// the client cannot know whether a write was applied.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil { // a multiplexed connection: abort it
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	type op func(c *client.Client) error
	put := func(c *client.Client) error { _, err := c.Put(ctx, "t", "k", []byte(`{}`)); return err }
	insert := func(c *client.Client) error { _, err := c.Insert(ctx, "t", []byte(`{"id":"k"}`)); return err }
	tx := func(c *client.Client) error {
		_, err := c.Tx(ctx, tandem.Tx{Ops: []tandem.Op{{Op: tandem.OpDelete, Table: "t", Key: "k"}}})
		return err
	}
	get := func(c *client.Client) error { _, err := c.Get(ctx, "t", "k"); return err }
	query := func(c *client.Client) error { _, err := c.Query(ctx, "t", nil); return err }
	health := func(c *client.Client) error { return c.Health(ctx) }

	for _, tc := range []struct {
		name      string
		first     string // "dead": nothing listens; "hangup": closes after reading; "503"
		op        op
		pinned    bool
		wantRetry bool
	}{
		{"write to a dead node moves on", "dead", put, false, true},
		{"insert to a dead node moves on", "dead", insert, false, true},
		{"tx to a dead node moves on", "dead", tx, false, true},
		{"read from a dead node moves on", "dead", get, false, true},
		{"pinned client stays", "dead", get, true, false},
		{"health is about one node", "dead", health, false, false},
		{"write that may have arrived is not repeated", "hangup", put, false, false},
		{"insert that may have arrived is not repeated", "hangup", insert, false, false},
		{"tx that may have arrived is not repeated", "hangup", tx, false, false},
		{"read after a broken connection moves on", "hangup", get, false, true},
		{"query after a broken connection moves on", "hangup", query, false, true},
		{"HTTP errors are answers, not retried", "503", get, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := newFake(t, answer(200, `{"key":"k","version":1,"index":1}`))
			var first string
			var bad *fake
			switch tc.first {
			case "dead":
				first = deadAddr(t)
			case "hangup":
				bad = newFake(t, hangUp)
				first = bad.URL
			case "503":
				bad = newFake(t, answer(503, `{"error":{"code":"unavailable","message":"no leader"}}`))
				first = bad.URL
			}
			c := newClient(t, first, good.URL)
			if tc.pinned {
				c = c.Node(0)
			}
			err := tc.op(c)
			retried := len(good.requests()) > 0
			if retried != tc.wantRetry {
				t.Fatalf("retried = %v, want %v (err %v)", retried, tc.wantRetry, err)
			}
			if tc.wantRetry && err != nil {
				t.Errorf("retried call failed: %v", err)
			}
			if !tc.wantRetry && err == nil {
				t.Errorf("call did not fail")
			}
			if bad != nil && len(bad.requests()) != 1 {
				t.Errorf("first node got %d requests, want 1", len(bad.requests()))
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c, err := client.New([]string{f.URL}, client.WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Get(context.Background(), "t", "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestCustomHTTPClient(t *testing.T) {
	f := newFake(t, answer(200, `{}`))
	var used bool
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := client.New([]string{f.URL}, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), "t", "k"); err != nil || !used {
		t.Errorf("Get = %v, custom client used = %v", err, used)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A node that does not serve /v1/mux (an older release, or a proxy that
// passes no WebSocket upgrade) gets plain HTTP from a multiplexing client,
// which asks for the upgrade once, not before every request.
func TestMultiplexFallsBackToHTTP(t *testing.T) {
	var upgrades, plain atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/mux" {
			upgrades.Add(1)
			answer(404, `{"error":{"code":"not_found","message":"no route"}}`)(w, r)
			return
		}
		plain.Add(1)
		answer(200, `{"key":"k","version":3}`, "Tandem-Index: 3")(w, r)
	}))
	defer srv.Close()
	c, err := client.New([]string{srv.URL}, client.WithMultiplex(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 5 {
		res, err := c.Put(context.Background(), "t", "k", []byte(`{"v":1}`))
		if err != nil || res.Version != 3 {
			t.Fatalf("put %d: %+v, %v", i, res, err)
		}
	}
	if u, p := upgrades.Load(), plain.Load(); u != 1 || p != 5 {
		t.Fatalf("%d upgrade attempts and %d plain requests, want 1 and 5", u, p)
	}
}
