package contract

import (
	"context"
	"slices"
	"sync"
)

// slots bounds how many leader-side executions run at once, and adapts
// the bound to contention as TCP adapts its window: it shrinks by half
// when an execution goes stale (another in-flight call wrote a record it
// read, so its work is thrown away) and grows by a fraction of a slot when
// one is submitted. With independent records the bound stays at its
// maximum and executions run in parallel; on one hot record every
// concurrent execution but one would be wasted, so the bound falls to one
// and calls run back to back, each seeing the previous one's writes in the
// overlay. Waiters are served in arrival order, which keeps the latency
// of a hot record's queue bounded by its length; a call running again
// because it went stale is served before them (acquireAgain), so it waits
// for the queue once, not once per attempt.
type slots struct {
	mu      sync.Mutex
	inUse   int
	window  float64 // the bound, fractional while it grows
	max     int
	retries []chan struct{} // served first, in arrival order
	waiters []chan struct{}
}

func newSlots(max int) *slots {
	return &slots{window: float64(max), max: max}
}

func (s *slots) limit() int { return max(1, int(s.window)) }

// acquire waits for a slot, behind every call already waiting.
func (s *slots) acquire(ctx context.Context) error { return s.wait(ctx, false) }

// acquireAgain waits for a slot for a call that has already waited its
// turn and must run again: ahead of the calls that have not run yet. On a
// hot record a stale call sent to the back of the queue waited for all of
// it twice.
func (s *slots) acquireAgain(ctx context.Context) error { return s.wait(ctx, true) }

func (s *slots) wait(ctx context.Context, again bool) error {
	s.mu.Lock()
	if s.inUse < s.limit() && len(s.retries) == 0 && (again || len(s.waiters) == 0) {
		s.inUse++
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	q := &s.waiters
	if again {
		q = &s.retries
	}
	*q = append(*q, ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-ch: // granted meanwhile: hand it on
			s.inUse--
			s.grant()
		default:
			*q = slices.DeleteFunc(*q, func(w chan struct{}) bool { return w == ch })
		}
		return ctx.Err()
	}
}

// Outcomes of an execution, for release.
const (
	execOther     = iota // failed or read-only: no information on contention
	execSubmitted        // its writes were submitted
	execStale            // it read what another in-flight call then wrote
)

// release returns a slot and adapts the bound to how the execution went.
func (s *slots) release(outcome int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inUse--
	switch outcome {
	case execStale:
		s.window = max(1, s.window/2)
	case execSubmitted:
		s.window = min(float64(s.max), s.window+1/(4*s.window))
	}
	s.grant()
}

func (s *slots) grant() {
	for s.inUse < s.limit() {
		q := &s.retries
		if len(*q) == 0 {
			q = &s.waiters
		}
		if len(*q) == 0 {
			return
		}
		ch := (*q)[0]
		*q = (*q)[1:]
		s.inUse++
		close(ch)
	}
}
