package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
)

// recordingProposer answers forwarded batches: each command's result index
// is 100 + its position, or the rejection set for its table.
type recordingProposer struct {
	mu      sync.Mutex
	batches int
	reject  map[string]error
	froms   map[string]int // batches by the follower that forwarded them
}

func (p *recordingProposer) from(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.froms[id]
}

// count returns how many batches it has answered.
func (p *recordingProposer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batches
}

func (p *recordingProposer) Propose(ctx context.Context, cmd tandem.Command) (tandem.Result, error) {
	return tandem.Result{}, errors.New("not used")
}

func (p *recordingProposer) ProposeLocal(ctx context.Context, from string, cmds []tandem.Command) ([]tandem.Result, error) {
	p.mu.Lock()
	p.batches++
	if p.froms == nil {
		p.froms = map[string]int{}
	}
	p.froms[from]++
	p.mu.Unlock()
	res := make([]tandem.Result, len(cmds))
	for i, c := range cmds {
		res[i].Index = uint64(100 + i)
		if err := p.reject[c.Tx.Ops[0].Table]; err != nil {
			res[i] = tandem.Result{Err: err}
		}
	}
	return res, nil
}

// muxLeader is a leader's API (insecure) that counts how requests arrive.
type muxLeader struct {
	*httptest.Server
	prop     *recordingProposer
	api      atomic.Pointer[api.Server]
	upgrades atomic.Int64 // GET /internal/v1/mux over HTTP
	plain    atomic.Int64 // other requests over HTTP
}

// Upgrade answers of a muxLeader.
const (
	upgradeServed  = iota
	upgradeUnknown // an older release: 404
	upgradeRefused // 403 JSON: this node is not a member
)

func newMuxLeader(t *testing.T, upgrade int) *muxLeader {
	t.Helper()
	l := &muxLeader{prop: &recordingProposer{reject: map[string]error{}}}
	l.restart()
	t.Cleanup(func() { l.api.Load().Close() })
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/internal/v1/mux" {
			l.upgrades.Add(1)
			switch upgrade {
			case upgradeUnknown:
				http.NotFound(w, r)
				return
			case upgradeRefused:
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				w.Write([]byte(`{"error":{"code":"forbidden","message":"node n2 is not a member"}}`))
				return
			}
		} else {
			l.plain.Add(1)
		}
		l.api.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(l.Close)
	return l
}

// restart replaces the API, closing the multiplexed connections of the
// old one, as a node's shutdown does.
func (l *muxLeader) restart() {
	old := l.api.Swap(api.New(api.Options{Proposer: l.prop, Contracts: echoCalls{}, Insecure: true, WriteTimeout: 5 * time.Second}))
	if old != nil {
		old.Close()
	}
}

func (l *muxLeader) addr() string { return strings.TrimPrefix(l.URL, "http://") }

// echoCalls runs a forwarded contract call by answering with its caller
// and argument; contract "missing" does not exist.
type echoCalls struct{ api.Contracts }

func (echoCalls) CallLocal(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	if req.Contract == "missing" {
		return nil, tandem.Errorf(tandem.CodeNotFound, "contract %q does not exist", req.Contract)
	}
	out, err := json.Marshal(req.Caller + ":" + string(req.Arg[:min(len(req.Arg), 8)]))
	return &tandem.CallResult{Result: out, Index: 9, Attempts: 1}, err
}

func newMuxNode(t *testing.T) *Node {
	n := &Node{opts: Options{ID: "n2"}, scheme: "http", peers: newPeerClient(nil)}
	n.pmux = newPeerMux(n.scheme, n.peers, "n2")
	t.Cleanup(n.pmux.close)
	return n
}

func batch(t *testing.T, tables ...string) []byte {
	t.Helper()
	cmds := make([]tandem.Command, len(tables))
	for i, tb := range tables {
		cmds[i] = tandem.Command{Type: tandem.CmdTx, Tx: &tandem.Tx{Ops: []tandem.Op{{Op: tandem.OpUpsert, Table: tb, Key: "k", Record: []byte(`{"v":1}`)}}}}
	}
	b, err := tandem.AppendCommands(nil, cmds)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPeerMuxSharesOneConnection(t *testing.T) {
	l := newMuxLeader(t, upgradeServed)
	l.prop.reject["bad"] = tandem.Errorf(tandem.CodeConflict, "record exists")
	n := newMuxNode(t)
	ctx := t.Context()

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			var resp api.ProposeResponse
			if err := n.callMux(ctx, http.MethodPost, l.addr(), "/internal/v1/propose", batch(t, "a", "bad"), &resp); err != nil {
				errs <- err
				return
			}
			if len(resp.Results) != 2 || resp.Results[0].Index != 100 || resp.Results[0].Error != nil ||
				resp.Results[1].Error == nil || resp.Results[1].Error.Code != tandem.CodeConflict {
				errs <- errors.New("unexpected results")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if u, p := l.upgrades.Load(), l.plain.Load(); u != 1 || p != 0 {
		t.Fatalf("%d upgrades and %d plain requests, want 1 and 0", u, p)
	}
	if n := l.prop.count(); n != 50 {
		t.Fatalf("the leader saw %d batches, want 50", n)
	}
	// The leader knows which follower forwarded each batch: it waits for
	// that follower's next one (proposer.waitForFollowers).
	if n := l.prop.from("n2"); n != 50 {
		t.Fatalf("%d of 50 batches came with the follower's ID n2", n)
	}

	// An error answer comes back as the leader's JSON error.
	err := n.callMux(ctx, http.MethodPost, l.addr(), "/internal/v1/propose", []byte("not a batch"), nil)
	if tandem.ErrorCode(err) != tandem.CodeInvalid || !strings.Contains(err.Error(), "propose request") {
		t.Fatalf("bad batch: %v, want the leader's invalid error", err)
	}
	// A large batch goes over HTTP/1.1.
	big := make([]string, 0, 3000)
	for range cap(big) {
		big = append(big, strings.Repeat("t", 100))
	}
	var resp api.ProposeResponse
	if err := n.callMux(ctx, http.MethodPost, l.addr(), "/internal/v1/propose", batch(t, big...), &resp); err != nil || len(resp.Results) != len(big) {
		t.Fatalf("large batch: %v, %d results", err, len(resp.Results))
	}
	if p := l.plain.Load(); p != 1 {
		t.Fatalf("%d plain requests after a %d-command batch, want 1", p, len(big))
	}
	if n := l.prop.from("n2"); n != 51 {
		t.Fatalf("the batch sent over HTTP/1.1 did not carry the follower's ID (%d of 51 did)", n)
	}
}

// TestPeerMuxContractCalls: a follower's forwarded contract calls
// (forwardCall) go one request each over the shared connection, each with
// its own caller, and a refused call comes back as the leader's error.
func TestPeerMuxContractCalls(t *testing.T) {
	l := newMuxLeader(t, upgradeServed)
	n := newMuxNode(t)
	ctx := t.Context()
	call := func(contract, caller, arg string) (tandem.CallResult, error) {
		body, err := json.Marshal(tandem.ContractCall{Contract: contract, Function: "transfer", Arg: json.RawMessage(arg), Caller: caller})
		if err != nil {
			t.Fatal(err)
		}
		var res tandem.CallResult
		err = n.callMux(ctx, http.MethodPost, l.addr(), "/internal/v1/call", body, &res)
		return res, err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			caller := fmt.Sprintf("user%d", i)
			res, err := call("token", caller, "1")
			if err != nil || string(res.Result) != `"`+caller+`:1"` || res.Index != 9 {
				errs <- fmt.Errorf("call of %s: %+v, %v", caller, res, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if u, p := l.upgrades.Load(), l.plain.Load(); u != 1 || p != 0 {
		t.Fatalf("%d upgrades and %d plain requests for 40 calls, want 1 and 0", u, p)
	}
	if _, err := call("missing", "ann", "1"); tandem.ErrorCode(err) != tandem.CodeNotFound || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("call of a missing contract: %v, want the leader's not_found", err)
	}
	// An argument too large for a message goes over HTTP/1.1.
	if res, err := call("token", "ann", `"`+strings.Repeat("a", maxMuxBody)+`"`); err != nil || string(res.Result) != `"ann:\"aaaaaaa"` {
		t.Fatalf("large call: %+v, %v", res, err)
	}
	if p := l.plain.Load(); p != 1 {
		t.Fatalf("%d plain requests after a large call, want 1", p)
	}
}

func TestPeerMuxOlderPeerUsesHTTP(t *testing.T) {
	l := newMuxLeader(t, upgradeUnknown)
	n := newMuxNode(t)
	for range 3 {
		var resp api.ProposeResponse
		if err := n.callMux(t.Context(), http.MethodPost, l.addr(), "/internal/v1/propose", batch(t, "a"), &resp); err != nil || len(resp.Results) != 1 {
			t.Fatalf("call: %v, %+v", err, resp)
		}
	}
	// Asked once; then remembered for noMuxRetry.
	if u, p := l.upgrades.Load(), l.plain.Load(); u != 1 || p != 3 {
		t.Fatalf("%d upgrades and %d plain requests, want 1 and 3", u, p)
	}
}

func TestPeerMuxRedialsAfterFailure(t *testing.T) {
	l := newMuxLeader(t, upgradeServed)
	n := newMuxNode(t)
	ctx := t.Context()
	call := func() error {
		return n.callMux(ctx, http.MethodPost, l.addr(), "/internal/v1/propose", batch(t, "a"), nil)
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	// The leader closes its multiplexed connections (as a restarting node
	// does): once this node has seen it, the next call finds the
	// connection failed and dials again.
	n.pmux.mu.Lock()
	c0 := n.pmux.conns[l.addr()]
	n.pmux.mu.Unlock()
	l.restart()
	select {
	case <-c0.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the connection did not fail after the leader closed it")
	}
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err = call(); err != nil && time.Now().Before(deadline); err = call() {
		var pe *peerError
		if !errors.As(err, &pe) {
			t.Fatalf("call on a dropped connection: %v, want a peer error", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no call succeeded after the connections dropped: %v", err)
	}
	if u := l.upgrades.Load(); u != 2 {
		t.Fatalf("%d upgrades, want 2", u)
	}

	// Nothing listens: the dial fails and the batch was surely not sent,
	// so the forwarder may retry it on the next leader.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	err = n.callMux(ctx, http.MethodPost, dead, "/internal/v1/propose", batch(t, "a"), nil)
	var pe *peerError
	if !errors.As(err, &pe) || pe.sent {
		t.Fatalf("call to a closed port: %v, want an unsent peer error", err)
	}

	// After close, calls fail without dialling.
	n.pmux.close()
	err = n.callMux(ctx, http.MethodPost, l.addr(), "/internal/v1/propose", batch(t, "a"), nil)
	if !errors.As(err, &pe) || pe.sent {
		t.Fatalf("call after close: %v, want an unsent peer error", err)
	}
}

func TestPeerMuxRefusedUpgrade(t *testing.T) {
	// Refused as an HTTP call would be: the caller learns the request was
	// not applied (unavailable), and does not retry forever.
	l := newMuxLeader(t, upgradeRefused)
	n := newMuxNode(t)
	err := n.callMux(t.Context(), http.MethodPost, l.addr(), "/internal/v1/propose", batch(t, "a"), nil)
	if tandem.ErrorCode(err) != tandem.CodeUnavailable || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("refused upgrade: %v, want unavailable naming the refusal", err)
	}
	if n := l.prop.count(); n != 0 || l.plain.Load() != 0 {
		t.Fatalf("the batch reached the leader (%d batches, %d plain requests)", n, l.plain.Load())
	}
}
