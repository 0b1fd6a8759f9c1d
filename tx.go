package tandem

import (
	"encoding/json"
	"fmt"
)

// OpKind names a write operation.
type OpKind string

// Operations of a transaction.
const (
	OpInsert OpKind = "insert" // create; fails with CodeConflict if the key exists
	OpUpsert OpKind = "upsert" // create or replace the whole record
	OpPatch  OpKind = "patch"  // merge attributes into an existing record; null removes one
	OpDelete OpKind = "delete" // remove; fails with CodeNotFound if absent
)

// Op is one write of a transaction. Key is the canonical primary key; for
// insert and upsert it may be left empty and is then taken from Record.
type Op struct {
	Op     OpKind          `json:"op"`
	Table  string          `json:"table"`
	Key    string          `json:"key,omitempty"`
	Record json.RawMessage `json:"record,omitempty"`
	// IfVersion, when set, makes this op conditional on the record's
	// current version (0 means "must not exist"). It is how If-Match is
	// carried; a mismatch fails with CodePreconditionFailed.
	IfVersion *uint64 `json:"if_version,omitempty"`
}

// CondKind names a transaction condition.
type CondKind string

// Conditions checked before any operation of a transaction is applied.
const (
	CondExists    CondKind = "exists"
	CondNotExists CondKind = "not_exists"
	CondVersion   CondKind = "version" // record exists and its version equals Version
	// CondContract holds when contract Key's active version is Version: a
	// contract call is valid only against the code that computed it.
	CondContract CondKind = "contract"
	// CondQuery holds when Query, run now, returns the records (keys and
	// versions) whose QueryHash is Hash: it catches phantoms in a contract
	// call's bounded queries.
	CondQuery CondKind = "query"
	// CondContent holds when the record exists and its stored JSON has the
	// SHA-256 Hash (RecordHash): a contract that read a write still in
	// flight cannot know the version it will get, only its content.
	CondContent CondKind = "content"
)

// Condition is a check on one record, evaluated against the state just
// before the transaction's operations.
type Condition struct {
	Kind    CondKind `json:"if"`
	Table   string   `json:"table,omitempty"` // empty for CondContract
	Key     string   `json:"key,omitempty"`   // the contract name for CondContract
	Version uint64   `json:"version,omitempty"`
	Query   *Query   `json:"query,omitempty"` // CondQuery only
	Hash    string   `json:"hash,omitempty"`  // CondQuery and CondContent
}

func (c Condition) String() string {
	switch c.Kind {
	case CondVersion:
		return fmt.Sprintf("%s/%s has version %d", c.Table, c.Key, c.Version)
	case CondNotExists:
		return fmt.Sprintf("%s/%s does not exist", c.Table, c.Key)
	case CondContract:
		return fmt.Sprintf("contract %s has active version %d", c.Key, c.Version)
	case CondQuery:
		return fmt.Sprintf("a query on %s returns the same records", c.Table)
	case CondContent:
		return fmt.Sprintf("%s/%s has the content it was read with", c.Table, c.Key)
	default:
		return fmt.Sprintf("%s/%s exists", c.Table, c.Key)
	}
}

// Tx is a transaction: all of Ops apply, in order, if every Condition holds
// and every Op succeeds; otherwise none does.
type Tx struct {
	Conditions []Condition `json:"conditions,omitempty"`
	Ops        []Op        `json:"ops"`
	// Events are recorded with the transaction if it applies (contract
	// calls emit them); the store keys them by entry index and sequence.
	Events []Event `json:"events,omitempty"`
}

// Limits on a transaction, checked before it is proposed.
const (
	MaxTxOps        = 1000
	MaxTxConditions = 1000
)

// Validate checks the shape of a transaction without looking at any table.
func (tx *Tx) Validate() error {
	if len(tx.Ops) == 0 && len(tx.Events) == 0 && !tx.hasContractCondition() {
		return Errorf(CodeInvalid, "transaction has no ops")
	}
	if len(tx.Events) > MaxEventsPerTx {
		return Errorf(CodeInvalid, "transaction has %d events; the limit is %d", len(tx.Events), MaxEventsPerTx)
	}
	for i, ev := range tx.Events {
		if err := ValidateName("contract", ev.Contract); err != nil {
			return Errorf(CodeInvalid, "event %d: %s", i, ErrorMessage(err))
		}
		if ev.Topic == "" || len(ev.Topic) > 256 {
			return Errorf(CodeInvalid, "event %d: topic must have 1 to 256 bytes", i)
		}
		if len(ev.Payload) > MaxEventSize || !json.Valid(ev.Payload) {
			return Errorf(CodeInvalid, "event %d: payload must be valid JSON of at most %d bytes", i, MaxEventSize)
		}
	}
	if len(tx.Ops) > MaxTxOps {
		return Errorf(CodeInvalid, "transaction has %d ops; the limit is %d", len(tx.Ops), MaxTxOps)
	}
	if len(tx.Conditions) > MaxTxConditions {
		return Errorf(CodeInvalid, "transaction has %d conditions; the limit is %d", len(tx.Conditions), MaxTxConditions)
	}
	for i, c := range tx.Conditions {
		if c.Kind == CondContract {
			if err := ValidateName("contract", c.Key); err != nil {
				return Errorf(CodeInvalid, "condition %d: %s", i, ErrorMessage(err))
			}
			continue
		}
		if c.Kind == CondQuery {
			if c.Query == nil || c.Query.Table != c.Table || c.Hash == "" {
				return Errorf(CodeInvalid, "condition %d: a query condition needs a query on its table and a hash", i)
			}
		}
		if err := ValidateName("table", c.Table); err != nil {
			return Errorf(CodeInvalid, "condition %d: %s", i, ErrorMessage(err))
		}
		switch c.Kind {
		case CondExists, CondNotExists, CondVersion, CondQuery:
		case CondContent:
			if c.Hash == "" {
				return Errorf(CodeInvalid, "condition %d: a content condition needs a hash", i)
			}
		default:
			return Errorf(CodeInvalid, "condition %d: unknown kind %q (want exists, not_exists or version)", i, c.Kind)
		}
		if c.Key == "" && c.Kind != CondQuery {
			return Errorf(CodeInvalid, "condition %d: key is empty", i)
		}
		if c.Kind == CondVersion && c.Version == 0 {
			return Errorf(CodeInvalid, "condition %d: version condition needs a version above 0", i)
		}
	}
	for i, op := range tx.Ops {
		if err := ValidateName("table", op.Table); err != nil {
			return Errorf(CodeInvalid, "op %d: %s", i, ErrorMessage(err))
		}
		switch op.Op {
		case OpInsert, OpUpsert:
			if len(op.Record) == 0 {
				return Errorf(CodeInvalid, "op %d (%s): record is missing", i, op.Op)
			}
		case OpPatch:
			if len(op.Record) == 0 {
				return Errorf(CodeInvalid, "op %d (patch): record is missing", i)
			}
			if op.Key == "" {
				return Errorf(CodeInvalid, "op %d (patch): key is missing", i)
			}
		case OpDelete:
			if op.Key == "" {
				return Errorf(CodeInvalid, "op %d (delete): key is missing", i)
			}
		default:
			return Errorf(CodeInvalid, "op %d: unknown op %q (want insert, upsert, patch or delete)", i, op.Op)
		}
	}
	return nil
}

func (tx *Tx) hasContractCondition() bool {
	for _, c := range tx.Conditions {
		if c.Kind == CondContract {
			return true
		}
	}
	return false
}
