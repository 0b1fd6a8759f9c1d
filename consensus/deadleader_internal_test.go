package consensus

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fakeWatch is a leaderWatch with a 500 ms timeout, a fixed 40 ms jitter
// and recorded probes and kicks.
type fakeWatch struct {
	*leaderWatch
	down   bool // what the probe answers
	probes []string
	kicks  int
	dead   []string
}

func newFakeWatch() *fakeWatch {
	f := &fakeWatch{leaderWatch: newLeaderWatch(500 * time.Millisecond)}
	f.probe = func(addr string) bool { f.probes = append(f.probes, addr); return f.down }
	f.kick = func() error { f.kicks++; return nil }
	f.jitter = func(max time.Duration) time.Duration {
		if max != 100*time.Millisecond {
			panic("jitter bound is not a fifth of the timeout")
		}
		return 40 * time.Millisecond
	}
	f.onDead = func(id string) { f.dead = append(f.dead, id) }
	return f
}

// run steps the watch every 10 ms from the leader's last contact at t0
// until t0+until, and returns the silences at which it kicked.
func (f *fakeWatch) run(t0 time.Time, until time.Duration, state raft.RaftState) []time.Duration {
	var kicked []time.Duration
	for d := time.Duration(0); d <= until; d += 10 * time.Millisecond {
		if f.step(t0.Add(d), state, "10.0.0.1:7000", "n1", t0) {
			kicked = append(kicked, d)
		}
	}
	return kicked
}

func TestLeaderWatchDeadLeader(t *testing.T) {
	f := newFakeWatch()
	f.down = true
	t0 := time.Now()
	kicked := f.run(t0, 700*time.Millisecond, raft.Follower)

	// Probed once silence passed a quarter of the timeout, and only once:
	// a refusal holds for the episode.
	if len(f.probes) != 1 || f.probes[0] != "10.0.0.1:7000" {
		t.Fatalf("probes = %q, want one of the leader's address", f.probes)
	}
	if len(f.dead) != 1 || f.dead[0] != "n1" {
		t.Fatalf("dead leader reported as %q, want [n1] once", f.dead)
	}
	// Kicked first at timeout + jitter (540 ms), then every 50 ms.
	want := []time.Duration{540, 590, 640, 690}
	if len(kicked) != len(want) {
		t.Fatalf("kicked at %v, want %v ms", kicked, want)
	}
	for i := range want {
		if kicked[i] != want[i]*time.Millisecond {
			t.Fatalf("kicked at %v, want %v ms", kicked, want)
		}
	}
}

func TestLeaderWatchLiveLeaderIsNeverKicked(t *testing.T) {
	// A stalled or cut-off leader does not refuse connections: the
	// follower keeps hashicorp/raft's own timing, and probes at most every
	// probeEvery.
	f := newFakeWatch()
	t0 := time.Now()
	if kicked := f.run(t0, 2*time.Second, raft.Follower); len(kicked) != 0 {
		t.Fatalf("kicked at %v with a leader that accepts connections", kicked)
	}
	// Silence from 130 ms to 2 s, a probe every 50 ms: 38 probes.
	if n := len(f.probes); n < 30 || n > 40 {
		t.Fatalf("%d probes in 1.9 s of silence, want one per 50 ms", n)
	}
	if len(f.dead) != 0 {
		t.Fatalf("reported a live leader dead: %q", f.dead)
	}
}

func TestLeaderWatchOnlyFollowersAct(t *testing.T) {
	for _, st := range []raft.RaftState{raft.Leader, raft.Candidate, raft.Shutdown} {
		f := newFakeWatch()
		f.down = true
		if kicked := f.run(time.Now(), time.Second, st); len(kicked) != 0 || len(f.probes) != 0 {
			t.Fatalf("%v: kicked at %v after %d probes", st, kicked, len(f.probes))
		}
	}
	// A follower that knows no leader has nothing to probe.
	f := newFakeWatch()
	f.down = true
	t0 := time.Now()
	for d := time.Duration(0); d < time.Second; d += 10 * time.Millisecond {
		if f.step(t0.Add(d), raft.Follower, "", "", t0) {
			t.Fatal("kicked without a leader")
		}
	}
	if len(f.probes) != 0 {
		t.Fatalf("probed %q without a leader", f.probes)
	}
}

func TestLeaderWatchNewEpisode(t *testing.T) {
	// A refusal is forgotten once the leader is heard from again or
	// another leader takes over: the next silence is probed afresh.
	f := newFakeWatch()
	f.down = true
	t0 := time.Now()
	f.run(t0, 300*time.Millisecond, raft.Follower)
	if len(f.probes) != 1 {
		t.Fatalf("probes = %d, want 1", len(f.probes))
	}
	f.down = false
	t1 := t0.Add(time.Second) // contact resumed, then silence again
	if kicked := f.run(t1, time.Second, raft.Follower); len(kicked) != 0 {
		t.Fatalf("kicked at %v on a stale refusal", kicked)
	}
	f.down = true
	// Another leader, gone as well: probed at its own address.
	t2 := t1.Add(2 * time.Second)
	var kicked []time.Duration
	for d := time.Duration(0); d <= 600*time.Millisecond; d += 10 * time.Millisecond {
		if f.step(t2.Add(d), raft.Follower, "10.0.0.2:7000", "n2", t2) {
			kicked = append(kicked, d)
		}
	}
	if last := f.probes[len(f.probes)-1]; last != "10.0.0.2:7000" {
		t.Fatalf("last probe went to %s, want the new leader", last)
	}
	if len(kicked) == 0 || kicked[0] != 540*time.Millisecond {
		t.Fatalf("kicked at %v, want first at 540 ms", kicked)
	}
	if len(f.dead) != 2 || f.dead[1] != "n2" {
		t.Fatalf("dead leaders reported: %q", f.dead)
	}
}

func TestRefusesConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if refusesConnections(addr) {
		t.Fatalf("%s listens, but was reported as refusing", addr)
	}
	ln.Close()
	if !refusesConnections(addr) {
		t.Fatalf("%s no longer listens, but was not reported as refusing", addr)
	}
}
