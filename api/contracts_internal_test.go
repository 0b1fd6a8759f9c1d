package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
)

// laggingCluster is a node whose store catches up with the cluster when it
// confirms a linearizable read index.
type laggingCluster struct {
	fakeCluster
	contracts *laggingContracts
}

func (c laggingCluster) LocalReadable() error { return nil }
func (c laggingCluster) ReadIndex(context.Context) (uint64, error) {
	c.contracts.known = true
	return 7, nil
}
func (c laggingCluster) WaitApplied(context.Context, uint64) error { return nil }

// laggingContracts knows contract "token" only once the node caught up.
type laggingContracts struct {
	Contracts
	known           bool
	readOnly, calls int
}

func (c *laggingContracts) Get(name string) (*tandem.ContractInfo, error) {
	if !c.known || name != "token" {
		return nil, tandem.Errorf(tandem.CodeNotFound, "contract %q does not exist", name)
	}
	return &tandem.ContractInfo{Name: "token", Active: 1, Versions: []tandem.ContractVersion{{
		Version: 1, Functions: []tandem.ContractFunction{{Name: "balance", ReadOnly: true}, {Name: "transfer"}},
	}}}, nil
}

func (c *laggingContracts) ReadOnly(context.Context, tandem.ContractCall) (*tandem.CallResult, error) {
	c.readOnly++
	return &tandem.CallResult{Result: []byte(`1`)}, nil
}

func (c *laggingContracts) Call(context.Context, tandem.ContractCall) (*tandem.CallResult, error) {
	c.calls++
	return &tandem.CallResult{Result: []byte(`2`)}, nil
}

// TestReadOnlyCallOnALaggingNode: a node that does not know a contract yet
// (it lags behind its deploy) catches up to a linearizable read index
// before deciding how to run a call, so a read-only function runs here as
// a read, never on the leader as a write over in-flight state, even when
// the call asks for local consistency.
func TestReadOnlyCallOnALaggingNode(t *testing.T) {
	for _, path := range []string{"/v1/contracts/token/balance", "/v1/contracts/token/balance?consistency=local"} {
		cs := &laggingContracts{}
		s := New(Options{Cluster: laggingCluster{contracts: cs}, Contracts: cs})
		w := serve(s, http.MethodPost, path, "")
		if w.Code != http.StatusOK || cs.readOnly != 1 || cs.calls != 0 {
			t.Errorf("%s: %d %s; read-only runs %d, calls %d; want one read-only run", path, w.Code, w.Body, cs.readOnly, cs.calls)
		}
	}
	// A contract unknown even after catching up is the leader's to judge.
	cs := &laggingContracts{}
	s := New(Options{Cluster: laggingCluster{contracts: cs}, Contracts: cs})
	if w := serve(s, http.MethodPost, "/v1/contracts/other/f", ""); cs.calls != 1 {
		t.Errorf("unknown contract: %d %s; calls %d, want it passed on", w.Code, w.Body, cs.calls)
	}
}

// echoContracts answers a forwarded call with its caller and argument,
// and fails calls of contract "missing" as the engine would.
type echoContracts struct {
	Contracts
	mu      sync.Mutex
	callers []string
}

func (c *echoContracts) CallLocal(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, tandem.Errorf(tandem.CodeInternal, "call without a timeout")
	}
	c.mu.Lock()
	c.callers = append(c.callers, req.Caller)
	c.mu.Unlock()
	if req.Contract == "missing" {
		return nil, tandem.Errorf(tandem.CodeNotFound, "contract %q does not exist", req.Contract)
	}
	out, _ := json.Marshal(req.Caller + ":" + string(req.Arg))
	return &tandem.CallResult{Result: out, Index: 9, Attempts: 1}, nil
}

func postBody(s *Server, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// TestInternalCalls: a batch of forwarded calls is answered call by call,
// in order, each with its own caller; a bad call fails alone, a bad batch
// as a whole.
func TestInternalCalls(t *testing.T) {
	cs := &echoContracts{}
	s := New(Options{Cluster: fakeCluster{}, Contracts: cs, Insecure: true})
	batch := CallBatchRequest{Calls: []tandem.ContractCall{
		{Contract: "token", Function: "transfer", Arg: json.RawMessage(`1`), Caller: "ann"},
		{Contract: "missing", Function: "transfer", Arg: json.RawMessage(`2`), Caller: "bob"},
		{Contract: "token", Function: "transfer", Arg: json.RawMessage(`3`), Caller: "cy"},
	}}
	body, _ := json.Marshal(batch)
	w := postBody(s, "/internal/v1/calls", body)
	var resp CallBatchResponse
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("batch without Accept: Content-Type %q; want the single JSON answer", ct)
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &resp) != nil || len(resp.Results) != 3 {
		t.Fatalf("batch: %d %s; want 200 with three results", w.Code, w.Body)
	}
	for i, want := range []string{`"ann:1"`, "", `"cy:3"`} {
		r := resp.Results[i]
		switch {
		case want == "" && (r.Result != nil || r.Error == nil || r.Error.Code != tandem.CodeNotFound):
			t.Errorf("result %d: %+v; want only a not_found error", i, r)
		case want != "" && (r.Error != nil || r.Result == nil || string(r.Result.Result) != want || r.Result.Index != 9):
			t.Errorf("result %d: %+v; want %s at index 9", i, r, want)
		}
	}
	if len(cs.callers) != 3 {
		t.Errorf("engine ran %d calls, want 3", len(cs.callers))
	}

	tooMany := CallBatchRequest{Calls: make([]tandem.ContractCall, MaxCallBatch+1)}
	for i := range tooMany.Calls {
		tooMany.Calls[i] = tandem.ContractCall{Contract: "token", Function: "f", Caller: "ann"}
	}
	tooManyBody, _ := json.Marshal(tooMany)
	for _, tc := range []struct {
		name string
		body []byte
		code int
	}{
		{"empty body", nil, http.StatusBadRequest},
		{"not JSON", []byte(`{"calls":[`), http.StatusBadRequest},
		{"unknown field", []byte(`{"calls":[],"x":1}`), http.StatusBadRequest},
		{"no calls", []byte(`{"calls":[]}`), http.StatusBadRequest},
		{"too many calls", tooManyBody, http.StatusBadRequest},
		{"too large", bytes.Repeat([]byte(" "), MaxCallBatchBytes+8192), http.StatusRequestEntityTooLarge},
	} {
		cs.callers = nil
		w := postBody(s, "/internal/v1/calls", tc.body)
		var eb errorBody
		if w.Code != tc.code || json.Unmarshal(w.Body.Bytes(), &eb) != nil || eb.Error.Code == "" || len(cs.callers) != 0 {
			t.Errorf("%s: %d %.200s, %d calls run; want %d with a JSON error and nothing run", tc.name, w.Code, w.Body, len(cs.callers), tc.code)
		}
	}
}

// TestInternalCallsNodesOnly: like every internal endpoint, the batch
// needs a member's node certificate; a user's credentials do not do.
func TestInternalCallsNodesOnly(t *testing.T) {
	s := newSecureServer(t)
	s.opts.Contracts = &echoContracts{}
	req := httptest.NewRequest(http.MethodPost, "/internal/v1/calls", strings.NewReader(`{"calls":[{"contract":"token","function":"f","caller":"root"}]}`))
	req.Header.Set("Authorization", basicAuth("root", "password"))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("batch without a node certificate: %d %s; want 401", w.Code, w.Body)
	}
}

// gatedEcho is echoContracts whose calls with argument 0 wait for
// release.
type gatedEcho struct {
	echoContracts
	release chan struct{}
}

func (c *gatedEcho) CallLocal(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	if string(req.Arg) == "0" {
		select {
		case <-c.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.echoContracts.CallLocal(ctx, req)
}

// TestInternalCallsStream: a follower that accepts NDJSON gets one line
// per call as each finishes, in completion order, not the batch's; a bad
// batch is still refused with a JSON error before any line.
func TestInternalCallsStream(t *testing.T) {
	cs := &gatedEcho{release: make(chan struct{})}
	srv := httptest.NewServer(New(Options{Cluster: fakeCluster{}, Contracts: cs, Insecure: true, WriteTimeout: 5 * time.Second}))
	defer srv.Close()
	defer func() {
		select {
		case <-cs.release:
		default:
			close(cs.release)
		}
	}()
	post := func(body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/internal/v1/calls", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", NDJSON)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := post(`{"calls":[` +
		`{"contract":"token","function":"f","arg":0,"caller":"ann"},` +
		`{"contract":"missing","function":"f","arg":1,"caller":"bob"},` +
		`{"contract":"token","function":"f","arg":2,"caller":"cy"}]}`)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != NDJSON {
		t.Fatalf("streamed batch: %d %s; want 200 %s", resp.StatusCode, resp.Header.Get("Content-Type"), NDJSON)
	}
	type read struct {
		line CallStreamLine
		err  error
	}
	lines := make(chan read)
	go func() {
		dec := json.NewDecoder(resp.Body)
		for {
			var l CallStreamLine
			err := dec.Decode(&l)
			lines <- read{l, err}
			if err != nil {
				return
			}
		}
	}()
	next := func(what string) CallStreamLine {
		t.Helper()
		select {
		case r := <-lines:
			if r.err != nil {
				t.Fatalf("%s: %v", what, r.err)
			}
			return r.line
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: no line while the slow call runs", what)
		}
		return CallStreamLine{}
	}
	got := map[int]CallStreamLine{}
	for range 2 { // the two fast calls, in either order
		l := next("fast call")
		got[l.I] = l
	}
	if l, ok := got[1]; !ok || l.Error == nil || l.Error.Code != tandem.CodeNotFound || l.Result != nil {
		t.Errorf("call 1: %+v; want only a not_found error", l)
	}
	if l, ok := got[2]; !ok || l.Error != nil || l.Result == nil || string(l.Result.Result) != `"cy:2"` {
		t.Errorf("call 2: %+v; want \"cy:2\"", l)
	}
	close(cs.release)
	if l := next("slow call"); l.I != 0 || l.Result == nil || string(l.Result.Result) != `"ann:0"` {
		t.Errorf("slow call: %+v; want call 0's \"ann:0\"", l)
	}
	if r := <-lines; r.err != io.EOF {
		t.Errorf("after the last call: %+v; want the end of the answer", r)
	}

	bad := post(`{"calls":[]}`)
	defer bad.Body.Close()
	var eb errorBody
	if bad.StatusCode != http.StatusBadRequest || bad.Header.Get("Content-Type") != "application/json" || json.NewDecoder(bad.Body).Decode(&eb) != nil || eb.Error.Code != tandem.CodeInvalid {
		t.Errorf("empty streamed batch: %d %s %+v; want 400 with a JSON error", bad.StatusCode, bad.Header.Get("Content-Type"), eb)
	}
}
