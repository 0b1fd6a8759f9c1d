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
