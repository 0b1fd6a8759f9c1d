package coalesce_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem/coalesce"
)

// A caller must never receive the result of a fetch that began before it
// called Do: that is the property linearizable reads rely on.
func TestDoSeesFetchStartedAfterCall(t *testing.T) {
	var started atomic.Uint64 // fetch number, incremented when a fetch starts
	g := &coalesce.Group{Fetch: func() (uint64, error) {
		n := started.Add(1)
		time.Sleep(2 * time.Millisecond)
		return n, nil
	}}
	var wg sync.WaitGroup
	var fetches atomic.Int64
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			before := started.Load()
			got, err := g.Do(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			if got <= before {
				t.Errorf("got result of fetch %d, but fetch %d had already started before the call", got, before)
			}
			fetches.Add(1)
		}()
	}
	wg.Wait()
	if n := started.Load(); n >= 200 {
		t.Errorf("200 concurrent callers caused %d fetches; want them coalesced", n)
	}
}

func TestDoHonoursContext(t *testing.T) {
	block := make(chan struct{})
	g := &coalesce.Group{Fetch: func() (uint64, error) { <-block; return 1, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := g.Do(ctx); err == nil {
		t.Fatal("Do returned without error while fetch was blocked past the deadline")
	}
	close(block)
}
