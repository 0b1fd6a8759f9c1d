// Package coalesce shares one execution of an expensive call among the
// callers that arrive while an earlier execution is running.
//
// It is used for read indexes: a leader confirms its leadership with one
// heartbeat round for a whole batch of linearizable reads, and a follower
// asks the leader once for a batch of its own readers. Every caller that
// arrives while a round runs waits for the next round, so the value each
// caller gets was produced after it arrived, which is what linearizable
// reads need. (Unlike singleflight, which would hand a late caller the
// result of a round that started before it.)
package coalesce

import (
	"context"
	"sync"
)

// Group runs Fetch for batches of callers. The zero value is not usable;
// set Fetch. Safe for concurrent use.
type Group struct {
	Fetch func() (uint64, error)

	mu      sync.Mutex
	waiting []chan result
	running bool
}

type result struct {
	index uint64
	err   error
}

// Do returns the result of a Fetch that started after Do was called.
func (g *Group) Do(ctx context.Context) (uint64, error) {
	ch := make(chan result, 1)
	g.mu.Lock()
	g.waiting = append(g.waiting, ch)
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	select {
	case r := <-ch:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (g *Group) run() {
	for {
		g.mu.Lock()
		batch := g.waiting
		g.waiting = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		idx, err := g.Fetch()
		for _, ch := range batch {
			ch <- result{idx, err}
		}
	}
}
