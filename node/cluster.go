package node

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/api"
	"github.com/tandemdb/tandem/consensus"
)

var _ api.Cluster = (*Node)(nil)

// ReadIndex implements api.Cluster: on the leader a confirmed commit index,
// on a follower the leader's, fetched once per batch of concurrent readers.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if n.raft.IsLeader() {
		idx, err := n.raft.ReadIndex(ctx)
		if err == nil {
			return idx, nil
		}
		if !errors.Is(err, consensus.ErrNotLeader) {
			return 0, err
		}
	}
	return n.reads.Do(ctx)
}

func (n *Node) fetchLeaderReadIndex() (uint64, error) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	for {
		if n.raft.IsLeader() {
			idx, err := n.raft.ReadIndex(ctx)
			if err == nil || !errors.Is(err, consensus.ErrNotLeader) {
				return idx, err
			}
		} else {
			addr, err := n.leaderHTTP(ctx)
			if err != nil && !errors.Is(err, errSelfLeader) {
				return 0, err
			}
			var out struct {
				Index uint64 `json:"index"`
			}
			if err == nil { // else this node now leads: confirm the read itself
				err = n.callMux(ctx, http.MethodGet, addr, "/internal/v1/readindex", nil, &out)
			}
			if err == nil {
				return out.Index, nil
			}
			if tandem.ErrorCode(err) != tandem.CodeUnavailable {
				var pe *peerError
				if !errors.As(err, &pe) {
					return 0, err
				}
			}
		}
		// Leadership is moving: try again shortly.
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return 0, tandem.Errorf(tandem.CodeUnavailable, "no leader could confirm the read")
		}
	}
}

// LeaderReadIndex implements api.Cluster.
func (n *Node) LeaderReadIndex(ctx context.Context) (uint64, error) {
	idx, err := n.raft.ReadIndex(ctx)
	if errors.Is(err, consensus.ErrNotLeader) {
		return 0, tandem.Errorf(tandem.CodeUnavailable, "node %s is not the leader", n.opts.ID)
	}
	return idx, err
}

// WaitApplied implements api.Cluster.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	return n.waiter.Wait(ctx, index)
}

// Self implements api.Cluster.
func (n *Node) Self() tandem.NodeStatus {
	applied, hash := n.store.State()
	st := tandem.NodeStatus{
		NodeInfo:     n.Info(),
		Leader:       n.raft.IsLeader(),
		State:        n.raft.State(),
		AppliedIndex: applied,
		LedgerHash:   hex.EncodeToString(hash[:]),
	}
	if servers, err := n.raft.Servers(); err == nil {
		for _, s := range servers {
			if s.ID == n.opts.ID {
				st.Voter = s.Voter
			}
		}
	}
	return st
}

// Status implements api.Cluster: every member of the Raft configuration,
// each asked for its own applied index and ledger hash.
func (n *Node) Status(ctx context.Context) (string, []tandem.NodeStatus, error) {
	servers, err := n.raft.Servers()
	if err != nil {
		return "", nil, tandem.WrapError(tandem.CodeUnavailable, err, "cannot read the cluster configuration: %v", err)
	}
	leader, _ := n.raft.Leader()
	infos := map[string]tandem.NodeInfo{}
	for _, info := range n.store.Nodes() {
		infos[info.ID] = info
	}
	out := make([]tandem.NodeStatus, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		if s.ID == n.opts.ID {
			out[i] = n.Self()
			continue
		}
		info, ok := infos[s.ID]
		if !ok {
			info = tandem.NodeInfo{ID: s.ID, RaftAddr: s.Address}
		}
		out[i] = tandem.NodeStatus{NodeInfo: info, Voter: s.Voter, State: "unreachable"}
		if info.HTTPAddr == "" {
			out[i].Error = "address not registered yet"
			continue
		}
		wg.Add(1)
		go func(i int, addr string) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			var st tandem.NodeStatus
			if err := n.call(cctx, http.MethodGet, addr, "/internal/v1/status", nil, &st); err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].State, out[i].AppliedIndex, out[i].LedgerHash = st.State, st.AppliedIndex, st.LedgerHash
		}(i, info.HTTPAddr)
	}
	wg.Wait()
	for i := range out {
		out[i].Leader = out[i].ID == leader
		out[i].Voter = servers[i].Voter
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return leader, out, nil
}

// passToLeader sends a leader-only request to the leader, unless another
// node already passed it to us (then we answer "retry": two nodes that each
// believe the other leads must not bounce a request between them).
func (n *Node) passToLeader(ctx context.Context, forwarded bool, method, path string, body any) error {
	if forwarded {
		return tandem.Errorf(tandem.CodeUnavailable, "node %s is not the leader; retry", n.opts.ID)
	}
	addr, err := n.leaderHTTP(ctx)
	if err != nil {
		return err
	}
	return n.call(ctx, method, addr, path, body, nil)
}

// Join implements api.Cluster.
func (n *Node) Join(ctx context.Context, info tandem.NodeInfo, forwarded bool) error {
	if !n.raft.IsLeader() {
		return n.passToLeader(ctx, forwarded, http.MethodPost, "/v1/cluster/join", info)
	}
	for _, other := range n.store.Nodes() {
		if other.ID != info.ID && (other.RaftAddr == info.RaftAddr || other.HTTPAddr == info.HTTPAddr) {
			return tandem.Errorf(tandem.CodeConflict, "node %s already uses address %s / %s", other.ID, other.HTTPAddr, other.RaftAddr)
		}
	}
	if err := n.raft.AddVoter(ctx, info.ID, info.RaftAddr); err != nil {
		return tandem.WrapError(tandem.CodeUnavailable, err, "add voter %s: %v", info.ID, err)
	}
	res, err := n.proposer.Propose(ctx, tandem.Command{Type: tandem.CmdSetNode, Node: &info})
	if err == nil {
		err = res.Err
	}
	return err
}

// Remove implements api.Cluster.
func (n *Node) Remove(ctx context.Context, id string, forwarded bool) error {
	if !n.raft.IsLeader() {
		return n.passToLeader(ctx, forwarded, http.MethodDelete, "/v1/cluster/nodes/"+url.PathEscape(id), nil)
	}
	servers, err := n.raft.Servers()
	if err != nil {
		return tandem.WrapError(tandem.CodeUnavailable, err, "read configuration: %v", err)
	}
	found := false
	for _, s := range servers {
		found = found || s.ID == id
	}
	known := false
	for _, info := range n.store.Nodes() {
		known = known || info.ID == id
	}
	if !found && !known {
		return tandem.Errorf(tandem.CodeNotFound, "node %q is not a member", id)
	}
	// Forget the address first: once the leader removes itself it can no
	// longer propose.
	res, err := n.proposer.Propose(ctx, tandem.Command{Type: tandem.CmdRemoveNode, Name: id})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return err
	}
	if err := n.raft.RemoveServer(ctx, id); err != nil {
		return tandem.WrapError(tandem.CodeUnavailable, err, "remove server %s: %v", id, err)
	}
	return nil
}

// catchUp waits, after start, until this node has applied a read index
// confirmed by the leader, and then lets it serve local reads.
func (n *Node) catchUp() {
	defer n.wg.Done()
	for n.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		idx, err := n.ReadIndex(ctx)
		if err == nil {
			err = n.waiter.Wait(ctx, idx)
		}
		cancel()
		if err == nil {
			n.caughtUp.Store(true)
			n.log.Info("caught up with the cluster; serving local reads", "index", idx)
			return
		}
		sleepCtx(n.ctx, 100*time.Millisecond)
	}
}

// LocalReadable implements api.Cluster: local and min_index reads wait
// until the node has caught up after its start, so that no read goes back
// in time on one node across a restart.
func (n *Node) LocalReadable() error {
	if n.caughtUp.Load() {
		return nil
	}
	return tandem.Errorf(tandem.CodeUnavailable, "node %s has just started and is catching up with the cluster; local reads resume once it has (linearizable reads work now if a leader is reachable)", n.opts.ID)
}

// Ready implements api.Cluster: a leader is known, this node has applied
// what it knows to be committed, and a leader has confirmed its term.
func (n *Node) Ready() error {
	if err := n.LocalReadable(); err != nil {
		return err
	}
	id, _ := n.raft.Leader()
	if id == "" {
		return tandem.Errorf(tandem.CodeUnavailable, "no leader is known")
	}
	if n.raft.IsLeader() {
		if _, err := n.raft.ReadIndex(context.Background()); err != nil {
			return tandem.Errorf(tandem.CodeUnavailable, "leader has not confirmed its term yet")
		}
	}
	if applied, commit := n.raft.AppliedIndex(), n.raft.CommitIndex(); applied < commit {
		return tandem.Errorf(tandem.CodeUnavailable, "catching up: applied %d of %d committed entries", applied, commit)
	}
	return nil
}

// membershipLoop joins the cluster (if asked to) and keeps this node's
// addresses registered in replicated state.
//
// Only a node that never was a member joins: once it has Raft state, or a
// join succeeded, or it saw itself a member, a node that is not a member
// was removed and must not add itself back (with --join still on its
// command line it would, within a second, also after a restart).
func (n *Node) membershipLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	mayJoin := len(n.opts.Join) > 0
	for {
		member := n.isMember()
		if mayJoin && (member || n.hasRaftState()) {
			mayJoin = false
		}
		if mayJoin {
			mayJoin = !n.tryJoin()
		} else if member && !n.registered() {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			info := n.Info()
			if res, err := n.proposer.Propose(ctx, tandem.Command{Type: tandem.CmdSetNode, Node: &info}); err == nil && res.Err == nil {
				n.log.Info("registered node addresses", "index", res.Index)
			}
			cancel()
		}
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (n *Node) isMember() bool { return n.IsMember(n.opts.ID) }

// hasRaftState reports whether this node has a Raft log or snapshot: it
// bootstrapped, or a leader replicated to it because it was added. (Not
// the store's applied index: the store keeps no WAL, and a crash can take
// it back to its last flush, even to empty.)
func (n *Node) hasRaftState() bool {
	st := n.raft.Stats()
	return st["last_log_index"] != "0" || st["last_snapshot_index"] != "0"
}

func (n *Node) registered() bool {
	for _, info := range n.store.Nodes() {
		if info.ID == n.opts.ID {
			return info == n.Info()
		}
	}
	return false
}

// tryJoin asks each --join address in turn to add this node, and reports
// whether one did.
func (n *Node) tryJoin() bool {
	for _, addr := range n.opts.Join {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := n.call(ctx, http.MethodPost, hostOf(addr), "/v1/cluster/join", n.Info(), nil)
		cancel()
		if err == nil {
			n.log.Info("joined cluster", "via", addr)
			return true
		}
		n.log.Warn("join failed; will retry", "via", addr, "err", err)
	}
	return false
}

// hostOf strips a scheme from an address given by a user.
func hostOf(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Host
	}
	return addr
}
