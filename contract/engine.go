package contract

import (
	"context"
	"sync"
	"time"

	"github.com/tandemdb/tandem"
)

// MaxAttempts is how many times Engine.Call executes a function whose
// transaction keeps failing a condition before it answers CodeConflict.
const MaxAttempts = 10

// ClosingView is a View that must be released.
type ClosingView interface {
	View
	Close() error
}

// EngineOptions wire an Engine to its node.
type EngineOptions struct {
	Runtime *Runtime // required
	// View opens a consistent view of the local committed state.
	View func() (ClosingView, error) // required
	// Propose replicates a command and returns its result (package
	// proposer); err means the outcome is unknown.
	Propose func(ctx context.Context, cmd tandem.Command) (tandem.Result, error) // required
	// WaitApplied blocks until the local store has applied index.
	WaitApplied func(ctx context.Context, index uint64) error // required
	// ReadIndex returns the index a linearizable read must wait for. A
	// function that refuses a call on a node that is behind is run again
	// once the node has caught up, so a refusal is never based on a stale
	// state (a success needs no such check: its conditions are checked at
	// apply).
	ReadIndex func(ctx context.Context) (uint64, error) // required

	// Leader-side execution (all three, or none: then every node runs
	// calls itself and relies on conditions alone). On the leader, calls
	// run against the committed state plus the writes of calls still in
	// flight, so calls on one hot record chain up behind each other
	// instead of conflicting at apply; other nodes pass write calls to the
	// leader.
	//
	// IsLeader reports whether this node leads. Submit queues a command
	// in order and returns a wait for its result (proposer.Submit).
	// Forward runs a call on the leader.
	IsLeader func() bool
	Submit   func(ctx context.Context, cmd tandem.Command) (func(context.Context) (tandem.Result, error), error)
	Forward  func(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error)
}

// Engine turns contract calls into transactions: execute, propose,
// re-execute after a conflict. It is safe for concurrent use.
type Engine struct {
	opts EngineOptions

	// ov holds the writes of the leader's in-flight calls.
	ov overlay
	// execMu is held for reading by leader-side executions and for writing
	// by one that went stale before: it then runs alone, so it cannot go
	// stale again (progress on a hot record).
	execMu sync.RWMutex
	// slots bounds concurrent leader-side executions, fewer as they go
	// stale (slots.go). Taken before execMu.
	slots *slots
}

// NewEngine returns an engine; it starts nothing.
func NewEngine(opts EngineOptions) *Engine {
	return &Engine{opts: opts, ov: newOverlay(),
		// More concurrent executions than a module has instances would
		// only queue for an instance.
		slots: newSlots(opts.Runtime.opts.PoolSize)}
}

func (e *Engine) leaderMode() bool {
	return e.opts.IsLeader != nil && e.opts.Submit != nil && e.opts.Forward != nil
}

// Validate checks a module before it is deployed (Runtime.Validate).
func (e *Engine) Validate(ctx context.Context, wasm []byte) ([]tandem.ContractFunction, error) {
	return e.opts.Runtime.Validate(ctx, wasm)
}

// ReadOnly runs a read-only function once against the local state; the
// caller has already waited for the read consistency it wants. A function
// not declared read-only is refused with CodeInvalid (it must go through
// Call).
func (e *Engine) ReadOnly(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	out, err := e.execute(ctx, req)
	if err != nil {
		return nil, err
	}
	if !out.Function.ReadOnly {
		return nil, tandem.Errorf(tandem.CodeInvalid, "function %q of contract %q is not read-only", req.Function, req.Contract)
	}
	return &tandem.CallResult{Result: out.Result, Index: out.ReadIndex, Version: out.Version, Attempts: 1}, nil
}

// Call executes a function and commits its transaction, executing it again
// (after waiting for the entry that invalidated it) when what it read
// changed meanwhile, up to MaxAttempts times. A read-only function is run
// once and nothing is proposed. Errors: those of Runtime.Execute, the
// transaction's rejection, CodeConflict after MaxAttempts, and
// CodeTimeout/CodeUnavailable when the outcome is unknown.
func (e *Engine) Call(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	if e.leaderMode() {
		if !e.opts.IsLeader() {
			return e.opts.Forward(ctx, req)
		}
		return e.callOnLeader(ctx, req)
	}
	return e.callOptimistic(ctx, req)
}

// CallLocal is Call for a call another node forwarded: it never forwards
// again (a node that has lost the leadership runs it optimistically).
func (e *Engine) CallLocal(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	if e.leaderMode() && e.opts.IsLeader() {
		return e.callOnLeader(ctx, req)
	}
	return e.callOptimistic(ctx, req)
}

// maxStale bounds how often callOnLeader runs a call again because a
// record it read was written by another in-flight call meanwhile (no
// proposal is made for such a run).
const maxStale = 50

// callOnLeader executes against the committed state plus the overlay of
// in-flight writes; executions run concurrently. Before proposing, it
// checks that nothing it read has been overwritten in flight since; if so
// it runs again at once, alone (execMu), so a proposal that would surely
// fail is never made and a hot record still makes progress. Then it
// submits in overlay order and waits.
func (e *Engine) callOnLeader(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	var last error
	stale := 0
	for attempt := 1; attempt <= MaxAttempts; {
		acquire := e.slots.acquire
		if stale > 0 || attempt > 1 {
			acquire = e.slots.acquireAgain
		}
		if err := acquire(ctx); err != nil {
			return nil, tandem.WrapError(tandem.CodeTimeout, err, "contract call: waiting to run: %v", err)
		}
		lock, unlock := e.execMu.RLock, e.execMu.RUnlock
		if stale > 0 {
			lock, unlock = e.execMu.Lock, e.execMu.Unlock
		}
		lock()
		out, wait, token, isStale, err := e.runOnLeader(ctx, req)
		unlock()
		switch {
		case isStale:
			e.slots.release(execStale)
		case wait != nil:
			e.slots.release(execSubmitted)
		default:
			e.slots.release(execOther)
		}
		if refusal(err) {
			// A refusal may rest on in-flight writes that will fail, or on
			// entries committed but not applied here yet (a leader that
			// has just restarted may not even have applied the deploy):
			// answer it only if the committed state as of a read index
			// refuses too.
			return e.confirmRefusal(ctx, req)
		}
		if err != nil {
			return nil, err
		}
		if isStale {
			if stale++; stale > maxStale {
				return nil, tandem.Errorf(tandem.CodeConflict, "contract call kept reading records that other calls were writing (%d times)", maxStale)
			}
			continue
		}
		if wait == nil { // read-only
			return &tandem.CallResult{Result: out.Result, Index: out.ReadIndex, Version: out.Version, Attempts: attempt}, nil
		}
		res, err := wait(ctx)
		// The leader's result arrives once the entry is applied, so views
		// opened from now on hold the writes (or they failed). Views
		// opened before still find them in the overlay (settle).
		var applied uint64
		if err == nil && res.Err == nil {
			applied = res.Index
		}
		e.ov.settle(token, out.Ops, applied)
		if done, result, err := settle(out, res, err, attempt); done {
			return result, err
		}
		last = res.Err
		attempt++
	}
	return nil, conflictError(last)
}

// refusal reports whether err is an answer about the state a call ran
// on: the function's own error, or no such contract or function. Such an
// answer is final only if a state as of a fresh read index gives it too.
func refusal(err error) bool {
	code := tandem.ErrorCode(err)
	return code == tandem.CodeContractError || code == tandem.CodeNotFound
}

// confirmRefusal runs a call the overlay made refuse once more, on the
// committed state as of a fresh read index (callOptimistic): the refusal
// stands only if that state refuses too; otherwise the call proceeds.
func (e *Engine) confirmRefusal(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	idx, err := e.opts.ReadIndex(ctx)
	if err != nil {
		return nil, tandem.WrapError(tandem.CodeUnavailable, err, "contract call: could not confirm the refusal with the leader: %v", err)
	}
	if err := e.opts.WaitApplied(ctx, idx); err != nil {
		return nil, tandem.WrapError(tandem.CodeTimeout, err, "contract call: waiting for index %d: %v", idx, err)
	}
	return e.callOptimistic(ctx, req)
}

// runOnLeader executes req once against the overlay and, unless it went
// stale, submits it. wait is nil for a read-only function.
func (e *Engine) runOnLeader(ctx context.Context, req tandem.ContractCall) (out *Outcome, wait func(context.Context) (tandem.Result, error), token uint64, stale bool, err error) {
	ov := e.ov.openView()
	view, err := e.opts.View()
	if err != nil {
		ov.close()
		return nil, nil, 0, false, err
	}
	ov.setView(view)
	// Registered until after submit: an applied write the execution saw
	// must not be purged before submit compares owners.
	defer ov.close()
	out, err = e.opts.Runtime.Execute(ctx, ov, req)
	view.Close()
	if err != nil || out.Function.ReadOnly {
		return out, nil, 0, false, err
	}
	token, stale, err = e.ov.submit(ov.seen, ov.index, out.Ops, func() (err error) {
		wait, err = e.opts.Submit(ctx, tandem.Command{Type: tandem.CmdTx, Tx: out.Tx()})
		return err
	})
	if stale || err != nil {
		wait = nil
	}
	return out, wait, token, stale, err
}

func conflictError(last error) error {
	return tandem.WrapError(tandem.CodeConflict, last, "contract call conflicted with concurrent writes %d times; last: %s", MaxAttempts, tandem.ErrorMessage(last))
}

// callOptimistic executes on this node's state and validates at apply.
func (e *Engine) callOptimistic(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	var last error
	caughtUp := false
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		out, viewIndex, err := e.executeAt(ctx, req)
		if refusal(err) && !caughtUp {
			caughtUp = true
			idx, rerr := e.opts.ReadIndex(ctx)
			if rerr != nil {
				return nil, tandem.WrapError(tandem.CodeUnavailable, rerr, "contract call: could not confirm the refusal with the leader: %v", rerr)
			}
			if idx > viewIndex {
				if err := e.opts.WaitApplied(ctx, idx); err != nil {
					return nil, tandem.WrapError(tandem.CodeTimeout, err, "contract call: waiting for index %d: %v", idx, err)
				}
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		if out.Function.ReadOnly {
			return &tandem.CallResult{Result: out.Result, Index: out.ReadIndex, Version: out.Version, Attempts: attempt}, nil
		}
		res, err := e.opts.Propose(ctx, tandem.Command{Type: tandem.CmdTx, Tx: out.Tx()})
		if done, result, err := settle(out, res, err, attempt); done {
			return result, err
		}
		last = res.Err
		// Re-execute on a state that includes whatever failed the
		// conditions, or the next run would fail the same way.
		if err := e.opts.WaitApplied(ctx, res.Index); err != nil {
			return nil, tandem.WrapError(tandem.CodeTimeout, err, "contract call: waiting for index %d before running again: %v", res.Index, err)
		}
		if attempt > 2 {
			backoff(ctx, attempt)
		}
	}
	return nil, conflictError(last)
}

// settle interprets the result of proposing an outcome: done is false
// only when a condition failed and the call should run again.
func settle(out *Outcome, res tandem.Result, err error, attempt int) (done bool, _ *tandem.CallResult, _ error) {
	switch {
	case err != nil:
		return true, nil, err
	case res.Err == nil:
		return true, &tandem.CallResult{Result: out.Result, Index: res.Index, Version: out.Version, Events: out.Events, Attempts: attempt}, nil
	case tandem.ErrorCode(res.Err) != tandem.CodeConflict:
		return true, nil, res.Err
	}
	return false, nil, nil
}

func (e *Engine) execute(ctx context.Context, req tandem.ContractCall) (*Outcome, error) {
	out, _, err := e.executeAt(ctx, req)
	return out, err
}

// executeAt executes req on a fresh view and also returns the view's
// applied index.
func (e *Engine) executeAt(ctx context.Context, req tandem.ContractCall) (*Outcome, uint64, error) {
	view, err := e.opts.View()
	if err != nil {
		return nil, 0, err
	}
	defer view.Close()
	out, err := e.opts.Runtime.Execute(ctx, view, req)
	return out, view.AppliedIndex(), err
}

// backoff spreads retries of calls that keep colliding on a hot record.
func backoff(ctx context.Context, attempt int) {
	d := time.Duration(attempt) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
