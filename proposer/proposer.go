package proposer

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tandemdb/tandem"
)

// Log is the consensus module as the proposer uses it.
type Log interface {
	IsLeader() bool
	// Apply proposes an entry and waits until it is applied locally,
	// returning the state machine's response ([]tandem.Result).
	Apply(ctx context.Context, data []byte) (any, uint64, error)
}

// Forwarder sends a batch of commands to the current leader and returns
// their results in order. An error that wraps ErrNotForwarded says the
// batch was not sent because this node has become the leader; the proposer
// then proposes it itself.
type Forwarder interface {
	Forward(ctx context.Context, cmds []tandem.Command) ([]tandem.Result, error)
}

// Options configure a Proposer.
type Options struct {
	Log       Log       // required
	Forwarder Forwarder // required
	// Now stamps entries; default time.Now. Apply uses the stamp, never
	// the clock, so every node computes the same state.
	Now func() time.Time
	// MaxBatch is the most commands in one entry (default 1024);
	// MaxBatchBytes bounds their encoded size (default 4 MiB).
	MaxBatch      int
	MaxBatchBytes int
	// MaxInFlight is the most entries (or forwarded batches) outstanding
	// at once (default 1: measured best on a 2-core machine, where every
	// extra concurrent Raft round costs scheduling latency and the batches
	// it would carry ride the next round anyway; see docs/benchmarks.md).
	MaxInFlight int
	// MaxForwards is the most batches a follower has in flight to the
	// leader at once (default 4).
	MaxForwards int
	// FollowerWait bounds how long the leader holds its next entry open
	// for the followers whose forwarded commands rode the last one
	// (default 1ms; negative: never). See Proposer.waitForFollowers.
	FollowerWait time.Duration
	// ApplyTimeout bounds one entry's round trip (default 10s).
	ApplyTimeout time.Duration
	Logger       *slog.Logger
}

// Proposer batches commands into log entries. Start it before use; Close
// waits for every batch in flight.
type Proposer struct {
	opts   Options
	in     chan *pending
	sem    chan struct{} // Raft entries in flight (leader)
	fwdSem chan struct{} // forwarded batches in flight (follower)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// fromMu guards lastFrom: when each follower's latest forwarded
	// batch was queued here (leader side). forwarded wakes a leader
	// waiting for followers (waitForFollowers).
	fromMu    sync.Mutex
	lastFrom  map[string]time.Time
	forwarded chan struct{}
	// lastEnd and lastRound are when the leader's latest entry finished
	// and how long it took (UnixNano, nanoseconds); a follower's forwarded
	// batches do not count.
	lastEnd, lastRound atomic.Int64
	once               sync.Once
}

type pending struct {
	cmd tandem.Command
	// local: this command was forwarded to us as leader; it must not be
	// forwarded again (that could loop between two nodes that each think
	// the other leads).
	local bool
	// from is the node that forwarded it ("" if unknown or not forwarded).
	from string
	size int
	done chan outcome
}

type outcome struct {
	res tandem.Result
	err error
}

// New returns a Proposer; it does nothing until Start.
func New(opts Options) *Proposer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 4 << 20
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 1
	}
	if opts.MaxForwards <= 0 {
		opts.MaxForwards = 4
	}
	if opts.FollowerWait == 0 {
		opts.FollowerWait = time.Millisecond
	}
	if opts.ApplyTimeout <= 0 {
		opts.ApplyTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proposer{
		opts:      opts,
		in:        make(chan *pending, 4*opts.MaxBatch),
		sem:       make(chan struct{}, opts.MaxInFlight),
		fwdSem:    make(chan struct{}, opts.MaxForwards),
		lastFrom:  map[string]time.Time{},
		forwarded: make(chan struct{}, 1),
		ctx:       ctx,
		cancel:    cancel,
	}
}

// Start runs the batching loop.
func (p *Proposer) Start() {
	p.wg.Add(1)
	go p.loop()
}

// Close stops accepting commands and waits for batches in flight.
// Safe to call twice.
func (p *Proposer) Close() error {
	p.once.Do(func() {
		p.cancel()
		p.wg.Wait()
		p.drain() // anything enqueued while the loop was stopping
	})
	return nil
}

// ErrNotForwarded is wrapped by Forwarder errors for batches that were not
// sent because this node itself is now the leader.
var ErrNotForwarded = errors.New("proposer: not forwarded: this node is the leader")

var errClosed = tandem.Errorf(tandem.CodeUnavailable, "node is shutting down")

// Propose submits one command and waits for its result. The error is
// non-nil only when the command's fate is unknown or it was not proposed;
// see the package doc.
func (p *Proposer) Propose(ctx context.Context, cmd tandem.Command) (tandem.Result, error) {
	res, err := p.ProposeAll(ctx, []tandem.Command{cmd}, false)
	if err != nil {
		return tandem.Result{}, err
	}
	return res[0].Result, res[0].Err
}

// Outcome is the result of one command of ProposeAll.
type Outcome struct {
	tandem.Result
	Err error // as Propose's error
}

// ProposeAll submits several commands (each its own transaction) and waits
// for all. With local set the commands are never forwarded: a follower
// answers them with CodeUnavailable (used for batches forwarded to us).
func (p *Proposer) ProposeAll(ctx context.Context, cmds []tandem.Command, local bool) ([]Outcome, error) {
	return p.proposeAll(ctx, cmds, local, "")
}

// ProposeForwarded is ProposeAll for a batch that follower from forwarded
// to this node: never forwarded again, and counted as that follower's
// latest batch (waitForFollowers).
func (p *Proposer) ProposeForwarded(ctx context.Context, from string, cmds []tandem.Command) ([]Outcome, error) {
	return p.proposeAll(ctx, cmds, true, from)
}

func (p *Proposer) proposeAll(ctx context.Context, cmds []tandem.Command, local bool, from string) ([]Outcome, error) {
	ps := make([]*pending, len(cmds))
	for i := range cmds {
		var err error
		if ps[i], err = p.enqueue(ctx, cmds[i], local, from); err != nil {
			return nil, err
		}
	}
	if from != "" && len(cmds) > 0 {
		p.fromMu.Lock()
		p.lastFrom[from] = time.Now()
		p.fromMu.Unlock()
		select {
		case p.forwarded <- struct{}{}:
		default:
		}
	}
	out := make([]Outcome, len(cmds))
	for i, pd := range ps {
		out[i] = p.await(ctx, pd)
	}
	return out, nil
}

// Submit queues cmd and returns a function that waits for its result (as
// Propose returns it). Commands submitted one after another are proposed
// in that order, so a caller that must not reorder its commands (the
// contract engine's leader-side execution) submits under its own lock and
// waits outside it.
func (p *Proposer) Submit(ctx context.Context, cmd tandem.Command) (func(context.Context) (tandem.Result, error), error) {
	pd, err := p.enqueue(ctx, cmd, false, "")
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (tandem.Result, error) {
		o := p.await(ctx, pd)
		return o.Result, o.Err
	}, nil
}

func (p *Proposer) enqueue(ctx context.Context, cmd tandem.Command, local bool, from string) (*pending, error) {
	if p.ctx.Err() != nil {
		return nil, errClosed
	}
	pd := &pending{cmd: cmd, local: local, from: from, size: commandSize(&cmd), done: make(chan outcome, 1)}
	select {
	case p.in <- pd:
		return pd, nil
	case <-p.ctx.Done():
		return nil, errClosed
	case <-ctx.Done():
		return nil, tandem.WrapError(tandem.CodeTimeout, ctx.Err(), "timed out waiting to propose")
	}
}

func (p *Proposer) await(ctx context.Context, pd *pending) Outcome {
	select {
	case o := <-pd.done:
		return Outcome{Result: o.res, Err: o.err}
	case <-p.ctx.Done():
		// Closing: a batch in flight may still commit.
		select {
		case o := <-pd.done:
			return Outcome{Result: o.res, Err: o.err}
		case <-time.After(p.opts.ApplyTimeout):
			return Outcome{Err: tandem.Errorf(tandem.CodeUnavailable, "node is shutting down; the write may or may not have been applied")}
		}
	case <-ctx.Done():
		return Outcome{Err: tandem.WrapError(tandem.CodeTimeout, ctx.Err(), "timed out waiting for the commit; the write may or may not have been applied")}
	}
}

func (p *Proposer) loop() {
	defer p.wg.Done()
	var carry *pending
	var lastFroms []string // followers whose commands rode the latest entry
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-p.in:
			case <-p.ctx.Done():
				p.drain()
				return
			}
		}
		// Wait for an in-flight slot before gathering: while we wait,
		// more commands queue up and join this batch. The leader's slots
		// bound Raft entries; a follower's bound forwarded batches, which
		// merge into the leader's entries and so can be more.
		sem := p.fwdSem
		if p.opts.Log.IsLeader() {
			sem = p.sem
		}
		select {
		case sem <- struct{}{}:
		case <-p.ctx.Done():
			fail([]*pending{first}, errClosed)
			p.drain()
			return
		}
		if sem == p.sem && len(lastFroms) > 0 {
			p.waitForFollowers(lastFroms)
		}
		if sem == p.fwdSem && len(p.in) == 0 {
			// A follower's commands come in bursts: one multiplexed
			// message, or one commit's answers, sets many handler
			// goroutines running at once, and the first to queue its
			// command found a forwarding slot free. Let the others queue
			// theirs before gathering, or they go as batches of their own
			// that reach the leader after its wait for this follower
			// ended and so miss its next entry (docs/benchmarks.md: 35%
			// of forwarded commands did). When nothing else is runnable
			// this costs a few hundred nanoseconds.
			runtime.Gosched()
		}
		batch := []*pending{first}
		size := first.size
	gather:
		for len(batch) < p.opts.MaxBatch {
			select {
			case pd := <-p.in:
				if size+pd.size > p.opts.MaxBatchBytes {
					carry = pd
					break gather
				}
				batch = append(batch, pd)
				size += pd.size
			default:
				break gather
			}
		}
		lastFroms = lastFroms[:0]
		if sem == p.sem {
			for _, pd := range batch {
				if pd.from != "" && !slices.Contains(lastFroms, pd.from) {
					lastFroms = append(lastFroms, pd.from)
				}
			}
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			start := time.Now()
			defer func() {
				if sem == p.sem {
					end := time.Now()
					p.lastRound.Store(int64(end.Sub(start)))
					p.lastEnd.Store(end.UnixNano())
				}
				<-sem
			}()
			p.dispatch(batch)
		}()
	}
}

// waitForFollowers holds the leader's next entry open until each of froms
// (the followers whose forwarded commands rode the latest entry) has
// forwarded a batch since that entry finished, for at most FollowerWait
// and never longer than that entry took.
//
// Why: a follower learns that its batch committed when the leader answers
// it, at the end of a round, and only then sends the batch it gathered
// meanwhile (its forwarding slots are busy until then). That batch
// reaches the leader a few hundred microseconds after the leader started
// its next round, so it waited a whole round at the leader: under the
// write benchmark, 1 ms of each forwarded write's 5. Waiting for it
// instead lets it ride the next entry: entries grow (23 commands to 31 at
// C=64), each write costs the nodes less CPU, and forwarded writes
// commit a round sooner (docs/benchmarks.md). It is group commit's usual
// trade (PostgreSQL's commit_delay waits for active siblings the same
// way): the wait ends as soon as the expected batches are in, and
// happens only when followers sent commands to the entry just finished,
// so an idle or leader-only workload never waits. Waiting longer than a
// round is never worth it: missing the entry costs one round.
func (p *Proposer) waitForFollowers(froms []string) {
	limit := min(p.opts.FollowerWait, time.Duration(p.lastRound.Load()))
	if limit <= 0 {
		return
	}
	end := time.Unix(0, p.lastEnd.Load())
	timer := time.NewTimer(limit - time.Since(end))
	defer timer.Stop()
	for {
		p.fromMu.Lock()
		all := true
		for _, f := range froms {
			if !p.lastFrom[f].After(end) {
				all = false
				break
			}
		}
		p.fromMu.Unlock()
		if all {
			return
		}
		select {
		case <-p.forwarded:
		case <-timer.C:
			return
		case <-p.ctx.Done():
			return
		}
	}
}

// drain fails everything still queued after Close.
func (p *Proposer) drain() {
	for {
		select {
		case pd := <-p.in:
			fail([]*pending{pd}, errClosed)
		default:
			return
		}
	}
}

func (p *Proposer) dispatch(batch []*pending) {
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.ApplyTimeout)
	defer cancel()
	// Leadership can move while we decide; each turn either commits,
	// forwards, or (nothing having been sent) tries again.
	for attempt := 0; ; attempt++ {
		if p.opts.Log.IsLeader() {
			batch = p.commit(ctx, batch) // what is returned was refused: not leader
			if len(batch) == 0 {
				return
			}
		}
		batch = p.forward(ctx, batch)
		if len(batch) == 0 {
			return
		}
		if attempt >= 10 || ctx.Err() != nil {
			fail(batch, tandem.Errorf(tandem.CodeUnavailable, "leadership kept moving; the write was not applied"))
			return
		}
	}
}

// forward sends the batch to the leader. It returns the batch back when it
// was not sent because this node has become the leader.
func (p *Proposer) forward(ctx context.Context, batch []*pending) []*pending {
	var fwd []*pending
	for _, pd := range batch {
		if pd.local {
			fail([]*pending{pd}, tandem.Errorf(tandem.CodeUnavailable, "this node is no longer the leader; the write was not applied"))
			continue
		}
		fwd = append(fwd, pd)
	}
	if len(fwd) == 0 {
		return nil
	}
	cmds := make([]tandem.Command, len(fwd))
	for i, pd := range fwd {
		cmds[i] = pd.cmd
	}
	results, err := p.opts.Forwarder.Forward(ctx, cmds)
	if errors.Is(err, ErrNotForwarded) {
		return fwd
	}
	if err == nil && len(results) != len(fwd) {
		err = tandem.Errorf(tandem.CodeInternal, "leader returned %d results for %d commands", len(results), len(fwd))
	}
	if err != nil {
		fail(fwd, asUnknown(err))
		return nil
	}
	for i, pd := range fwd {
		pd.done <- outcome{res: results[i]}
	}
	return nil
}

// commit proposes the batch as one entry. It returns the batch back when
// Raft refused it because this node is not the leader (nothing was
// appended, so forwarding is safe).
func (p *Proposer) commit(ctx context.Context, batch []*pending) []*pending {
	e := tandem.Entry{Time: p.opts.Now().UnixNano(), Commands: make([]tandem.Command, len(batch))}
	for i, pd := range batch {
		e.Commands[i] = pd.cmd
	}
	data, err := tandem.EncodeEntry(&e)
	if err != nil {
		// A command that cannot be encoded is a client value json cannot
		// represent; fail them one by one rather than the whole batch.
		if len(batch) == 1 {
			fail(batch, tandem.WrapError(tandem.CodeInvalid, err, "cannot encode command: %v", err))
			return nil
		}
		var retry []*pending
		for _, pd := range batch {
			retry = append(retry, p.commit(ctx, []*pending{pd})...)
		}
		return retry
	}
	resp, _, err := p.opts.Log.Apply(ctx, data)
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return batch
	case err != nil:
		fail(batch, asUnknown(err))
		return nil
	}
	results, ok := resp.([]tandem.Result)
	if !ok || len(results) != len(batch) {
		fail(batch, tandem.Errorf(tandem.CodeInternal, "state machine returned %T for a batch of %d", resp, len(batch)))
		return nil
	}
	for i, pd := range batch {
		pd.done <- outcome{res: results[i]}
	}
	return nil
}

// asUnknown classifies a failure to commit. Errors that already carry a
// code keep it; Raft's errors mean the outcome is unknown.
func asUnknown(err error) error {
	var te *tandem.Error
	if errors.As(err, &te) {
		return te
	}
	switch {
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return tandem.WrapError(tandem.CodeUnavailable, err, "raft is overloaded; the write was not applied")
	case errors.Is(err, raft.ErrRaftShutdown):
		return tandem.WrapError(tandem.CodeUnavailable, err, "node is shutting down; the write may or may not have been applied")
	case errors.Is(err, context.DeadlineExceeded):
		return tandem.WrapError(tandem.CodeTimeout, err, "timed out waiting for the commit; the write may or may not have been applied")
	}
	return tandem.WrapError(tandem.CodeUnavailable, err, "the write may or may not have been applied: %v", err)
}

func fail(batch []*pending, err error) {
	for _, pd := range batch {
		pd.done <- outcome{err: err}
	}
}

// commandSize estimates a command's encoded size for batch limits.
func commandSize(c *tandem.Command) int {
	n := 64
	if c.Tx != nil {
		for _, op := range c.Tx.Ops {
			n += 64 + len(op.Key) + len(op.Record)
		}
		n += 64 * len(c.Tx.Conditions)
		for _, ev := range c.Tx.Events {
			n += 64 + len(ev.Payload)
		}
	}
	if c.Contract != nil {
		n += len(c.Contract.Wasm) * 4 / 3 // JSON-encoded: base64
	}
	return n
}
