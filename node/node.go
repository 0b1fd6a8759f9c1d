package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/api"
	"github.com/tandemdb/tandem/coalesce"
	"github.com/tandemdb/tandem/consensus"
	"github.com/tandemdb/tandem/contract"
	"github.com/tandemdb/tandem/fsm"
	"github.com/tandemdb/tandem/pki"
	"github.com/tandemdb/tandem/proposer"
	"github.com/tandemdb/tandem/store"
)

// Options configure a node. Zero values get the documented defaults.
type Options struct {
	ID       string // required; stable across restarts
	DataDir  string // required
	HTTPAddr string // required: listen address of the API
	RaftAddr string // required: listen and advertise address for Raft
	// AdvertiseHTTP is the API address other nodes use (default HTTPAddr).
	AdvertiseHTTP string
	// Bootstrap forms a new cluster of one if DataDir holds no Raft state.
	Bootstrap bool
	// Join lists HTTP addresses of existing members; the node asks them to
	// add it until one succeeds. Ignored once the node is a member.
	Join []string

	LogStore          string        // "wal" (default) or "bolt"
	HeartbeatTimeout  time.Duration // default consensus.DefaultHeartbeatTimeout
	ElectionTimeout   time.Duration // default consensus.DefaultElectionTimeout
	SnapshotThreshold uint64        // default 8192 entries
	SnapshotInterval  time.Duration // default 30s
	TrailingLogs      uint64        // default 10240 entries
	MaxBody           int64         // default 4 MiB
	CacheSize         int64         // Pebble block cache bytes (default 256 MiB)
	Pprof             bool          // serve /debug/pprof/

	Security SecurityOptions // auth.go
	// Transport security (identity.go, docs/security.md).
	// Insecure serves plain HTTP and plain TCP Raft without certificates.
	Insecure bool
	// JoinToken (`tandem token create`) lets a node without certificates
	// enroll through a Join address before it starts.
	JoinToken string
	// TLSCertFile and TLSKeyFile are a certificate for API clients in
	// place of the node certificate (peers still get the node certificate).
	TLSCertFile, TLSKeyFile string
	// Contracts are the contract runtime's limits (contract.Options
	// documents the defaults); its Logger defaults to the node's.
	Contracts contract.Options
	Logger    *slog.Logger
}

// Node is a running Tandem node.
type Node struct {
	opts     Options
	log      *slog.Logger
	store    *store.Store
	waiter   *fsm.Waiter
	raft     *consensus.Raft
	proposer *proposer.Proposer
	wasm     *contract.Runtime
	engine   *contract.Engine
	api      *api.Server
	audit    *api.AuditLog // nil in insecure mode
	http     *http.Server
	listener net.Listener
	peers    *http.Client
	pmux     *peerMux        // multiplexed connections for forwarded batches and read indexes
	reads    *coalesce.Group // follower-side read index batching
	ident    *pki.Identity   // nil with Insecure
	scheme   string          // of calls to other nodes: https, or http with Insecure
	// caughtUp is set once, after start, when this node has applied a read
	// index confirmed by a leader. Before that its store may be behind what
	// it served before a crash (the store keeps no WAL), so local reads
	// would go back in time.
	caughtUp atomic.Bool

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Open starts a node.
func Open(opts Options) (_ *Node, err error) {
	if opts.ID == "" || opts.DataDir == "" || opts.HTTPAddr == "" || opts.RaftAddr == "" {
		return nil, errors.New("node: ID, DataDir, HTTPAddr and RaftAddr are required")
	}
	if err := tandem.ValidateName("node", opts.ID); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		opts:   opts,
		log:    opts.Logger.With("node", opts.ID),
		waiter: fsm.NewWaiter(),
		ctx:    ctx,
		cancel: cancel,
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()

	n.store, err = store.Open(store.Options{Dir: filepath.Join(opts.DataDir, "store"), Logger: n.log, CacheSize: opts.CacheSize})
	if err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	machine := fsm.New(n.store, n.waiter, n.log)

	n.listener, err = net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("node: listen on %s: %w", opts.HTTPAddr, err)
	}
	if n.opts.AdvertiseHTTP == "" {
		n.opts.AdvertiseHTTP = n.listener.Addr().String()
	}
	if err := n.openSecurity(); err != nil {
		return nil, err
	}
	n.peers = newPeerClient(n.peerTLS())
	n.pmux = newPeerMux(n.scheme, n.peers, opts.ID)

	marker, err := tandem.EncodeEntry(&tandem.Entry{})
	if err != nil {
		return nil, err
	}
	copts := consensus.Options{
		ID:                opts.ID,
		Dir:               filepath.Join(opts.DataDir, "raft"),
		RaftAddr:          opts.RaftAddr,
		FSM:               machine,
		Bootstrap:         opts.Bootstrap,
		LogStore:          opts.LogStore,
		RestoreOnStart:    n.store.Dirty(), // an interrupted restore is redone from the local snapshot
		AppliedIndex:      n.store.AppliedIndex(),
		HeartbeatTimeout:  opts.HeartbeatTimeout,
		ElectionTimeout:   opts.ElectionTimeout,
		SnapshotThreshold: opts.SnapshotThreshold,
		SnapshotInterval:  opts.SnapshotInterval,
		TrailingLogs:      opts.TrailingLogs,
		MarkerEntry:       marker,
		Logger:            n.log,
	}
	if n.raft, err = n.openRaft(copts); err != nil {
		return nil, err
	}
	n.reads = &coalesce.Group{Fetch: n.fetchLeaderReadIndex}
	n.proposer = proposer.New(proposer.Options{Log: n.raft, Forwarder: n, Logger: n.log})
	n.proposer.Start()

	wopts := opts.Contracts
	if wopts.Logger == nil {
		wopts.Logger = n.log
	}
	if wopts.Rights == nil {
		wopts.Rights = n.contractRights
	}
	if wopts.OnDenied == nil {
		wopts.OnDenied = n.auditContractDenial
	}
	if n.wasm, err = contract.New(ctx, wopts); err != nil {
		return nil, fmt.Errorf("node: contract runtime: %w", err)
	}
	n.engine = contract.NewEngine(contract.EngineOptions{
		Runtime: n.wasm,
		View: func() (contract.ClosingView, error) {
			v, err := n.store.View()
			if err != nil {
				return nil, err
			}
			return v, nil
		},
		Propose:     n.proposer.Propose,
		WaitApplied: n.WaitApplied,
		ReadIndex:   n.ReadIndex,
		IsLeader:    n.raft.IsLeader,
		Submit:      n.proposer.Submit,
		Forward:     n.forwardCall,
	})

	sec, err := n.newSecurity()
	if err != nil {
		return nil, fmt.Errorf("node: security: %w", err)
	}
	n.api = api.New(api.Options{
		Security:  sec,
		Reader:    n.store,
		Proposer:  proposerAdapter{n.proposer},
		Cluster:   n,
		Contracts: contractsAdapter{n.engine, n.store},
		MaxBody:   opts.MaxBody,
		Metrics:   newMetrics(n),
		Pprof:     opts.Pprof,
		Logger:    n.log,
		PKI:       n.apiPKI(),
		Insecure:  opts.Insecure,
	})
	n.http = &http.Server{
		Handler:           n.api,
		ReadHeaderTimeout: 10 * time.Second, // slowloris
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	n.http.RegisterOnShutdown(n.api.Close)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.serveHTTP(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()

	n.wg.Add(1)
	go n.membershipLoop()
	n.wg.Add(1)
	go n.catchUp()
	if opts.Bootstrap && sec != nil && opts.Security.AdminPassword != "" {
		n.wg.Add(1)
		go n.bootstrapAdmin()
	}
	if n.ident != nil {
		n.wg.Add(1)
		go n.renewLoop()
	}
	n.wg.Add(1)
	go n.warmContracts()
	n.log.Info("node started", "http", n.opts.AdvertiseHTTP, "raft", opts.RaftAddr, "applied_index", n.store.AppliedIndex())
	return n, nil
}

// HTTPAddr is the address the API listens on.
func (n *Node) HTTPAddr() string { return n.listener.Addr().String() }

// Info is this node's identity as registered in the cluster.
func (n *Node) Info() tandem.NodeInfo {
	return tandem.NodeInfo{ID: n.opts.ID, HTTPAddr: n.opts.AdvertiseHTTP, RaftAddr: n.opts.RaftAddr}
}

// Close stops the node. Safe to call twice.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		if n.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			n.http.Shutdown(ctx)
			cancel()
		} else if n.listener != nil {
			n.listener.Close()
		}
		if n.audit != nil {
			n.audit.Close()
		}
		if n.proposer != nil {
			n.proposer.Close()
		}
		if n.pmux != nil {
			n.pmux.close() // after the proposer: its forwarded batches are done
		}
		if n.raft != nil {
			if err := n.raft.Close(); err != nil {
				n.log.Warn("raft shutdown", "err", err)
			}
		}
		n.wg.Wait()
		if n.wasm != nil {
			n.wasm.Close(context.Background())
		}
		if n.store != nil {
			n.store.Close()
		}
	})
	return nil
}

// proposerAdapter gives the API the proposer's interface in API terms.
type proposerAdapter struct{ p *proposer.Proposer }

func (a proposerAdapter) Propose(ctx context.Context, cmd tandem.Command) (tandem.Result, error) {
	return a.p.Propose(ctx, cmd)
}

func (a proposerAdapter) ProposeLocal(ctx context.Context, from string, cmds []tandem.Command) ([]tandem.Result, error) {
	outs, err := a.p.ProposeForwarded(ctx, from, cmds)
	if err != nil {
		return nil, err
	}
	res := make([]tandem.Result, len(outs))
	for i, o := range outs {
		res[i] = o.Result
		if o.Err != nil {
			res[i].Err = o.Err
		}
	}
	return res, nil
}

// contractsAdapter gives the API contracts: the engine runs them, the
// store holds their metadata and events.
type contractsAdapter struct {
	*contract.Engine
	s *store.Store
}

func (a contractsAdapter) List() ([]tandem.ContractInfo, error)          { return a.s.Contracts() }
func (a contractsAdapter) Get(name string) (*tandem.ContractInfo, error) { return a.s.Contract(name) }
func (a contractsAdapter) Events(after uint64, limit int) ([]tandem.StoredEvent, error) {
	return a.s.Events(after, limit)
}

// warmContracts compiles newly deployed contract versions in the
// background, so that the first call on this node does not wait for the
// compiler (a Go module takes a second or more), and closes the modules
// of versions no longer active once they have been idle a while
// (contract.Runtime.Retain): each holds its compiled code and up to a
// pool of instances' memory.
func (n *Node) warmContracts() {
	defer n.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var (
		seen   uint64          // applied index of the last look
		active map[string]bool // code hashes of the active versions then
		ticks  int
	)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		ticks++
		if idx := n.store.AppliedIndex(); idx != seen {
			infos, err := n.store.Contracts()
			if err != nil {
				continue
			}
			seen = idx
			if err := n.wasm.Preload(n.ctx, infos, n.store.ContractCode); err != nil {
				n.log.Warn("precompile contracts", "err", err)
			}
			active = map[string]bool{}
			for _, info := range infos {
				if v := info.ActiveVersion(); v != nil {
					active[v.SHA256] = true
				}
			}
		}
		if active != nil && ticks%20 == 0 { // every 5 s
			if n.wasm.Retain(n.ctx, active) > 0 {
				// A module's compiled code is unmapped by a finalizer and
				// its instances' memories are Go heap: on a quiet node
				// nothing else would collect them for minutes (tens of
				// MiB per module). Rare: only after a deploy or rollback.
				debug.FreeOSMemory()
			}
		}
	}
}
