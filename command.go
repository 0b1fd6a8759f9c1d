package tandem

// CommandType names a replicated command.
type CommandType string

// Commands carried in log entries.
const (
	CmdTx          CommandType = "tx"
	CmdCreateTable CommandType = "create_table" // create, or change attributes/indexes
	CmdDropTable   CommandType = "drop_table"
	CmdSetNode     CommandType = "set_node" // register or update a node's addresses
	CmdRemoveNode  CommandType = "remove_node"

	// Security state (security.go), carried as JSON in the log (codec.go).
	CmdCreateUser     CommandType = "create_user"      // User; conflict if it exists
	CmdUpdateUser     CommandType = "update_user"      // User: a non-empty hash or non-nil roles replace
	CmdDeleteUser     CommandType = "delete_user"      // Name; also revokes the user's API tokens
	CmdPutRole        CommandType = "put_role"         // Role; creates or replaces
	CmdDeleteRole     CommandType = "delete_role"      // Name; conflict while a user has it
	CmdCreateAPIToken CommandType = "create_api_token" // APIToken
	CmdRevokeAPIToken CommandType = "revoke_api_token" // Name is the token ID
	CmdAudit          CommandType = "audit"            // Audit entries only
	// CmdDeployContract adds a version of contract Contract.Name and makes
	// it active; CmdActivateContract makes version Version of contract Name
	// active (rollback or roll forward).
	CmdDeployContract   CommandType = "deploy_contract"
	CmdActivateContract CommandType = "activate_contract"
)

// Command is one replicated state change. Exactly one payload field is set,
// according to Type.
type Command struct {
	Type  CommandType  `json:"type"`
	Tx    *Tx          `json:"tx,omitempty"`
	Table *TableSchema `json:"table,omitempty"`
	Name  string       `json:"name,omitempty"` // drop_table, remove_node, delete_join_token, activate_contract
	Node  *NodeInfo    `json:"node,omitempty"`

	User     *User     `json:"user,omitempty"`
	Role     *Role     `json:"role,omitempty"`
	APIToken *APIToken `json:"api_token,omitempty"`
	// Audit entries are written by apply: for CmdAudit always, for the
	// security commands above only when the change succeeds, in the same
	// batch as the change (so no change goes unrecorded). Ignored by the
	// binary-encoded command types.
	Audit     []AuditEntry `json:"audit,omitempty"`
	JoinToken *JoinToken   `json:"join_token,omitempty"` // create_join_token, use_join_token

	Contract *ContractDeploy `json:"contract,omitempty"` // deploy_contract
	Version  uint64          `json:"version,omitempty"`  // activate_contract
}

// Entry is the payload of one Raft log entry: a batch of commands proposed
// together (group commit). Time is assigned by the proposer so that apply is
// deterministic on every node.
type Entry struct {
	Time     int64     `json:"time"` // Unix nanoseconds
	Commands []Command `json:"commands"`
}

// Result is the outcome of one command of an applied entry, in order.
type Result struct {
	Index uint64 // log index of the entry; the version of every record it wrote
	Err   error  // nil, or an *Error saying why the command was rejected
}
