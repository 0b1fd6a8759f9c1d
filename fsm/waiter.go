package fsm

import (
	"container/heap"
	"context"
	"sync"
)

// Waiter lets readers wait until the state machine has applied a given log
// index (min_index reads, linearizable reads after a read index). Safe for
// concurrent use.
type Waiter struct {
	mu      sync.Mutex
	applied uint64
	waiters waitHeap
}

// NewWaiter returns a Waiter at index 0.
func NewWaiter() *Waiter { return &Waiter{} }

// Applied returns the highest index passed to Advance.
func (w *Waiter) Applied() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applied
}

// Advance records that every entry up to index has been applied and wakes
// the waiters it satisfies. Lower indexes are ignored.
func (w *Waiter) Advance(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if index <= w.applied {
		return
	}
	w.applied = index
	for len(w.waiters) > 0 && w.waiters[0].index <= index {
		close(heap.Pop(&w.waiters).(*waiter).ch)
	}
}

// Wait blocks until index has been applied or ctx is done.
func (w *Waiter) Wait(ctx context.Context, index uint64) error {
	w.mu.Lock()
	if index <= w.applied {
		w.mu.Unlock()
		return nil
	}
	wt := &waiter{index: index, ch: make(chan struct{})}
	heap.Push(&w.waiters, wt)
	w.mu.Unlock()
	select {
	case <-wt.ch:
		return nil
	case <-ctx.Done():
		// Leave the entry in the heap: it is dropped at the next Advance
		// past its index, and closing an unread channel is harmless.
		return ctx.Err()
	}
}

type waiter struct {
	index uint64
	ch    chan struct{}
}

type waitHeap []*waiter

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].index < h[j].index }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(*waiter)) }
func (h *waitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
