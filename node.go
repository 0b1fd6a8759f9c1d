package tandem

// NodeInfo describes a cluster member as kept in replicated state, so that
// every node can find every other node's HTTP address (to forward writes to
// the leader, and to gather cluster status).
type NodeInfo struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
}

// NodeStatus is a node's view of itself, as reported by GET /v1/cluster.
type NodeStatus struct {
	NodeInfo
	Voter        bool   `json:"voter"`
	Leader       bool   `json:"leader"`
	State        string `json:"state,omitempty"` // Leader, Follower, Candidate, or "unreachable"
	AppliedIndex uint64 `json:"applied_index"`
	LedgerHash   string `json:"ledger_hash,omitempty"` // hex SHA-256 at AppliedIndex
	Error        string `json:"error,omitempty"`
}

// Consistency is the read consistency a client asks for.
type Consistency string

// Read consistency levels. See docs/api.md for the guarantees of each.
const (
	// ReadLinearizable confirms with the leader that this node has applied
	// everything committed before the read arrived. The default.
	ReadLinearizable Consistency = "linearizable"
	// ReadLocal reads this node's state as it is, possibly stale.
	ReadLocal Consistency = "local"
)
