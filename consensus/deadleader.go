package consensus

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// Failover after the leader's process dies.
//
// hashicorp/raft checks for a silent leader only when a follower's timer
// fires, every one to two heartbeat timeouts, so a follower notices a
// dead leader one to three heartbeat timeouts after it last heard from
// it. And a follower that has not noticed yet still has a leader, so it
// refuses to vote (pre-vote and vote): the election waits for the slower
// of the two followers, about 1.2 s at the default 500 ms.
//
// A follower whose leader has gone quiet therefore probes the leader's
// Raft port. A refused connection means the process is gone (a stalled
// or cut-off leader still completes TCP handshakes, or times out), and
// then the follower makes hashicorp/raft run its own check as soon as the
// silence exceeds the heartbeat timeout plus a random jitter, rather
// than whenever its timer next fires. The check itself is unchanged: it
// still starts an election only if the leader has been silent for a full
// heartbeat timeout, and pre-vote still keeps a node that is wrong from
// disrupting a live leader. The jitter keeps the two followers from
// standing for election at the same moment and splitting the vote.
const (
	watchTick = 10 * time.Millisecond
	// probeEvery bounds the probes of one quiet leader; probeTimeout is a
	// dial's limit (loopback and LAN peers refuse in well under it).
	probeEvery   = 50 * time.Millisecond
	probeTimeout = 50 * time.Millisecond
	// kickEvery spaces the re-checks while the leader stays dead (a
	// check can find contact a little under the timeout, or lose a race
	// with a vote request).
	kickEvery = 50 * time.Millisecond
)

// leaderWatch decides, tick by tick, when a follower should re-check its
// leader. Its inputs come from Raft; probe and kick are injected so the
// rules can be tested without sockets.
type leaderWatch struct {
	timeout    time.Duration // the heartbeat timeout
	probeAfter time.Duration // silence before the leader is probed
	maxJitter  time.Duration
	probe      func(addr string) (refused bool)
	kick       func() error
	jitter     func(max time.Duration) time.Duration
	onDead     func(leaderID string) // once per dead leader, for the log

	// The current episode: one leader, silent for longer than probeAfter
	// (leader is empty between episodes).
	leader    string
	refused   bool
	delay     time.Duration // timeout + this episode's jitter
	lastProbe time.Time
	lastKick  time.Time
}

func newLeaderWatch(timeout time.Duration) *leaderWatch {
	return &leaderWatch{
		timeout:    timeout,
		probeAfter: timeout / 4,
		maxJitter:  timeout / 5,
		probe:      refusesConnections,
		jitter:     func(max time.Duration) time.Duration { return rand.N(max) },
	}
}

// step looks at the follower's state at now and probes or kicks as due.
// It reports whether it kicked.
func (w *leaderWatch) step(now time.Time, state raft.RaftState, leaderAddr, leaderID string, lastContact time.Time) bool {
	silence := now.Sub(lastContact)
	if state != raft.Follower || leaderAddr == "" || silence < w.probeAfter {
		w.leader = "" // no episode
		return false
	}
	if leaderAddr != w.leader {
		w.begin(leaderAddr)
	}
	if !w.refused && now.Sub(w.lastProbe) >= probeEvery {
		w.lastProbe = now
		if w.refused = w.probe(leaderAddr); w.refused && w.onDead != nil {
			w.onDead(leaderID)
		}
	}
	if !w.refused || silence < w.delay || now.Sub(w.lastKick) < kickEvery {
		return false
	}
	w.lastKick = now
	return w.kick() == nil
}

// begin starts an episode: leaderAddr has been silent for probeAfter.
func (w *leaderWatch) begin(leaderAddr string) {
	w.leader, w.refused = leaderAddr, false
	w.lastProbe, w.lastKick = time.Time{}, time.Time{}
	w.delay = w.timeout
	if w.maxJitter > 0 {
		w.delay += w.jitter(w.maxJitter)
	}
}

// refusesConnections reports whether a TCP connection to addr is refused
// (nothing listens there). A timeout or any other error is not proof.
func refusesConnections(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// watchDeadLeader runs the leaderWatch on this node until ctx ends.
func (n *Raft) watchDeadLeader(ctx context.Context) {
	defer n.wg.Done()
	w := newLeaderWatch(n.opts.HeartbeatTimeout)
	w.kick = n.recheckLeader
	w.onDead = func(id string) {
		n.opts.Logger.Warn("the leader's Raft port refuses connections; checking for a new leader without waiting for the follower timer", "leader", id)
	}
	t := time.NewTicker(watchTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			addr, id := n.r.LeaderWithID()
			w.step(now, n.r.State(), string(addr), string(id), n.r.LastContact())
		}
	}
}

// recheckLeader makes a follower's Raft loop check for leader contact now.
// ReloadConfig with a shorter heartbeat timeout re-arms the follower's
// timer to fire at once (so that a shorter timeout takes effect); the
// second call restores the timeout, which re-arms nothing. The check
// uses the configured timeout either way, give or take a nanosecond.
func (n *Raft) recheckLeader() error {
	rc := n.r.ReloadableConfig()
	ht := rc.HeartbeatTimeout
	rc.HeartbeatTimeout = ht - time.Nanosecond
	if err := n.r.ReloadConfig(rc); err != nil {
		return err
	}
	rc.HeartbeatTimeout = ht
	return n.r.ReloadConfig(rc)
}
