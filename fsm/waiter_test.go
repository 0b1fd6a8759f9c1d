package fsm_test

import (
	"context"
	"testing"
	"time"

	"github.com/tandemdb/tandem/fsm"
)

func TestWaiter(t *testing.T) {
	w := fsm.NewWaiter()
	w.Advance(5)
	if err := w.Wait(context.Background(), 5); err != nil {
		t.Fatalf("wait for applied index: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait(context.Background(), 9) }()
	w.Advance(8)
	select {
	case err := <-done:
		t.Fatalf("Wait(9) returned %v after Advance(8)", err)
	case <-time.After(20 * time.Millisecond):
	}
	w.Advance(3) // going back is ignored
	if got := w.Applied(); got != 8 {
		t.Fatalf("Applied() = %d after Advance(3); want 8", got)
	}
	w.Advance(9)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("Wait(9) did not return after Advance(9)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := w.Wait(ctx, 100); err == nil {
		t.Fatal("Wait(100) returned nil before index 100 was applied")
	}
}
