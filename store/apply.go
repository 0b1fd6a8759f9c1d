package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/ledger"
)

// LogEntry is a committed Raft log entry.
type LogEntry struct {
	Index uint64
	// Data is the raw encoded entry (tandem.EncodeEntry); nil for entries
	// without a command (Raft configuration changes).
	Data []byte
	// Entry is Data decoded; nil if Data is nil or failed to decode. If it
	// is nil while Data is not, Apply decodes Data itself.
	Entry *tandem.Entry
}

// Apply applies entries in order in one Pebble batch that also records the
// applied index and ledger hash, and commits it without fsync.
//
// Entries at or below AppliedIndex are skipped and their result is nil, so
// replaying the log after a restart never applies an entry twice. Every
// other entry gets a non-nil slice with one tandem.Result per command (empty
// for entries without commands). A rejected command (its Result.Err is a
// *tandem.Error) leaves no trace; the other commands are unaffected. Every
// entry with Data advances the ledger hash, even if it fails to decode.
//
// The returned error is an I/O failure, or an entry of a newer format than
// this binary reads (tandem.ErrNewerEntryFormat), after which nothing of
// entries has been applied; the caller should stop the node.
func (s *Store) Apply(entries []LogEntry) ([][]tandem.Result, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, closedError()
	}
	if s.dirty.Load() {
		return nil, ErrDirty
	}
	st := *s.state.Load()
	results := make([][]tandem.Result, len(entries))
	var a *applier
	committed := false
	defer func() {
		if a != nil && !committed {
			s.recs.clear() // it holds writes of the batch that was dropped
		}
	}()
	for i := range entries {
		e := &entries[i]
		if e.Index <= st.index {
			continue
		}
		if a == nil {
			a = newApplier(s)
			defer a.close()
		}
		st.index = e.Index
		if e.Data == nil {
			results[i] = []tandem.Result{}
			continue
		}
		st.hash = ledger.Next(st.hash, e.Index, e.Data)
		entry := e.Entry
		if entry == nil {
			var err error
			// Undecodable: no command applies (every node decodes the
			// same bytes the same way). But an entry of a newer format is
			// one this binary cannot read, not garbage: stop rather than
			// diverge from the nodes that apply it.
			if entry, err = tandem.DecodeEntry(e.Data); errors.Is(err, tandem.ErrNewerEntryFormat) {
				return nil, fmt.Errorf("store: entry %d: %w; upgrade this node", e.Index, err)
			}
		}
		if entry == nil {
			results[i] = []tandem.Result{}
			continue
		}
		res, err := a.applyEntry(e.Index, entry)
		if err != nil {
			return nil, fmt.Errorf("store: apply entry %d: %w", e.Index, err)
		}
		results[i] = res
	}
	if a == nil {
		return results, nil
	}
	if err := a.b.Set([]byte(keyApplied), encodeApplied(st), nil); err != nil {
		return nil, err
	}
	if a.contractsChanged {
		s.bumpContracts(math.MaxUint64) // no reader trusts the cache until published
	}
	if err := a.b.Commit(pebble.NoSync); err != nil {
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	committed = true
	if a.contractsChanged {
		s.bumpContracts(st.index)
	}
	if len(a.schemas) > 0 {
		m := maps.Clone(*s.schemas.Load())
		for name, sc := range a.schemas {
			if sc == nil {
				delete(m, name)
			} else {
				m[name] = sc
			}
		}
		s.schemas.Store(&m)
	}
	if a.sec != nil {
		s.sec.Store(a.sec)
	}
	if a.nodesChanged {
		// The batch is committed: a failure to read the list back must
		// not fail the apply. The old list stays until the next change.
		if nodes, err := readNodes(s.db); err != nil {
			s.log.Error("store: read nodes", "err", err)
		} else {
			s.nodes.Store(&nodes)
		}
	}
	s.state.Store(&st)
	return results, nil
}

// applier applies the entries of one Apply call into one indexed batch.
// Commands read through it, so each sees the writes of those before it.
type applier struct {
	s     *Store
	b     *pebble.Batch
	index uint64 // of the entry being applied: the version of what it writes
	time  int64  // of the entry being applied (Unix nanoseconds)
	// eventSeq numbers the events of the entry being applied.
	eventSeq uint32
	// schemas holds the tables created, changed (new schema) or dropped
	// (nil) by this batch; they are published after the commit.
	schemas map[string]*tandem.TableSchema
	tx      txWriter
	// sec is the security state changed by this batch (nil: unchanged),
	// published after the commit (security_apply.go).
	sec *secState
	// auditSeq numbers the audit entries written by the entry.
	auditSeq uint32
	// nodesChanged says the batch set or removed a node: the node list is
	// read again after the commit. contractsChanged says it wrote a
	// contract's info (contractsVersion).
	nodesChanged     bool
	contractsChanged bool
}

func newApplier(s *Store) *applier {
	a := &applier{s: s, b: s.db.NewIndexedBatch(), schemas: map[string]*tandem.TableSchema{}}
	a.tx.a = a
	a.tx.pos = map[string]int{}
	return a
}

func (a *applier) close() { _ = a.b.Close() }

// schema returns the schema of table name as of this point of the batch,
// or nil.
func (a *applier) schema(name string) *tandem.TableSchema {
	if sc, ok := a.schemas[name]; ok {
		return sc
	}
	return (*a.s.schemas.Load())[name]
}

func (a *applier) applyEntry(index uint64, e *tandem.Entry) ([]tandem.Result, error) {
	a.index, a.time, a.auditSeq, a.eventSeq = index, e.Time, 0, 0
	res := make([]tandem.Result, len(e.Commands))
	for i := range e.Commands {
		c := &e.Commands[i]
		err := a.applyCommand(c)
		if err == nil && len(c.Audit) > 0 {
			err = a.writeAudit(c.Audit)
		}
		if err != nil && !isCommandError(err) {
			return nil, err
		}
		res[i] = tandem.Result{Index: index, Err: err}
	}
	return res, nil
}

func (a *applier) applyCommand(c *tandem.Command) error {
	switch c.Type {
	case tandem.CmdTx:
		if c.Tx == nil {
			return tandem.Errorf(tandem.CodeInvalid, "tx command without a transaction")
		}
		return a.applyTx(c.Tx)
	case tandem.CmdCreateTable:
		if c.Table == nil {
			return tandem.Errorf(tandem.CodeInvalid, "create_table command without a table")
		}
		return a.createTable(c.Table)
	case tandem.CmdDropTable:
		return a.dropTable(c.Name)
	case tandem.CmdSetNode:
		if c.Node == nil || c.Node.ID == "" {
			return tandem.Errorf(tandem.CodeInvalid, "set_node command without a node ID")
		}
		v, err := json.Marshal(c.Node)
		if err != nil {
			return err
		}
		a.nodesChanged = true
		return a.b.Set(nodeKey(c.Node.ID), v, nil)
	case tandem.CmdRemoveNode:
		if c.Name == "" {
			return tandem.Errorf(tandem.CodeInvalid, "remove_node command without a node ID")
		}
		if err := a.b.Set(removedNodeKey(c.Name), nil, nil); err != nil { // store/jointokens.go
			return err
		}
		a.nodesChanged = true
		return a.b.Delete(nodeKey(c.Name), nil)
	case tandem.CmdCreateUser, tandem.CmdUpdateUser, tandem.CmdDeleteUser,
		tandem.CmdPutRole, tandem.CmdDeleteRole,
		tandem.CmdCreateAPIToken, tandem.CmdRevokeAPIToken, tandem.CmdAudit:
		return a.applySecurity(c)
	case tandem.CmdCreateJoinToken, tandem.CmdUseJoinToken, tandem.CmdDeleteJoinToken:
		return a.applyJoinToken(c)
	case tandem.CmdDeployContract:
		if c.Contract == nil {
			return tandem.Errorf(tandem.CodeInvalid, "deploy_contract command without a contract")
		}
		return a.deployContract(c.Contract)
	case tandem.CmdActivateContract:
		return a.activateContract(c.Name, c.Version)
	}
	return tandem.Errorf(tandem.CodeInvalid, "unknown command type %q", c.Type)
}
