package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/api"
	"github.com/tandemdb/tandem/proposer"
)

// callForwarder passes the contract calls made on a follower to the leader
// in batches (POST /internal/v1/calls), as the proposer does with writes:
// a call that finds a free slot goes at once, alone; calls that arrive
// while every slot is busy wait and go together in the next batch. There
// is no timer: under no load nothing waits. The leader streams each
// call's outcome as the call finishes and each caller gets its own as it
// arrives; the batch holds its in-flight slot until the whole answer is
// read.
//
// Each call keeps forwardCall's semantics: a batch that surely did not
// reach the leader is sent again to the new one, a node that has become
// the leader runs the calls itself, and a batch that may have reached the
// leader and failed leaves each of its calls' outcome unknown.
type callForwarder struct {
	// leader returns the leader's HTTP address (Node.leaderHTTP); an error
	// wrapping proposer.ErrNotForwarded means this node leads.
	leader func(ctx context.Context) (string, error)
	// post sends an encoded JSON body to a node, asking for accept, and
	// returns its 2xx answer with the body unread (Node.postStream).
	post func(ctx context.Context, addr, path string, body []byte, accept string) (*http.Response, error)
	// local runs a call on this node once it leads (Engine.CallLocal).
	local func(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error)
	// single passes one call on by itself (Node.forwardCall), for a leader
	// of an older version that does not know /internal/v1/calls.
	single func(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error)
	// maxInFlight is the most batches outstanding at once.
	maxInFlight int
	// timeout bounds a batch whose callers set no deadline (the API's
	// write timeout).
	timeout time.Duration
	// ctx is the node's lifetime: a batch in flight ends with it.
	ctx context.Context

	mu       sync.Mutex
	queue    []*fwdCall // REQUIRES: mu held
	inFlight int        // batches being sent; REQUIRES: mu held
	closed   bool       // REQUIRES: mu held
	wg       sync.WaitGroup
}

// fwdCall is one caller's call waiting for its batch.
type fwdCall struct {
	ctx  context.Context // the caller's: it waits no longer, nor runs locally longer
	req  tandem.ContractCall
	body []byte // req in JSON, encoded by the caller
	done chan fwdOutcome
}

type fwdOutcome struct {
	res *tandem.CallResult
	err error
}

// newCallForwarder returns a forwarder that sends at most maxInFlight
// batches at once (default 4, like the proposer's MaxForwards).
func newCallForwarder(ctx context.Context, maxInFlight int, timeout time.Duration) *callForwarder {
	if maxInFlight <= 0 {
		maxInFlight = 4
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &callForwarder{ctx: ctx, maxInFlight: maxInFlight, timeout: timeout}
}

var errForwarderClosed = tandem.Errorf(tandem.CodeUnavailable, "node is shutting down; the contract call was not applied")

// Call runs req on the leader and returns its outcome, or when ctx ends
// first a CodeTimeout error (the outcome is then unknown).
func (f *callForwarder) Call(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, tandem.WrapError(tandem.CodeInvalid, err, "cannot encode the contract call: %v", err)
	}
	c := &fwdCall{ctx: ctx, req: req, body: body, done: make(chan fwdOutcome, 1)}
	f.mu.Lock()
	if f.closed || f.ctx.Err() != nil {
		f.mu.Unlock()
		return nil, errForwarderClosed
	}
	f.queue = append(f.queue, c)
	if f.inFlight < f.maxInFlight {
		f.inFlight++
		f.wg.Add(1)
		go f.run()
	}
	f.mu.Unlock()
	select {
	case o := <-c.done:
		return o.res, o.err
	case <-ctx.Done():
		return nil, tandem.WrapError(tandem.CodeTimeout, ctx.Err(), "timed out waiting for the leader to run the contract call; it may or may not have been applied")
	}
}

// Close waits for the batches in flight; they end with the node's context,
// which the caller cancels first. Safe to call twice.
func (f *callForwarder) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}

// run holds one in-flight slot: it sends batches taken from the queue
// until the queue is empty.
func (f *callForwarder) run() {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		batch := f.takeLocked()
		if len(batch) == 0 {
			f.inFlight--
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		f.send(batch)
	}
}

// takeLocked removes the next batch from the queue: the waiting calls in
// arrival order, up to the batch limits, skipping calls whose callers
// have stopped waiting (they were never sent, so dropping them is safe).
//
// REQUIRES: f.mu held
func (f *callForwarder) takeLocked() []*fwdCall {
	var batch []*fwdCall
	size, i := 0, 0
	for ; i < len(f.queue) && len(batch) < api.MaxCallBatch; i++ {
		c := f.queue[i]
		if c.ctx.Err() != nil {
			continue
		}
		if len(batch) > 0 && size+len(c.body)+1 > api.MaxCallBatchBytes {
			break
		}
		batch = append(batch, c)
		size += len(c.body) + 1
	}
	n := copy(f.queue, f.queue[i:])
	clear(f.queue[n:])
	f.queue = f.queue[:n]
	return batch
}

// send delivers a batch's outcomes to its callers.
func (f *callForwarder) send(batch []*fwdCall) {
	ctx, cancel := context.WithDeadline(f.ctx, f.deadline(batch))
	defer cancel()
	defer cancelWhenAbandoned(batch, cancel)()
	for {
		if f.ctx.Err() != nil {
			failCalls(batch, errForwarderClosed)
			return
		}
		addr, err := f.leader(ctx)
		if errors.Is(err, proposer.ErrNotForwarded) {
			f.each(batch, f.local)
			return
		}
		if err != nil {
			failCalls(batch, err)
			return
		}
		resp, err := f.post(ctx, addr, "/internal/v1/calls", encodeCalls(batch), api.NDJSON)
		if err == nil {
			f.receive(ctx, addr, batch, resp)
			return
		}
		var pe *peerError
		switch {
		case !errors.As(err, &pe):
			if olderLeader(err) {
				f.each(batch, f.single)
				return
			}
			failCalls(batch, err) // the leader's answer to the whole batch
			return
		case f.ctx.Err() != nil || ctx.Err() != nil:
			failCalls(batch, f.lost(ctx, err))
			return
		case !pe.sent && sleepCtx(ctx, 20*time.Millisecond):
			batch = waiting(batch) // not sent: the calls nobody waits for can go
			if len(batch) == 0 {
				return
			}
			continue
		}
		failCalls(batch, f.lost(ctx, err))
		return
	}
}

// lost is the error of the calls of a batch sent to the leader whose
// answer did not (fully) arrive: their outcome is unknown. ctx is the
// batch's.
func (f *callForwarder) lost(ctx context.Context, err error) error {
	switch {
	case f.ctx.Err() != nil:
		return tandem.WrapError(tandem.CodeUnavailable, err, "node is shutting down; the contract call may or may not have been applied")
	case ctx.Err() != nil:
		return tandem.WrapError(tandem.CodeTimeout, err, "timed out waiting for the leader to run the contract call; it may or may not have been applied")
	}
	return tandem.WrapError(tandem.CodeUnavailable, err, "lost the leader during the contract call; it may or may not have been applied: %v", err)
}

// receive reads the leader's answer to a batch and hands each call its
// outcome: as each line of a streamed answer arrives, or all at once from
// an older leader's single JSON object. The calls left without a line
// when the stream ends get the lost-leader (or timeout) error.
func (f *callForwarder) receive(ctx context.Context, addr string, batch []*fwdCall, resp *http.Response) {
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != api.NDJSON {
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			failCalls(batch, f.lost(ctx, fmt.Errorf("node at %s: %w", addr, err)))
			return
		}
		var out api.CallBatchResponse
		if err := json.Unmarshal(data, &out); err != nil {
			failCalls(batch, err)
			return
		}
		f.deliver(batch, out.Results)
		return
	}
	answered := make([]bool, len(batch))
	unanswered := func() []*fwdCall {
		var out []*fwdCall
		for i, c := range batch {
			if !answered[i] {
				out = append(out, c)
			}
		}
		return out
	}
	dec := json.NewDecoder(resp.Body)
	for left := len(batch); left > 0; left-- {
		var line api.CallStreamLine
		if err := dec.Decode(&line); err != nil {
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) {
				failCalls(unanswered(), tandem.Errorf(tandem.CodeInternal, "the leader's answer to the contract calls is not valid (%v); they may or may not have been applied", err))
				return
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the leader ended the answer early
			}
			failCalls(unanswered(), f.lost(ctx, fmt.Errorf("node at %s: %w", addr, err)))
			return
		}
		if line.I < 0 || line.I >= len(batch) || answered[line.I] {
			failCalls(unanswered(), tandem.Errorf(tandem.CodeInternal, "the leader answered for contract call %d of a batch of %d twice or out of range; the calls may or may not have been applied", line.I, len(batch)))
			return
		}
		answered[line.I] = true
		deliverOne(batch[line.I], line.CallBatchResult)
	}
	// Read to the end so the connection can be used again.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
}

// cancelWhenAbandoned cancels a batch once every one of its callers has
// stopped waiting. The batch's request then ends, and with it, on the
// leader, the calls not yet run or still retrying a conflict, as a single
// forwarded call ends when its client goes away. Without this, a call
// nobody waits for any more would go on for up to the write timeout and
// could commit long after its caller had given up. It returns the func
// that unregisters it.
func cancelWhenAbandoned(batch []*fwdCall, cancel context.CancelFunc) (stop func()) {
	var waiting atomic.Int64
	waiting.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, c := range batch {
		stops[i] = context.AfterFunc(c.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// deadline is the latest deadline of the batch's callers: the batch is
// worth waiting for as long as one of them waits. A caller without one
// waits up to the write timeout.
func (f *callForwarder) deadline(batch []*fwdCall) time.Time {
	var last time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			d = time.Now().Add(f.timeout)
		}
		if d.After(last) {
			last = d
		}
	}
	return last
}

// deliver hands each caller its own result.
func (f *callForwarder) deliver(batch []*fwdCall, results []api.CallBatchResult) {
	if len(results) != len(batch) {
		failCalls(batch, tandem.Errorf(tandem.CodeInternal, "the leader returned %d results for %d contract calls; they may or may not have been applied", len(results), len(batch)))
		return
	}
	for i, c := range batch {
		deliverOne(c, results[i])
	}
}

// deliverOne hands a caller its result.
func deliverOne(c *fwdCall, r api.CallBatchResult) {
	switch {
	case r.Error != nil:
		c.done <- fwdOutcome{err: r.Error}
	case r.Result == nil:
		c.done <- fwdOutcome{err: tandem.Errorf(tandem.CodeInternal, "the leader returned no result for a contract call; it may or may not have been applied")}
	default:
		c.done <- fwdOutcome{res: r.Result}
	}
}

// each runs every call of the batch through run, concurrently, each with
// its caller's context (and so its credentials, which the single-call path
// presents as it always has), ending early if the node closes.
func (f *callForwarder) each(batch []*fwdCall, run func(context.Context, tandem.ContractCall) (*tandem.CallResult, error)) {
	var wg sync.WaitGroup
	for _, c := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(c.ctx)
			defer cancel()
			stop := context.AfterFunc(f.ctx, cancel)
			defer stop()
			res, err := run(ctx, c.req)
			c.done <- fwdOutcome{res: res, err: err}
		}()
	}
	wg.Wait()
}

// encodeCalls builds the api.CallBatchRequest body from the calls' own
// encodings.
func encodeCalls(batch []*fwdCall) []byte {
	n := len(`{"calls":[]}`)
	for _, c := range batch {
		n += len(c.body) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"calls":[`...)
	for i, c := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, c.body...)
	}
	return append(b, "]}"...)
}

// olderLeader reports whether the leader refused the whole batch because
// it does not know /internal/v1/calls: an older version answers 404, or
// 401 when it authenticates users (an unknown route is a user route to
// it, and the batch carries no user credentials). The current version
// answers neither to a member, so trying the single-call path costs at
// most one more request, which then gets the definite answer.
func olderLeader(err error) bool {
	for err != nil {
		if te, ok := err.(*tandem.Error); ok && (te.Code == tandem.CodeNotFound || te.Code == tandem.CodeUnauthenticated) {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

// waiting returns the calls whose callers still wait.
func waiting(batch []*fwdCall) []*fwdCall {
	out := batch[:0]
	for _, c := range batch {
		if c.ctx.Err() == nil {
			out = append(out, c)
		}
	}
	return out
}

func failCalls(batch []*fwdCall, err error) {
	for _, c := range batch {
		c.done <- fwdOutcome{err: err}
	}
}
