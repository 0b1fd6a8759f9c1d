package proposer_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/proposer"
)

// fakeLog applies entries after a delay and records their sizes.
type fakeLog struct {
	mu      sync.Mutex
	leader  bool
	delay   time.Duration
	index   uint64
	batches []int
	refuse  bool // answer ErrNotLeader once
}

func (l *fakeLog) IsLeader() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.leader }

func (l *fakeLog) Apply(ctx context.Context, data []byte) (any, uint64, error) {
	e, err := tandem.DecodeEntry(data)
	if err != nil {
		return nil, 0, err
	}
	time.Sleep(l.delay)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refuse {
		l.refuse = false
		return nil, 0, raft.ErrNotLeader
	}
	l.index++
	l.batches = append(l.batches, len(e.Commands))
	res := make([]tandem.Result, len(e.Commands))
	for i, c := range e.Commands {
		res[i].Index = l.index
		if c.Tx.Ops[0].Table == "missing" {
			res[i].Err = tandem.Errorf(tandem.CodeNotFound, "table missing does not exist")
		}
	}
	return res, l.index, nil
}

type fakeForwarder struct {
	mu    sync.Mutex
	calls int
	cmds  int
	sizes []int // of each call's batch
}

func (f *fakeForwarder) Forward(ctx context.Context, cmds []tandem.Command) ([]tandem.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.cmds += len(cmds)
	f.sizes = append(f.sizes, len(cmds))
	res := make([]tandem.Result, len(cmds))
	for i := range res {
		res[i].Index = 1000
	}
	return res, nil
}

func cmd(table string) tandem.Command {
	return tandem.Command{Type: tandem.CmdTx, Tx: &tandem.Tx{Ops: []tandem.Op{{Op: tandem.OpUpsert, Table: table, Record: []byte(`{"id":"a"}`)}}}}
}

func TestGroupCommitBatchesConcurrentCommands(t *testing.T) {
	log := &fakeLog{leader: true, delay: 5 * time.Millisecond}
	p := proposer.New(proposer.Options{Log: log, Forwarder: &fakeForwarder{}, MaxInFlight: 1})
	p.Start()
	defer p.Close()

	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.Propose(context.Background(), cmd("t"))
			if err == nil && res.Index == 0 {
				err = errors.New("result without index")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, b := range log.batches {
		total += b
	}
	if total != n {
		t.Fatalf("entries carried %d commands; want %d", total, n)
	}
	if len(log.batches) >= n/2 {
		t.Fatalf("%d commands took %d entries; group commit should need far fewer", n, len(log.batches))
	}
}

func TestCommandRejectionIsPerCommand(t *testing.T) {
	log := &fakeLog{leader: true}
	p := proposer.New(proposer.Options{Log: log, Forwarder: &fakeForwarder{}})
	p.Start()
	defer p.Close()
	out, err := p.ProposeAll(context.Background(), []tandem.Command{cmd("t"), cmd("missing"), cmd("t")}, false)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Result.Err != nil || out[2].Result.Err != nil {
		t.Fatalf("good commands failed: %v, %v", out[0].Result.Err, out[2].Result.Err)
	}
	if tandem.ErrorCode(out[1].Result.Err) != tandem.CodeNotFound {
		t.Fatalf("bad command: got %v, want not_found", out[1].Result.Err)
	}
}

func TestFollowerForwardsAndLocalIsNotForwarded(t *testing.T) {
	log := &fakeLog{leader: false}
	fwd := &fakeForwarder{}
	p := proposer.New(proposer.Options{Log: log, Forwarder: fwd})
	p.Start()
	defer p.Close()
	res, err := p.Propose(context.Background(), cmd("t"))
	if err != nil || res.Index != 1000 {
		t.Fatalf("forwarded propose: res=%+v err=%v", res, err)
	}
	out, err := p.ProposeAll(context.Background(), []tandem.Command{cmd("t")}, true)
	if err != nil {
		t.Fatal(err)
	}
	if tandem.ErrorCode(out[0].Err) != tandem.CodeUnavailable {
		t.Fatalf("local command on a follower: got %v, want unavailable", out[0].Err)
	}
	if fwd.cmds != 1 {
		t.Fatalf("forwarder saw %d commands; want 1", fwd.cmds)
	}
}

func TestNotLeaderAtApplyFallsBackToForwarding(t *testing.T) {
	log := &fakeLog{leader: true, refuse: true}
	fwd := &fakeForwarder{}
	p := proposer.New(proposer.Options{Log: log, Forwarder: fwd})
	p.Start()
	defer p.Close()
	res, err := p.Propose(context.Background(), cmd("t"))
	if err != nil || res.Index != 1000 || fwd.cmds != 1 {
		t.Fatalf("res=%+v err=%v forwarded=%d; want forwarded once", res, err, fwd.cmds)
	}
}

func TestTimeoutIsUnknownOutcome(t *testing.T) {
	log := &fakeLog{leader: true, delay: 200 * time.Millisecond}
	p := proposer.New(proposer.Options{Log: log, Forwarder: &fakeForwarder{}})
	p.Start()
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := p.Propose(ctx, cmd("t"))
	if tandem.ErrorCode(err) != tandem.CodeTimeout {
		t.Fatalf("got %v; want timeout", err)
	}
}

func TestClosedProposerRefuses(t *testing.T) {
	p := proposer.New(proposer.Options{Log: &fakeLog{leader: true}, Forwarder: &fakeForwarder{}})
	p.Start()
	p.Close()
	p.Close()
	if _, err := p.Propose(context.Background(), cmd("t")); tandem.ErrorCode(err) != tandem.CodeUnavailable {
		t.Fatalf("propose after close: %v; want unavailable", err)
	}
}

// selfForwarder reports that this node has become the leader, as the node's
// forwarder does when the leader it would forward to is itself.
type selfForwarder struct{ log *fakeLog }

func (f selfForwarder) Forward(ctx context.Context, cmds []tandem.Command) ([]tandem.Result, error) {
	f.log.mu.Lock()
	f.log.leader = true
	f.log.mu.Unlock()
	return nil, fmt.Errorf("leader is us: %w", proposer.ErrNotForwarded)
}

func TestBecomingLeaderWhileForwardingCommitsLocally(t *testing.T) {
	log := &fakeLog{leader: false}
	p := proposer.New(proposer.Options{Log: log, Forwarder: selfForwarder{log}})
	p.Start()
	defer p.Close()
	res, err := p.Propose(context.Background(), cmd("t"))
	if err != nil || res.Index == 0 {
		t.Fatalf("res=%+v err=%v; want the batch committed locally", res, err)
	}
	if len(log.batches) != 1 {
		t.Fatalf("log saw %d entries; want 1", len(log.batches))
	}
}

// After an entry that carried a follower's forwarded batch, the leader
// holds its next entry open for that follower's next batch (which the
// follower sends when it learns the first committed): both ride one
// entry. With the wait off, the leader's own command goes alone.
func TestLeaderWaitsForForwardingFollower(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want []int
	}{
		{wait: time.Second, want: []int{1, 2}},
		{wait: -1, want: []int{1, 1, 1}},
	} {
		t.Run(fmt.Sprint(tc.wait), func(t *testing.T) {
			log := &fakeLog{leader: true, delay: 100 * time.Millisecond}
			p := proposer.New(proposer.Options{Log: log, Forwarder: &fakeForwarder{}, FollowerWait: tc.wait})
			p.Start()
			defer p.Close()
			ctx := context.Background()
			if out, err := p.ProposeForwarded(ctx, "f1", []tandem.Command{cmd("t")}); err != nil || out[0].Err != nil {
				t.Fatalf("forwarded batch: %v %+v", err, out)
			}
			own := make(chan error, 1)
			go func() {
				_, err := p.Propose(ctx, cmd("t"))
				own <- err
			}()
			time.Sleep(20 * time.Millisecond) // the follower's turnaround
			if out, err := p.ProposeForwarded(ctx, "f1", []tandem.Command{cmd("t")}); err != nil || out[0].Err != nil {
				t.Fatalf("second forwarded batch: %v %+v", err, out)
			}
			if err := <-own; err != nil {
				t.Fatal(err)
			}
			log.mu.Lock()
			defer log.mu.Unlock()
			if fmt.Sprint(log.batches) != fmt.Sprint(tc.want) {
				t.Fatalf("entries carried %v commands, want %v", log.batches, tc.want)
			}
		})
	}
}

// A follower that sends nothing more costs the leader's next entry at most
// the length of the last round, however long FollowerWait is.
func TestLeaderWaitForFollowerIsBounded(t *testing.T) {
	log := &fakeLog{leader: true, delay: 50 * time.Millisecond}
	p := proposer.New(proposer.Options{Log: log, Forwarder: &fakeForwarder{}, FollowerWait: time.Hour})
	p.Start()
	defer p.Close()
	ctx := context.Background()
	if _, err := p.ProposeForwarded(ctx, "f1", []tandem.Command{cmd("t")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.Propose(ctx, cmd("t")); err != nil {
		t.Fatal(err)
	}
	// One round to wait (at most 50 ms) and one to commit: far below the
	// hour FollowerWait allows.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the leader's command took %v after the follower went quiet", d)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if fmt.Sprint(log.batches) != "[1 1]" {
		t.Fatalf("entries carried %v commands, want [1 1]", log.batches)
	}
}

// A burst of commands at a follower (many handlers set running at once by
// one multiplexed message) leaves together, not as a batch of the first
// command followed by the rest. One P makes the schedule
// reproducible: the burst's goroutines are all runnable when the first
// command wakes the proposer.
func TestFollowerBurstLeavesInOneBatch(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	fwd := &fakeForwarder{}
	p := proposer.New(proposer.Options{Log: &fakeLog{leader: false}, Forwarder: fwd})
	p.Start()
	defer p.Close()

	const n = 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := p.Propose(context.Background(), cmd("t")); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(10 * time.Millisecond) // every goroutine waits on start
	close(start)
	wg.Wait()
	fwd.mu.Lock()
	defer fwd.mu.Unlock()
	// One batch; the race detector's shuffled schedule may split it in
	// two or three. Without the follower's yield: 20 batches of one.
	if fwd.cmds != n || len(fwd.sizes) > 3 {
		t.Fatalf("%d commands forwarded in batches of %v; want %d in at most 3", fwd.cmds, fwd.sizes, n)
	}
}
