package tandem

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Contracts are WebAssembly modules replicated through the log (see
// docs/contracts.md). A deploy carries the module's bytes; the state
// machine assigns versions 1, 2, 3... per name and makes the new version
// active; activate_contract switches the active version (rollback). Both
// are rare, so they travel as JSON commands (codec.go, jsonCommands).

// ContractFunction is one exported function of a contract.
type ContractFunction struct {
	Name string `json:"name"`
	// ReadOnly functions run locally at the caller's read consistency and
	// never propose; a write inside one is an error.
	ReadOnly bool `json:"read_only,omitempty"`
}

// ContractDeploy is the payload of a deploy_contract command. The API
// validates the module (it compiles, exports the SDK's entry points, and
// describes its functions) before proposing it.
type ContractDeploy struct {
	Name      string             `json:"name"`
	Wasm      []byte             `json:"wasm"`
	SHA256    string             `json:"sha256"` // hex; checked again at apply
	Functions []ContractFunction `json:"functions"`
	// Rights is whose permissions the version's functions run with:
	// RightsContract (empty) or RightsCaller.
	Rights string `json:"rights,omitempty"`
}

// Rights modes of a contract version (docs/contracts.md, "Rights"). Under
// contract rights a function reads and writes any table and only
// contract.call gates the call; under caller rights every host operation
// is checked against the caller's permissions like the REST endpoints.
const (
	RightsContract = "" // the default; "contract" is accepted on deploy
	RightsCaller   = "caller"
)

// ParseRights turns the deploy parameter into a stored rights mode: "" and
// "contract" are RightsContract, "caller" is RightsCaller.
func ParseRights(s string) (string, error) {
	switch s {
	case "", "contract":
		return RightsContract, nil
	case RightsCaller:
		return RightsCaller, nil
	}
	return "", Errorf(CodeInvalid, "rights %q is not valid: use rights=contract (the default) or rights=caller", s)
}

// ContractVersion describes one deployed version of a contract.
type ContractVersion struct {
	Version    uint64             `json:"version"`
	SHA256     string             `json:"sha256"`
	Size       int                `json:"size"`
	DeployedAt time.Time          `json:"deployed_at"` // the deploy entry's time
	Index      uint64             `json:"index"`       // the deploy entry's log index
	Functions  []ContractFunction `json:"functions"`
	Rights     string             `json:"rights,omitempty"` // RightsContract (omitted) or RightsCaller
}

// ContractInfo is a contract's replicated metadata: its versions, oldest
// first, and the active one.
type ContractInfo struct {
	Name     string            `json:"name"`
	Active   uint64            `json:"active"`
	Versions []ContractVersion `json:"versions"`
}

// ActiveVersion returns the active version's description, or nil (also
// for a nil c).
func (c *ContractInfo) ActiveVersion() *ContractVersion {
	if c == nil {
		return nil
	}
	for i := range c.Versions {
		if c.Versions[i].Version == c.Active {
			return &c.Versions[i]
		}
	}
	return nil
}

// Function returns the named function of the active version, or nil.
func (c *ContractInfo) Function(name string) *ContractFunction {
	v := c.ActiveVersion()
	if v == nil {
		return nil
	}
	for i := range v.Functions {
		if v.Functions[i].Name == name {
			return &v.Functions[i]
		}
	}
	return nil
}

// Limits of contracts that are part of the replicated format.
const (
	MaxContractSize      = 32 << 20 // wasm bytes of one version
	MaxContractFunctions = 256
	MaxEventsPerTx       = 1000
	MaxEventSize         = 64 << 10 // payload bytes of one event
)

// WasmSHA256 returns the hex SHA-256 of a module, as stored in versions.
func WasmSHA256(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return hex.EncodeToString(sum[:])
}

// ValidateContractDeploy checks the shape of a deploy command.
func ValidateContractDeploy(d *ContractDeploy) error {
	if err := ValidateName("contract", d.Name); err != nil {
		return err
	}
	if len(d.Wasm) == 0 {
		return Errorf(CodeInvalid, "contract %q: the module is empty", d.Name)
	}
	if len(d.Wasm) > MaxContractSize {
		return Errorf(CodeTooLarge, "contract %q: the module has %d bytes; the limit is %d", d.Name, len(d.Wasm), MaxContractSize)
	}
	if d.SHA256 != WasmSHA256(d.Wasm) {
		return Errorf(CodeInvalid, "contract %q: sha256 does not match the module", d.Name)
	}
	if err := ValidateContractFunctions(d.Functions); err != nil {
		return Errorf(CodeInvalid, "contract %q %s", d.Name, ErrorMessage(err))
	}
	if d.Rights != RightsContract && d.Rights != RightsCaller {
		return Errorf(CodeInvalid, "contract %q: rights %q is not valid: it must be empty (contract rights) or %q", d.Name, d.Rights, RightsCaller)
	}
	return nil
}

// ValidateContractFunctions checks a module's function list: 1 to
// MaxContractFunctions functions with valid, distinct names.
func ValidateContractFunctions(fns []ContractFunction) error {
	if len(fns) == 0 || len(fns) > MaxContractFunctions {
		return Errorf(CodeInvalid, "exports %d functions; it must export between 1 and %d", len(fns), MaxContractFunctions)
	}
	seen := make(map[string]bool, len(fns))
	for _, f := range fns {
		if err := ValidateName("function", f.Name); err != nil {
			return Errorf(CodeInvalid, "exports a bad function name: %s", ErrorMessage(err))
		}
		if seen[f.Name] {
			return Errorf(CodeInvalid, "exports function %q twice", f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

// ContractCall is one call of a contract function.
type ContractCall struct {
	Contract string          `json:"contract"`
	Function string          `json:"function"`
	Arg      json.RawMessage `json:"arg,omitempty"` // JSON; empty means none
	// Caller is the identity the contract sees (Context.Caller).
	Caller string `json:"caller"`
}

// CallResult is the outcome of a successful call.
type CallResult struct {
	Result json.RawMessage `json:"result"`
	// Index is the commit index of the call's transaction, or for a
	// read-only call the applied index it read at.
	Index    uint64  `json:"index"`
	Version  uint64  `json:"version"` // the contract version that ran
	Events   []Event `json:"events,omitempty"`
	Attempts int     `json:"attempts"` // executions, > 1 after conflicts
}

// Event is something a contract emitted, recorded with its transaction.
type Event struct {
	Contract string          `json:"contract"`
	Topic    string          `json:"topic"`
	Payload  json.RawMessage `json:"payload"`
}

// StoredEvent is an event as read back: Index is the commit index of its
// transaction's entry and Seq its position among the entry's events, so
// (Index, Seq) orders events the same way on every node.
type StoredEvent struct {
	Index uint64    `json:"index"`
	Seq   uint32    `json:"seq"`
	Time  time.Time `json:"time"`
	Event
}

// QueryHash fingerprints a query's answer by the identity of what it
// returned: each record's primary key (canonical form) and version, the
// count and the next-page cursor. A contract call records it when it runs
// a query, and the state machine recomputes it at apply: a different hash
// means a record appeared, vanished or changed (a phantom), so the call
// must run again.
func QueryHash(sc *TableSchema, res *QueryResult) (string, error) {
	h := sha256.New()
	var n [8]byte
	for _, js := range res.Records {
		rec, err := DecodeRecordVersion(js)
		if err != nil {
			return "", err
		}
		key, err := sc.KeyString(rec.Record[sc.PrimaryKey])
		if err != nil {
			return "", err
		}
		binary.BigEndian.PutUint64(n[:], uint64(len(key)))
		h.Write(n[:])
		h.Write([]byte(key))
		binary.BigEndian.PutUint64(n[:], rec.Version)
		h.Write(n[:])
	}
	if res.Count != nil {
		binary.BigEndian.PutUint64(n[:], uint64(*res.Count))
		h.Write([]byte{'c'})
		h.Write(n[:])
	}
	h.Write([]byte{'n'})
	h.Write([]byte(res.Next))
	return hex.EncodeToString(h.Sum(nil)), nil
}

// RecordHash is the hex SHA-256 of a record's canonical JSON (as the store
// keeps it: encoding/json of the decoded record, keys sorted), for
// CondContent.
func RecordHash(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// VersionedRecord is a record as the store returns it, split into its
// version and its attributes.
type VersionedRecord struct {
	Version uint64
	Record  Record
}

// DecodeRecordVersion decodes a record that carries "_version".
func DecodeRecordVersion(js []byte) (VersionedRecord, error) {
	var v struct {
		Version uint64 `json:"_version"`
	}
	if err := json.Unmarshal(js, &v); err != nil {
		return VersionedRecord{}, Errorf(CodeInvalid, "record is not valid JSON: %v", err)
	}
	rec, err := DecodeRecord(js)
	if err != nil {
		return VersionedRecord{}, err
	}
	return VersionedRecord{Version: v.Version, Record: rec}, nil
}
