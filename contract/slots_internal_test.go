package contract

import (
	"context"
	"testing"
	"time"
)

func TestSlotsBoundAndAdapt(t *testing.T) {
	s := newSlots(4)
	ctx := context.Background()
	for range 4 {
		if err := s.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A fifth waits until one is released.
	got := make(chan struct{})
	go func() {
		if err := s.acquire(ctx); err == nil {
			close(got)
		}
	}()
	select {
	case <-got:
		t.Fatal("a fifth execution got a slot while four were in use")
	case <-time.After(50 * time.Millisecond):
	}
	s.release(execOther)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the released slot")
	}
	// Stale executions halve the bound, down to one.
	for range 4 {
		s.release(execStale)
	}
	if s.limit() != 1 || s.inUse != 0 {
		t.Fatalf("after four stale executions: limit %d, in use %d; want 1, 0", s.limit(), s.inUse)
	}
	if err := s.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := s.acquire(short); err == nil {
		t.Fatal("a second execution got a slot with the bound at one")
	}
	if len(s.waiters) != 0 {
		t.Fatalf("a canceled waiter stayed queued: %d waiters", len(s.waiters))
	}
	// Submitted executions grow it back, slowly, to the maximum.
	s.release(execSubmitted)
	for range 200 {
		if err := s.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		s.release(execSubmitted)
	}
	if s.limit() != 4 {
		t.Fatalf("after 200 submitted executions: limit %d, want 4", s.limit())
	}
}

func TestSlotsFIFO(t *testing.T) {
	s := newSlots(1)
	ctx := context.Background()
	if err := s.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 3)
	for i := range 3 {
		go func() {
			if err := s.acquire(ctx); err != nil {
				return
			}
			order <- i
			s.release(execOther)
		}()
		// Queue them in order.
		for deadline := time.Now().Add(5 * time.Second); ; {
			s.mu.Lock()
			n := len(s.waiters)
			s.mu.Unlock()
			if n == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiter %d did not queue", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	s.release(execOther)
	for want := range 3 {
		select {
		case got := <-order:
			if got != want {
				t.Fatalf("waiter %d served before waiter %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiters not served")
		}
	}
}

// A call running again (stale) is served before calls that have not run
// yet, and only then do they go in arrival order.
func TestSlotsRetryFirst(t *testing.T) {
	s := newSlots(1)
	ctx := context.Background()
	if err := s.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	queued := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			s.mu.Lock()
			n := len(s.waiters) + len(s.retries)
			s.mu.Unlock()
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d waiters queued, want %d", n, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	order := make(chan string, 3)
	start := func(name string, acquire func(context.Context) error) {
		go func() {
			if err := acquire(ctx); err != nil {
				return
			}
			order <- name
			s.release(execOther)
		}()
	}
	start("first", s.acquire)
	queued(1)
	start("second", s.acquire)
	queued(2)
	start("again", s.acquireAgain)
	queued(3)
	s.release(execOther)
	for _, want := range []string{"again", "first", "second"} {
		select {
		case got := <-order:
			if got != want {
				t.Fatalf("%s served when %s was due", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiters not served")
		}
	}
	// A retry that gives up leaves no trace in the queue.
	if err := s.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := s.acquireAgain(short); err == nil {
		t.Fatal("a retry got a slot with the bound at one and the slot in use")
	}
	if len(s.retries) != 0 {
		t.Fatalf("a canceled retry stayed queued: %d", len(s.retries))
	}
}
