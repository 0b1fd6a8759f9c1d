package store

import (
	"bytes"
	"errors"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tandemdb/tandem"
)

// View is a consistent read-only view of the store at one moment: every
// read through it sees the same applied state, however many entries are
// applied meanwhile. Contract calls read through a View, so a function
// never sees half of a concurrent transaction. It is safe for concurrent
// use; Close it when done (the store's Close also releases it).
type View struct {
	s       *Store
	snap    *pebble.Snapshot
	schemas schemaMap
	index   uint64
	once    sync.Once
}

// View captures the current state.
func (s *Store) View() (*View, error) {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, closedError()
	}
	// Apply publishes schemas and the applied index after its batch
	// commits, so reading them first means the snapshot holds at least
	// that state; a table created in between is simply not visible yet.
	schemas, index := *s.schemas.Load(), s.state.Load().index
	return &View{s: s, snap: s.db.NewSnapshot(), schemas: schemas, index: index}, nil
}

// AppliedIndex is an applied index the view includes (it may include a
// few more entries).
func (v *View) AppliedIndex() uint64 { return v.index }

// Table returns a copy of table name's schema, or a CodeNotFound error.
func (v *View) Table(name string) (*tandem.TableSchema, error) {
	sc := v.schemas[name]
	if sc == nil {
		return nil, notFoundTable(name)
	}
	return copySchema(sc), nil
}

// Get is Store.Get against the view.
func (v *View) Get(table, key string) (rd tandem.RecordData, err error) {
	err = v.s.view(func() error {
		rd, err = getRecord(v.snap, v.schemas, table, key)
		return err
	})
	return rd, err
}

// Query is Store.Query against the view.
func (v *View) Query(q *tandem.Query) (res *tandem.QueryResult, err error) {
	err = v.s.view(func() error {
		res, err = v.s.queryIn(v.snap, v.schemas, q)
		return err
	})
	return res, err
}

// Contract is Store.Contract against the view.
//
// The returned info may be shared with other callers: it must not be
// modified.
func (v *View) Contract(name string) (c *tandem.ContractInfo, err error) {
	err = v.s.view(func() error {
		c, err = v.s.cachedContract(v.snap, name)
		return err
	})
	return c, err
}

// decodedContract is a contract's stored info and its decoding.
type decodedContract struct {
	raw  []byte
	info *tandem.ContractInfo
}

// cachedContract reads a contract's info through the decoding cache: the
// stored bytes are compared with those last decoded, which costs far less
// than decoding them again.
func (s *Store) cachedContract(r reader, name string) (*tandem.ContractInfo, error) {
	raw, closer, err := r.Get(contractKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, notFoundContract(name)
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	if d, ok := s.contracts.Load(name); ok && bytes.Equal(d.(*decodedContract).raw, raw) {
		return d.(*decodedContract).info, nil
	}
	c, err := decodeContract(name, raw)
	if err != nil {
		return nil, err
	}
	s.contracts.Store(name, &decodedContract{raw: bytes.Clone(raw), info: c})
	return c, nil
}

// Close releases the view. Safe to call twice.
func (v *View) Close() error {
	var err error
	v.once.Do(func() {
		v.s.mu.RLock()
		defer v.s.mu.RUnlock()
		if !v.s.closed {
			err = v.snap.Close()
		}
	})
	return err
}

// ContractCode is Store.ContractCode against the view.
func (v *View) ContractCode(name string, version uint64) (code []byte, err error) {
	err = v.s.view(func() error {
		code, err = getCode(v.snap, name, version)
		return err
	})
	return code, err
}
