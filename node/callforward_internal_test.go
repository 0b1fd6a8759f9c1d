package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/api"
	"github.com/tandemdb/tandem/auth"
)

// gatedContracts is the leader's engine in these tests: a call answers
// "caller:arg"; a call whose argument is a gate's name waits for it.
type gatedContracts struct {
	api.Contracts
	gates map[string]chan struct{}
	ended chan string // if set, gets the argument of each call whose context ended at its gate
}

func (c *gatedContracts) CallLocal(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	var arg string
	json.Unmarshal(req.Arg, &arg)
	if g, ok := c.gates[arg]; ok {
		select {
		case <-g:
		case <-ctx.Done():
			if c.ended != nil {
				c.ended <- arg
			}
			return nil, tandem.WrapError(tandem.CodeTimeout, ctx.Err(), "leader: timed out")
		}
	}
	return echo(req), nil
}

func echo(req tandem.ContractCall) *tandem.CallResult {
	var arg string
	json.Unmarshal(req.Arg, &arg)
	out, _ := json.Marshal(req.Caller + ":" + arg)
	return &tandem.CallResult{Result: out, Index: 7, Attempts: 1}
}

// fakeLeader is the leader's real API handler over gatedContracts, which
// records the requests it receives.
type fakeLeader struct {
	*httptest.Server
	mu      sync.Mutex
	batches [][]tandem.ContractCall // the calls of each /internal/v1/calls request, in order
	singles int                     // /internal/v1/call requests
	authz   []string                // Authorization headers seen
	arrived chan struct{}           // one send per batch request, before it runs
}

func newFakeLeader(t *testing.T, cs api.Contracts, wrap func(http.Handler) http.Handler) *fakeLeader {
	t.Helper()
	l := &fakeLeader{arrived: make(chan struct{}, 100)}
	var h http.Handler = api.New(api.Options{Contracts: cs, Insecure: true, WriteTimeout: 5 * time.Second})
	if wrap != nil {
		h = wrap(h)
	}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.authz = append(l.authz, r.Header.Get("Authorization"))
		switch r.URL.Path {
		case "/internal/v1/calls":
			var req api.CallBatchRequest
			body, _ := readAllAndRestore(r)
			json.Unmarshal(body, &req)
			l.batches = append(l.batches, req.Calls)
		case "/internal/v1/call":
			l.singles++
		}
		l.mu.Unlock()
		if r.URL.Path == "/internal/v1/calls" {
			l.arrived <- struct{}{}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(l.Close)
	return l
}

// readAllAndRestore reads the body and puts it back for the handler.
func readAllAndRestore(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

func (l *fakeLeader) counts() (batches, singles int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.batches), l.singles
}

func (l *fakeLeader) addr() string { return strings.TrimPrefix(l.URL, "http://") }

// localCalls records the calls run on this node as the new leader.
type localCalls struct {
	mu    sync.Mutex
	calls []tandem.ContractCall
}

func (lc *localCalls) run(_ context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	lc.mu.Lock()
	lc.calls = append(lc.calls, req)
	lc.mu.Unlock()
	return echo(req), nil
}

// newTestForwarder returns a forwarder whose leader is leader(), sending
// through a peer client as the node does.
func newTestForwarder(t *testing.T, maxInFlight int, leader func(context.Context) (string, error)) (*callForwarder, *localCalls) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{scheme: "http", peers: newPeerClient(nil)}
	lc := &localCalls{}
	f := newCallForwarder(ctx, maxInFlight, 5*time.Second)
	f.leader = leader
	f.post = n.postStream
	f.local = lc.run
	f.single = func(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
		addr, err := leader(ctx)
		if err != nil {
			return nil, err
		}
		var res tandem.CallResult
		err = n.call(ctx, http.MethodPost, addr, "/internal/v1/call", req, &res)
		return &res, err
	}
	t.Cleanup(func() { cancel(); f.Close() })
	return f, lc
}

func at(addr string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return addr, nil }
}

func call(caller, arg string) tandem.ContractCall {
	a, _ := json.Marshal(arg)
	return tandem.ContractCall{Contract: "token", Function: "transfer", Arg: a, Caller: caller}
}

type callOutcome struct {
	res *tandem.CallResult
	err error
}

// goCall makes a call in the background, with the caller's credentials in
// its context as the API puts them there.
func goCall(ctx context.Context, f *callForwarder, req tandem.ContractCall) chan callOutcome {
	ch := make(chan callOutcome, 1)
	ctx = auth.WithCredentials(ctx, "Basic secret-of-"+req.Caller)
	go func() {
		res, err := f.Call(ctx, req)
		ch <- callOutcome{res, err}
	}()
	return ch
}

// waitQueued waits until n calls wait for a batch.
func waitQueued(t *testing.T, f *callForwarder, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		f.mu.Lock()
		q := len(f.queue)
		f.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", q, n)
		}
	}
}

func wantResult(t *testing.T, what string, o callOutcome, want string) {
	t.Helper()
	if o.err != nil || o.res == nil || string(o.res.Result) != want {
		t.Errorf("%s: %+v, %v; want %s", what, o.res, o.err, want)
	}
}

// TestCallForwarderBatches: calls made while a batch is in flight go
// together in the next request, each getting its own result; the batch
// carries each call's caller and none of the callers' credentials.
func TestCallForwarderBatches(t *testing.T) {
	gate := make(chan struct{})
	l := newFakeLeader(t, &gatedContracts{gates: map[string]chan struct{}{"hold": gate}}, nil)
	f, _ := newTestForwarder(t, 1, at(l.addr()))

	first := goCall(context.Background(), f, call("u0", "hold"))
	<-l.arrived
	var rest []chan callOutcome
	for i := 1; i <= 5; i++ {
		rest = append(rest, goCall(context.Background(), f, call(fmt.Sprintf("u%d", i), fmt.Sprint(i))))
		waitQueued(t, f, i) // one at a time: the queue's order is known
	}
	close(gate)
	wantResult(t, "first call", <-first, `"u0:hold"`)
	for i, ch := range rest {
		wantResult(t, fmt.Sprintf("call %d", i+1), <-ch, fmt.Sprintf(`"u%d:%d"`, i+1, i+1))
	}
	if b, s := l.counts(); b != 2 || s != 0 {
		t.Fatalf("leader got %d batch and %d single requests; want 2 batches", b, s)
	}
	var callers []string
	for _, c := range l.batches[1] {
		callers = append(callers, c.Caller)
	}
	if got := strings.Join(callers, ","); got != "u1,u2,u3,u4,u5" {
		t.Errorf("second batch has callers %s; want u1,u2,u3,u4,u5 in order", got)
	}
	for _, a := range l.authz {
		if a != "" {
			t.Errorf("a batch carried Authorization %q; it must carry no caller's credentials", a)
		}
	}
}

// TestCallForwarderCallerTimeout: a caller whose context ends gets the
// unknown-outcome timeout at once; the others in its batch still get
// their results.
func TestCallForwarderCallerTimeout(t *testing.T) {
	gate1, gate2 := make(chan struct{}), make(chan struct{})
	l := newFakeLeader(t, &gatedContracts{gates: map[string]chan struct{}{"g1": gate1, "g2": gate2}}, nil)
	f, _ := newTestForwarder(t, 1, at(l.addr()))

	first := goCall(context.Background(), f, call("u0", "g1"))
	<-l.arrived
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	impatient := goCall(ctx, f, call("u1", "g2"))
	waitQueued(t, f, 1)
	patient := goCall(context.Background(), f, call("u2", "x"))
	waitQueued(t, f, 2)
	close(gate1)
	wantResult(t, "first call", <-first, `"u0:g1"`)
	<-l.arrived // u1 and u2 together

	select {
	case o := <-impatient:
		if tandem.ErrorCode(o.err) != tandem.CodeTimeout || !strings.Contains(tandem.ErrorMessage(o.err), "may or may not have been applied") {
			t.Errorf("impatient caller: %+v, %v; want a timeout whose outcome is unknown", o.res, o.err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the impatient caller still waits after its context ended")
	}
	close(gate2)
	wantResult(t, "patient caller", <-patient, `"u2:x"`)
	if b, _ := l.counts(); b != 2 || len(l.batches[1]) != 2 {
		t.Errorf("leader got %d batches; want 2, the second with both callers", b)
	}
}

// TestCallForwarderAbandonedBatch: once every caller of a batch has
// stopped waiting, its calls end on the leader too, as a single forwarded
// call does when its client goes away (else a call nobody waits for could
// commit long after its caller gave up); while one caller still waits,
// the batch goes on.
func TestCallForwarderAbandonedBatch(t *testing.T) {
	hold, keep := make(chan struct{}), make(chan struct{})
	ended := make(chan string, 4)
	l := newFakeLeader(t, &gatedContracts{gates: map[string]chan struct{}{"hold": hold, "keep": keep}, ended: ended}, nil)
	f, _ := newTestForwarder(t, 1, at(l.addr()))

	// Alone in its batch: the caller leaves, the leader's call ends.
	ctx, cancel := context.WithCancel(context.Background())
	gone := goCall(ctx, f, call("u0", "hold"))
	<-l.arrived
	cancel()
	if o := <-gone; tandem.ErrorCode(o.err) != tandem.CodeTimeout {
		t.Errorf("caller that left: %+v, %v; want a timeout", o.res, o.err)
	}
	select {
	case arg := <-ended:
		if arg != "hold" {
			t.Errorf("the leader ended call %q; want hold", arg)
		}
	case <-time.After(2 * time.Second): // the leader's own limit is 5s
		t.Fatal("the leader still runs the call of a batch whose only caller left")
	}

	// Two callers in one batch (queued behind a third): one leaving does
	// not end the other's call.
	block := make(chan struct{})
	l2 := newFakeLeader(t, &gatedContracts{gates: map[string]chan struct{}{"block": block, "keep": keep}, ended: ended}, nil)
	f2, _ := newTestForwarder(t, 1, at(l2.addr()))
	first := goCall(context.Background(), f2, call("u1", "block"))
	<-l2.arrived
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	leaving := goCall(ctx, f2, call("u2", "keep"))
	waitQueued(t, f2, 1)
	staying := goCall(context.Background(), f2, call("u3", "keep"))
	waitQueued(t, f2, 2)
	close(block)
	wantResult(t, "first call", <-first, `"u1:block"`)
	<-l2.arrived // u2 and u3 together
	cancel()
	if o := <-leaving; tandem.ErrorCode(o.err) != tandem.CodeTimeout {
		t.Errorf("caller that left: %+v, %v; want a timeout", o.res, o.err)
	}
	select {
	case arg := <-ended:
		t.Fatalf("the leader ended call %q while a caller of its batch still waits", arg)
	case <-time.After(300 * time.Millisecond):
	}
	close(keep)
	wantResult(t, "caller that stayed", <-staying, `"u3:keep"`)
	close(hold)
}

// TestCallForwarderFailures: what each caller gets when the batch cannot
// be run on the leader as it should.
func TestCallForwarderFailures(t *testing.T) {
	// A closed port: the dial fails, so nothing was sent.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	t.Run("dial failure is retried against the new leader", func(t *testing.T) {
		l := newFakeLeader(t, &gatedContracts{}, nil)
		var asked atomic.Int32
		f, _ := newTestForwarder(t, 4, func(context.Context) (string, error) {
			if asked.Add(1) == 1 {
				return deadAddr, nil
			}
			return l.addr(), nil
		})
		res, err := f.Call(context.Background(), call("u1", "a"))
		wantResult(t, "call", callOutcome{res, err}, `"u1:a"`)
		if b, _ := l.counts(); asked.Load() != 2 || b != 1 {
			t.Errorf("asked for the leader %d times, leader got %d batches; want 2 and 1", asked.Load(), b)
		}
	})

	t.Run("a node that has become the leader runs the calls itself", func(t *testing.T) {
		f, lc := newTestForwarder(t, 4, func(context.Context) (string, error) { return "", errSelfLeader })
		res, err := f.Call(context.Background(), call("u1", "a"))
		wantResult(t, "call", callOutcome{res, err}, `"u1:a"`)
		if len(lc.calls) != 1 || lc.calls[0].Caller != "u1" {
			t.Errorf("ran locally %+v; want u1's call", lc.calls)
		}
	})

	t.Run("a connection lost after sending leaves the outcome unknown", func(t *testing.T) {
		l := newFakeLeader(t, &gatedContracts{}, func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
			})
		})
		f, _ := newTestForwarder(t, 4, at(l.addr()))
		_, err := f.Call(context.Background(), call("u1", "a"))
		if tandem.ErrorCode(err) != tandem.CodeUnavailable || !strings.Contains(tandem.ErrorMessage(err), "lost the leader during the contract call; it may or may not have been applied") {
			t.Errorf("got %v; want unavailable, outcome unknown", err)
		}
		if b, _ := l.counts(); b != 1 {
			t.Errorf("leader got %d batches; want 1, not retried", b)
		}
	})

	t.Run("the leader's answer to the whole batch goes to each call", func(t *testing.T) {
		l := newFakeLeader(t, nil, nil) // contracts not enabled: 503
		f, _ := newTestForwarder(t, 4, at(l.addr()))
		_, err := f.Call(context.Background(), call("u1", "a"))
		if tandem.ErrorCode(err) != tandem.CodeUnavailable || !strings.Contains(tandem.ErrorMessage(err), "contracts are not enabled") {
			t.Errorf("got %v; want the leader's own error", err)
		}
		if _, s := l.counts(); s != 0 {
			t.Errorf("fell back to %d single calls; want none", s)
		}
	})

	t.Run("a per-call error goes to its call alone", func(t *testing.T) {
		gate := make(chan struct{})
		l := newFakeLeader(t, &missingContracts{gatedContracts{gates: map[string]chan struct{}{"hold": gate}}}, nil)
		f, _ := newTestForwarder(t, 1, at(l.addr()))
		first := goCall(context.Background(), f, call("u0", "hold"))
		<-l.arrived
		bad := goCall(context.Background(), f, tandem.ContractCall{Contract: "missing", Function: "f", Caller: "u1"})
		waitQueued(t, f, 1)
		good := goCall(context.Background(), f, call("u2", "b"))
		waitQueued(t, f, 2)
		close(gate)
		<-first
		if o := <-bad; tandem.ErrorCode(o.err) != tandem.CodeNotFound {
			t.Errorf("bad call: %+v, %v; want not_found", o.res, o.err)
		}
		wantResult(t, "good call", <-good, `"u2:b"`)
	})

	// An older leader does not know /internal/v1/calls: 404, or 401 when
	// it authenticates users (it takes an unknown route for a user route).
	for _, old := range []struct {
		status int
		code   tandem.Code
	}{{http.StatusNotFound, tandem.CodeNotFound}, {http.StatusUnauthorized, tandem.CodeUnauthenticated}} {
		t.Run(fmt.Sprintf("an older leader answering %d gets the calls one by one", old.status), func(t *testing.T) {
			l := newFakeLeader(t, &gatedContracts{}, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/internal/v1/calls" {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(old.status)
						fmt.Fprintf(w, `{"error":{"code":%q,"message":"no such endpoint"}}`, old.code)
						return
					}
					h.ServeHTTP(w, r)
				})
			})
			f, _ := newTestForwarder(t, 4, at(l.addr()))
			res, err := f.Call(context.Background(), call("u1", "a"))
			wantResult(t, "call", callOutcome{res, err}, `"u1:a"`)
			if b, s := l.counts(); b != 1 || s != 1 {
				t.Errorf("leader got %d batch and %d single requests; want 1 and 1", b, s)
			}
		})
	}
}

// missingContracts fails calls of contract "missing" as the engine does.
type missingContracts struct{ gatedContracts }

func (c *missingContracts) CallLocal(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	if req.Contract == "missing" {
		return nil, tandem.Errorf(tandem.CodeNotFound, "contract %q does not exist", req.Contract)
	}
	return c.gatedContracts.CallLocal(ctx, req)
}

// TestCallForwarderStreams: the leader streams each call's result as it
// finishes, so a fast call batched with a slow one gets its result at
// once; the batch keeps its in-flight slot until the whole answer is read.
func TestCallForwarderStreams(t *testing.T) {
	hold, slow := make(chan struct{}), make(chan struct{})
	l := newFakeLeader(t, &gatedContracts{gates: map[string]chan struct{}{"hold": hold, "slow": slow}}, nil)
	f, _ := newTestForwarder(t, 1, at(l.addr()))

	first := goCall(context.Background(), f, call("u0", "hold"))
	<-l.arrived
	slowCall := goCall(context.Background(), f, call("u1", "slow"))
	waitQueued(t, f, 1)
	fastCall := goCall(context.Background(), f, call("u2", "fast"))
	waitQueued(t, f, 2)
	close(hold)
	wantResult(t, "first call", <-first, `"u0:hold"`)
	select {
	case o := <-fastCall:
		wantResult(t, "fast call", o, `"u2:fast"`)
	case <-slowCall:
		t.Fatal("the slow call ended before its gate opened")
	case <-time.After(3 * time.Second):
		t.Fatal("the fast call waited for the slow one in its batch")
	}
	f.mu.Lock()
	inFlight := f.inFlight
	f.mu.Unlock()
	if inFlight != 1 {
		t.Errorf("%d batches in flight while the slow call runs; want 1", inFlight)
	}
	close(slow)
	wantResult(t, "slow call", <-slowCall, `"u1:slow"`)
	if b, _ := l.counts(); b != 2 || len(l.batches[1]) != 2 {
		t.Errorf("leader got %d batches; want 2, the second with both calls", b)
	}
}

// TestCallForwarderBrokenStreams: a streamed answer cut short leaves the
// calls still waiting with an unknown outcome while the answered ones keep
// their results; a bad index fails the waiting calls, without a panic; an
// older leader's single JSON answer still works.
func TestCallForwarderBrokenStreams(t *testing.T) {
	// answer serves the first batch (one held call) with the real handler
	// and the second with write.
	run := func(t *testing.T, write func(w http.ResponseWriter, r *http.Request)) []callOutcome {
		t.Helper()
		hold := make(chan struct{})
		var n atomic.Int32
		l := newFakeLeader(t, &gatedContracts{gates: map[string]chan struct{}{"hold": hold}}, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/internal/v1/calls" && n.Add(1) == 2 {
					write(w, r)
					return
				}
				h.ServeHTTP(w, r)
			})
		})
		f, _ := newTestForwarder(t, 1, at(l.addr()))
		first := goCall(context.Background(), f, call("u0", "hold"))
		<-l.arrived
		var chs []chan callOutcome
		for i := 1; i <= 3; i++ {
			chs = append(chs, goCall(context.Background(), f, call(fmt.Sprintf("u%d", i), fmt.Sprint(i))))
			waitQueued(t, f, i)
		}
		close(hold)
		wantResult(t, "first call", <-first, `"u0:hold"`)
		var out []callOutcome
		for i, ch := range chs {
			select {
			case o := <-ch:
				out = append(out, o)
			case <-time.After(5 * time.Second):
				t.Fatalf("call %d got no outcome", i+1)
			}
		}
		return out
	}
	line := func(w http.ResponseWriter, s string) {
		io.WriteString(w, s+"\n")
		http.NewResponseController(w).Flush()
	}
	stream := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", api.NDJSON)
		w.WriteHeader(http.StatusOK)
	}

	t.Run("a stream cut in the middle", func(t *testing.T) {
		out := run(t, func(w http.ResponseWriter, r *http.Request) {
			stream(w)
			line(w, `{"i":1,"result":{"result":"u2:2","index":7,"attempts":1}}`)
			panic(http.ErrAbortHandler) // the connection drops
		})
		wantResult(t, "answered call", out[1], `"u2:2"`)
		for _, i := range []int{0, 2} {
			if err := out[i].err; tandem.ErrorCode(err) != tandem.CodeUnavailable || !strings.Contains(tandem.ErrorMessage(err), "lost the leader during the contract call; it may or may not have been applied") {
				t.Errorf("call %d: %+v, %v; want unavailable, outcome unknown", i+1, out[i].res, err)
			}
		}
	})

	t.Run("a stream that ends early", func(t *testing.T) {
		out := run(t, func(w http.ResponseWriter, r *http.Request) {
			stream(w)
			line(w, `{"i":2,"error":{"code":"not_found","message":"no"}}`)
		})
		if tandem.ErrorCode(out[2].err) != tandem.CodeNotFound {
			t.Errorf("call 3: %v; want its own not_found", out[2].err)
		}
		for _, i := range []int{0, 1} {
			if err := out[i].err; tandem.ErrorCode(err) != tandem.CodeUnavailable || !strings.Contains(tandem.ErrorMessage(err), "may or may not have been applied") {
				t.Errorf("call %d: %v; want unavailable, outcome unknown", i+1, err)
			}
		}
	})

	for name, bad := range map[string]string{"duplicate": `{"i":0,"result":{"result":"again"}}`, "out of range": `{"i":3,"result":{"result":"x"}}`, "negative": `{"i":-1,"result":{"result":"x"}}`} {
		t.Run("a "+name+" index", func(t *testing.T) {
			out := run(t, func(w http.ResponseWriter, r *http.Request) {
				stream(w)
				line(w, `{"i":0,"result":{"result":"u1:1","index":7,"attempts":1}}`)
				line(w, bad)
				line(w, `{"i":1,"result":{"result":"u2:2","index":7,"attempts":1}}`)
			})
			wantResult(t, "answered call", out[0], `"u1:1"`)
			for _, i := range []int{1, 2} {
				if tandem.ErrorCode(out[i].err) != tandem.CodeInternal {
					t.Errorf("call %d: %+v, %v; want an internal error", i+1, out[i].res, out[i].err)
				}
			}
		})
	}

	t.Run("an older leader's single answer", func(t *testing.T) {
		out := run(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Accept") != api.NDJSON {
				t.Errorf("batch sent with Accept %q; want %s", r.Header.Get("Accept"), api.NDJSON)
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"results":[{"result":{"result":"u1:1"}},{"error":{"code":"not_found","message":"no"}},{"result":{"result":"u3:3"}}]}`)
		})
		wantResult(t, "call 1", out[0], `"u1:1"`)
		if tandem.ErrorCode(out[1].err) != tandem.CodeNotFound {
			t.Errorf("call 2: %v; want not_found", out[1].err)
		}
		wantResult(t, "call 3", out[2], `"u3:3"`)
	})
}
