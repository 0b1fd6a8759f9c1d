package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/segment"

	"github.com/tandemdb/tandem/coalesce"
)

// ErrNotLeader is returned by leader-only calls on a node that is not the
// leader (or is a leader that has not yet confirmed its term).
var ErrNotLeader = errors.New("consensus: not the leader")

// Options configure a Raft member. Zero values get the documented defaults.
type Options struct {
	ID       string // required: the node's stable ID
	Dir      string // required: holds the log, stable store and snapshots
	RaftAddr string // required: address to listen on and advertise (host:port)
	// FSM receives committed entries. It should implement raft.BatchingFSM.
	FSM raft.FSM
	// Bootstrap makes this node a cluster of one if it has no Raft state yet.
	Bootstrap bool
	// LogStore is "wal" (hashicorp/raft-wal, default) or "bolt" (raft-boltdb/v2).
	LogStore string
	// RestoreOnStart makes Raft restore the newest local snapshot into the
	// FSM on start. Normally the FSM keeps its own durable state and this is
	// off; it is turned on regardless when the newest snapshot is ahead of
	// AppliedIndex (see Open).
	RestoreOnStart bool
	// AppliedIndex is the FSM's durable applied index at start.
	AppliedIndex uint64
	// HeartbeatTimeout and ElectionTimeout; default 500ms each, which
	// causes no needless elections under full load on a 2-core machine
	// (a dead leader is replaced sooner: deadleader.go). The leader lease is
	// four fifths of the heartbeat timeout: a leader cut off from the
	// majority steps down before the majority can elect another.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// SnapshotThreshold: log entries between snapshots (default 8192).
	// TrailingLogs: entries kept behind a snapshot for slow followers
	// (default 10240).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration // default 30s: how often the threshold is checked
	TrailingLogs      uint64
	// Stream, if set, replaces the plain TCP transport (a TLSStream for
	// mutual TLS; the node uses plain TCP only with --insecure).
	Stream raft.StreamLayer
	// MarkerEntry is proposed on each leadership gain (see the package doc).
	// It must be a command the FSM applies as a no-op.
	MarkerEntry []byte
	Logger      *slog.Logger
}

func (o *Options) fill() error {
	if o.ID == "" || o.Dir == "" || o.RaftAddr == "" {
		return errors.New("consensus: ID, Dir and RaftAddr are required")
	}
	if o.FSM == nil {
		return errors.New("consensus: FSM is required")
	}
	if len(o.MarkerEntry) == 0 {
		return errors.New("consensus: MarkerEntry is required")
	}
	if o.LogStore == "" {
		o.LogStore = "wal"
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if o.ElectionTimeout == 0 {
		o.ElectionTimeout = DefaultElectionTimeout
	}
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = 8192
	}
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = 30 * time.Second
	}
	if o.TrailingLogs == 0 {
		o.TrailingLogs = 10240
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Raft is this node's Raft member. Its methods are safe for concurrent use.
type Raft struct {
	opts      Options
	r         *raft.Raft
	transport raft.Transport
	logs      io.Closer
	snaps     raft.SnapshotStore
	reads     *coalesce.Group

	mu          sync.Mutex
	markerTerm  uint64 // term whose marker has been applied
	markerIndex uint64

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    atomic.Bool
}

// Default Raft timings (Options).
const (
	DefaultHeartbeatTimeout = 500 * time.Millisecond
	DefaultElectionTimeout  = 500 * time.Millisecond
)

// logCacheEntries is how many recent log entries stay in memory.
const logCacheEntries = 512

// Open starts the Raft member. With Bootstrap and no existing state it
// forms a cluster of one.
func Open(opts Options) (*Raft, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	// hashicorp/raft logs through hclog; send it to the node's slog handler
	// (warnings and above: its info level narrates every heartbeat).
	hlog := hclog.FromStandardLogger(
		slog.NewLogLogger(opts.Logger.With("component", "raft").Handler(), slog.LevelWarn),
		&hclog.LoggerOptions{Name: "raft/" + opts.ID, Level: hclog.Warn})

	var (
		logs   raft.LogStore
		stable raft.StableStore
		closer io.Closer
	)
	switch opts.LogStore {
	case "wal":
		walDir := filepath.Join(opts.Dir, "wal")
		if err := os.MkdirAll(walDir, 0o700); err != nil {
			return nil, err
		}
		segs := newZeroedSegments(walDir, segmentSize, opts.Logger)
		w, err := raftwal.Open(walDir, raftwal.WithLogger(hlog),
			raftwal.WithSegmentSize(segmentSize),
			raftwal.WithSegmentFiler(segment.NewFiler(walDir, segs)))
		if err != nil {
			segs.Close()
			return nil, fmt.Errorf("consensus: open raft-wal: %w", err)
		}
		logs, stable, closer = w, w, walCloser{w, segs}
	case "bolt":
		b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(opts.Dir, "raft.db")})
		if err != nil {
			return nil, fmt.Errorf("consensus: open raft-boltdb: %w", err)
		}
		logs, stable, closer = b, b, b
	default:
		return nil, fmt.Errorf("consensus: unknown log store %q (want wal or bolt)", opts.LogStore)
	}
	// The leader reads back every entry it replicates (and the one before,
	// for the consistency check); neither log store caches, so without
	// this each read is a pread of the file: about 8% of a leader's CPU
	// under write load (docs/benchmarks.md). 512 recent entries, as
	// Consul and Nomad keep, is a few MiB of batched commands.
	cached, err := raft.NewLogCache(logCacheEntries, logs)
	if err != nil {
		closer.Close()
		return nil, fmt.Errorf("consensus: log cache: %w", err)
	}
	logs = cached
	snaps, err := raft.NewFileSnapshotStoreWithLogger(opts.Dir, 2, hlog)
	if err != nil {
		closer.Close()
		return nil, fmt.Errorf("consensus: snapshot store: %w", err)
	}

	var transport *raft.NetworkTransport
	if opts.Stream != nil {
		transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: opts.Stream, MaxPool: 8, Timeout: 10 * time.Second, Logger: hlog,
		})
	} else {
		adv, err := net.ResolveTCPAddr("tcp", opts.RaftAddr)
		if err != nil {
			closer.Close()
			return nil, fmt.Errorf("consensus: raft address %q: %w", opts.RaftAddr, err)
		}
		transport, err = raft.NewTCPTransportWithConfig(opts.RaftAddr, adv, &raft.NetworkTransportConfig{
			MaxPool: 8, Timeout: 10 * time.Second, Logger: hlog,
		})
		if err != nil {
			closer.Close()
			return nil, fmt.Errorf("consensus: listen on %s: %w", opts.RaftAddr, err)
		}
	}

	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(opts.ID)
	cfg.Logger = hlog
	cfg.HeartbeatTimeout = opts.HeartbeatTimeout
	cfg.ElectionTimeout = opts.ElectionTimeout
	// With half the heartbeat timeout (250 ms at 500 ms), leaders on a
	// saturated 2-core machine stepped down for lack of quorum contact and
	// forced needless elections.
	cfg.LeaderLeaseTimeout = opts.HeartbeatTimeout * 4 / 5
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.SnapshotThreshold = opts.SnapshotThreshold
	cfg.SnapshotInterval = opts.SnapshotInterval
	cfg.TrailingLogs = opts.TrailingLogs
	// A follower persists a snapshot from the leader before restoring it
	// into the FSM; killed in between, it would restart believing the
	// snapshot applied while the store is behind it, and the log entries it
	// lacks are gone. So a snapshot ahead of the store is restored.
	restore := opts.RestoreOnStart
	if metas, err := snaps.List(); err == nil && len(metas) > 0 && metas[0].Index > opts.AppliedIndex {
		opts.Logger.Warn("newest snapshot is ahead of the store; restoring it", "snapshot_index", metas[0].Index, "applied_index", opts.AppliedIndex)
		restore = true
	}
	cfg.NoSnapshotRestoreOnStart = !restore
	cfg.BatchApplyCh = true
	cfg.MaxAppendEntries = 256

	hasState, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		closer.Close()
		transport.Close()
		return nil, err
	}
	r, err := raft.NewRaft(cfg, opts.FSM, logs, stable, snaps, transport)
	if err != nil {
		closer.Close()
		transport.Close()
		return nil, fmt.Errorf("consensus: start raft: %w", err)
	}
	if opts.Bootstrap && !hasState {
		f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(opts.ID), Address: transport.LocalAddr(),
		}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			r.Shutdown()
			closer.Close()
			transport.Close()
			return nil, fmt.Errorf("consensus: bootstrap: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Raft{opts: opts, r: r, transport: transport, logs: closer, snaps: snaps, cancel: cancel}
	n.reads = &coalesce.Group{Fetch: n.leaderReadIndex}
	n.wg.Add(2)
	go n.watchLeadership(ctx)
	go n.watchDeadLeader(ctx)
	return n, nil
}

// watchLeadership proposes the term marker every time this node becomes
// leader, and records it once applied.
func (n *Raft) watchLeadership(ctx context.Context) {
	defer n.wg.Done()
	obs := make(chan raft.Observation, 16)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.r.RegisterObserver(observer)
	defer n.r.DeregisterObserver(observer)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		n.ensureMarker()
		select {
		case <-ctx.Done():
			return
		case <-obs:
		case <-tick.C:
		}
	}
}

// ensureMarker proposes the marker if this node leads a term without one.
func (n *Raft) ensureMarker() {
	if n.r.State() != raft.Leader {
		return
	}
	term := n.r.CurrentTerm()
	n.mu.Lock()
	done := n.markerTerm == term
	n.mu.Unlock()
	if done {
		return
	}
	f := n.r.Apply(n.opts.MarkerEntry, 5*time.Second)
	if err := f.Error(); err != nil {
		return // lost leadership or shutting down; retried on the next tick
	}
	n.mu.Lock()
	if term >= n.markerTerm {
		n.markerTerm, n.markerIndex = term, f.Index()
	}
	n.mu.Unlock()
}

// Apply proposes one entry and waits until it is committed and applied on
// this node. It returns the FSM's response and the entry's log index.
// Only the leader can apply; others get raft.ErrNotLeader.
func (n *Raft) Apply(ctx context.Context, data []byte) (any, uint64, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.r.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return nil, 0, err
	}
	return f.Response(), f.Index(), nil
}

// IsLeader reports whether this node currently believes it leads.
func (n *Raft) IsLeader() bool { return n.r.State() == raft.Leader }

// Leader returns the current leader's ID and Raft address, empty if unknown.
func (n *Raft) Leader() (id, addr string) {
	a, i := n.r.LeaderWithID()
	return string(i), string(a)
}

// State is "Leader", "Follower", "Candidate" or "Shutdown".
func (n *Raft) State() string { return n.r.State().String() }

// ReadIndex returns an index such that a node that has applied it reflects
// every write committed before the call. Leader only (ErrNotLeader
// otherwise); concurrent calls share one leadership confirmation.
func (n *Raft) ReadIndex(ctx context.Context) (uint64, error) {
	return n.reads.Do(ctx)
}

func (n *Raft) leaderReadIndex() (uint64, error) {
	if n.r.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	n.mu.Lock()
	term, marker := n.markerTerm, n.markerIndex
	n.mu.Unlock()
	if term != n.r.CurrentTerm() {
		return 0, ErrNotLeader // marker not yet applied in this term
	}
	idx := n.r.CommitIndex()
	if err := n.r.VerifyLeader().Error(); err != nil {
		return 0, ErrNotLeader
	}
	return max(idx, marker), nil
}

// LastContact is when a follower last heard from the leader (now, on the leader).
func (n *Raft) LastContact() time.Time {
	if n.r.State() == raft.Leader {
		return time.Now()
	}
	return n.r.LastContact()
}

// AppliedIndex is the last index Raft has handed to the FSM (the FSM may
// still be applying it).
func (n *Raft) AppliedIndex() uint64 { return n.r.AppliedIndex() }

// CommitIndex is the latest index this node knows to be committed.
func (n *Raft) CommitIndex() uint64 { return n.r.CommitIndex() }

// Server is a member of the Raft configuration.
type Server struct {
	ID      string
	Address string
	Voter   bool
}

// Servers returns the current Raft configuration.
func (n *Raft) Servers() ([]Server, error) {
	f := n.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddVoter adds (or re-addresses) a voting member. Leader only. Adding a
// member already present with the same address is a no-op.
func (n *Raft) AddVoter(ctx context.Context, id, addr string) error {
	servers, err := n.Servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID == id && s.Address == addr && s.Voter {
			return nil
		}
	}
	return n.r.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx)).Error()
}

// RemoveServer removes a member. Leader only. Removing an absent member is a no-op.
func (n *Raft) RemoveServer(ctx context.Context, id string) error {
	servers, err := n.Servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID == id {
			return n.r.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)).Error()
		}
	}
	return nil
}

// Stats exposes hashicorp/raft's counters for metrics and debugging.
func (n *Raft) Stats() map[string]string { return n.r.Stats() }

// Close shuts Raft down and closes the log store. Safe to call twice.
func (n *Raft) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		n.cancel()
		err = n.r.Shutdown().Error()
		n.wg.Wait()
		if c, ok := n.transport.(io.Closer); ok {
			c.Close()
		}
		if cerr := n.logs.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 10 * time.Second
}
