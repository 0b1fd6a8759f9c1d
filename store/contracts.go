package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tandemdb/tandem"
)

func contractKey(name string) []byte { return []byte(prefixContract + name) }

func wasmKey(name string, version uint64) []byte {
	b := make([]byte, 0, len(prefixWasm)+len(name)+9)
	b = append(append(append(b, prefixWasm...), name...), 0)
	return binary.BigEndian.AppendUint64(b, version)
}

func eventKey(index uint64, seq uint32) []byte {
	b := make([]byte, 0, len(prefixEvent)+12)
	b = binary.BigEndian.AppendUint64(append(b, prefixEvent...), index)
	return binary.BigEndian.AppendUint32(b, seq)
}

func notFoundContract(name string) error {
	return tandem.Errorf(tandem.CodeNotFound, "contract %q does not exist", name)
}

// Contracts returns the metadata of every contract, sorted by name.
func (s *Store) Contracts() ([]tandem.ContractInfo, error) {
	out := []tandem.ContractInfo{}
	err := s.view(func() error {
		return scanPrefix(s.db, []byte(prefixContract), func(k, v []byte) error {
			var c tandem.ContractInfo
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("store: decode contract %q: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// view runs read against the open store, holding off Restore and Close,
// and classifies its errors: *tandem.Error as they are, anything else as
// an internal read failure.
func (s *Store) view(read func() error) error {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return closedError()
	}
	err := read()
	var te *tandem.Error
	if err != nil && !errors.As(err, &te) {
		return tandem.WrapError(tandem.CodeInternal, err, "read failed")
	}
	return err
}

// Contract returns the metadata of contract name, or a CodeNotFound error.
// The returned info may be shared with other callers: it must not be
// modified.
func (s *Store) Contract(name string) (*tandem.ContractInfo, error) {
	var c *tandem.ContractInfo
	err := s.view(func() (err error) {
		// The database is at least at the published index (commits come
		// before publishing).
		c, err = s.cachedContract(s.db, s.state.Load().index, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ContractCode returns the wasm bytes of a version of contract name, or a
// CodeNotFound error.
func (s *Store) ContractCode(name string, version uint64) ([]byte, error) {
	var code []byte
	err := s.view(func() (err error) {
		code, err = getCode(s.db, name, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return code, nil
}

func getCode(r reader, name string, version uint64) ([]byte, error) {
	code, err := get(r, wasmKey(name, version))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, tandem.Errorf(tandem.CodeNotFound, "contract %q has no version %d", name, version)
	}
	return code, err
}

// Events returns up to limit events committed after index after, in commit
// order. A page holds the events of whole entries, so that the next one can
// start after the last index it holds: when limit falls inside an entry,
// the page ends before that entry, unless it is the page's only entry (an
// entry with more than limit events is returned whole).
func (s *Store) Events(after uint64, limit int) ([]tandem.StoredEvent, error) {
	out := []tandem.StoredEvent{}
	if after == ^uint64(0) {
		return out, nil
	}
	err := s.view(func() error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: eventKey(after+1, 0), UpperBound: prefixEnd([]byte(prefixEvent))})
		if err != nil {
			return err
		}
		defer it.Close()
		for valid := it.First(); valid; valid = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			var ev tandem.StoredEvent
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("store: decode event: %w", err)
			}
			if len(out) >= limit {
				last := out[len(out)-1].Index
				if ev.Index != last {
					return nil // the page ends with a whole entry
				}
				if out[0].Index != last {
					out = out[:sort.Search(len(out), func(i int) bool { return out[i].Index >= last })]
					return nil
				}
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readContract returns the metadata of contract name from r, or nil.
func readContract(r reader, name string) (*tandem.ContractInfo, error) {
	v, err := get(r, contractKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeContract(name, v)
}

// decodeContract decodes a contract's stored metadata.
func decodeContract(name string, v []byte) (*tandem.ContractInfo, error) {
	var c tandem.ContractInfo
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("store: decode contract %q: %w", name, err)
	}
	return &c, nil
}

func (a *applier) writeContract(c *tandem.ContractInfo) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	a.contractsChanged = true
	return a.b.Set(contractKey(c.Name), v, nil)
}

// deployContract applies a deploy_contract command.
func (a *applier) deployContract(d *tandem.ContractDeploy) error {
	if err := tandem.ValidateContractDeploy(d); err != nil {
		return err
	}
	c, err := readContract(a.b, d.Name)
	if err != nil {
		return err
	}
	if c == nil {
		c = &tandem.ContractInfo{Name: d.Name}
	}
	v := tandem.ContractVersion{
		Version:    uint64(len(c.Versions)) + 1,
		SHA256:     d.SHA256,
		Size:       len(d.Wasm),
		DeployedAt: time.Unix(0, a.time).UTC(),
		Index:      a.index,
		Functions:  d.Functions,
		Rights:     d.Rights,
	}
	c.Versions = append(c.Versions, v)
	c.Active = v.Version
	if err := a.b.Set(wasmKey(d.Name, v.Version), d.Wasm, nil); err != nil {
		return err
	}
	return a.writeContract(c)
}

// activateContract applies an activate_contract command.
func (a *applier) activateContract(name string, version uint64) error {
	c, err := readContract(a.b, name)
	if err != nil {
		return err
	}
	if c == nil {
		return notFoundContract(name)
	}
	if version == 0 || version > uint64(len(c.Versions)) {
		return tandem.Errorf(tandem.CodeNotFound, "contract %q has no version %d (it has 1 to %d)", name, version, len(c.Versions))
	}
	if c.Active == version {
		return nil
	}
	c.Active = version
	return a.writeContract(c)
}

// checkContractCondition checks a CondContract condition.
func (a *applier) checkContractCondition(i int, c tandem.Condition) error {
	var info *tandem.ContractInfo
	var err error
	if a.contractsChanged {
		info, err = readContract(a.b, c.Key)
	} else {
		// No contract written by this batch yet: the committed state's
		// info is the batch's, served from the decoding cache as calls
		// read it. Reading it through the batch was 8% of the nodes' CPU
		// under a transfer load, every node applying every call.
		info, err = a.s.cachedContract(a.s.db, a.s.state.Load().index, c.Key)
		if tandem.ErrorCode(err) == tandem.CodeNotFound {
			info, err = nil, nil
		}
	}
	if err != nil {
		return err
	}
	var active uint64
	if info != nil {
		active = info.Active
	}
	if active == c.Version {
		return nil
	}
	return tandem.Errorf(tandem.CodeConflict, "condition %d failed: %s: the active version is %d", i, c.String(), active)
}

// checkQueryCondition checks a CondQuery condition by re-running the query
// against the batch (the transaction's own writes are not applied yet:
// conditions come first).
func (a *applier) checkQueryCondition(i int, c tandem.Condition) error {
	sc := a.schema(c.Table)
	if sc == nil {
		return tandem.Errorf(tandem.CodeNotFound, "condition %d: table %q does not exist", i, c.Table)
	}
	ex, err := newExecution(sc, c.Query)
	if err != nil {
		return tandem.Errorf(tandem.CodeInvalid, "condition %d: %s", i, tandem.ErrorMessage(err))
	}
	ex.sortLimit = a.s.sortLimit
	ex.snap = a.b
	res, err := ex.run()
	if err != nil {
		if isCommandError(err) {
			return tandem.Errorf(tandem.CodeConflict, "condition %d failed: the query no longer runs: %s", i, tandem.ErrorMessage(err))
		}
		return err
	}
	h, err := tandem.QueryHash(sc, res)
	if err != nil {
		return tandem.WrapError(tandem.CodeInternal, err, "hash query result")
	}
	if h != c.Hash {
		return tandem.Errorf(tandem.CodeConflict, "condition %d failed: %s: records were added, removed or changed", i, c.String())
	}
	return nil
}

// writeEvents stores the events of an applied tx.
func (a *applier) writeEvents(evs []tandem.Event) error {
	for _, ev := range evs {
		v, err := json.Marshal(tandem.StoredEvent{Index: a.index, Seq: a.eventSeq, Time: time.Unix(0, a.time).UTC(), Event: ev})
		if err != nil {
			return err
		}
		if err := a.b.Set(eventKey(a.index, a.eventSeq), v, nil); err != nil {
			return err
		}
		a.eventSeq++
	}
	return nil
}
