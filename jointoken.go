package tandem

// Join token commands (carried as JSON in the log; see codec.go).
const (
	// CmdCreateJoinToken stores a new join token (Command.JoinToken: ID,
	// SecretHash, Expires).
	CmdCreateJoinToken CommandType = "create_join_token"
	// CmdUseJoinToken consumes a token for a joining node
	// (Command.JoinToken: ID, UsedBy). It is rejected, on every node alike,
	// if the token does not exist, was used, or expired before the entry's
	// time.
	CmdUseJoinToken CommandType = "use_join_token"
	// CmdDeleteJoinToken removes a token (Command.Name: its ID).
	CmdDeleteJoinToken CommandType = "delete_join_token"
)

// JoinToken is the replicated state of a join token. The secret itself is
// never stored: only its SHA-256 (pki.HashSecret).
type JoinToken struct {
	ID         string `json:"id"`
	SecretHash string `json:"secret_hash,omitempty"`
	Created    int64  `json:"created,omitempty"` // Unix nanoseconds
	Expires    int64  `json:"expires"`           // Unix nanoseconds
	UsedBy     string `json:"used_by,omitempty"` // node ID that consumed it
	UsedAt     int64  `json:"used_at,omitempty"` // Unix nanoseconds
}

// EnrollRequest is what a joining node sends to obtain its certificate
// (POST /v1/cluster/enroll), over TLS pinned to the cluster CA.
type EnrollRequest struct {
	Token string   `json:"token"` // the text form printed by `tandem token create`
	CSR   string   `json:"csr"`   // PEM certificate request
	Node  NodeInfo `json:"node"`  // ID and addresses; the addresses become SANs
}

// EnrollResponse carries the joining node's certificate and the cluster
// CA. CAKey is the CA's private key (PEM), sent to every joining voter so
// that any voter can admit nodes (docs/security.md).
type EnrollResponse struct {
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
	CAKey       string `json:"ca_key,omitempty"`
}

// CreatedJoinToken is the answer to POST /v1/cluster/tokens: the token's
// text, shown once, and its expiry.
type CreatedJoinToken struct {
	ID      string `json:"id"`
	Token   string `json:"token"`
	Expires int64  `json:"expires"` // Unix nanoseconds
}
