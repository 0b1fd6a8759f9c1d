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
		rd, err = v.s.getRecord(v.snap, v.index, v.schemas, table, key)
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
		c, err = v.s.cachedContract(v.snap, v.index, name)
		return err
	})
	return c, err
}

// decodedContract is a contract's stored info and its decoding, as of
// generation gen of the contracts (contractsVersion); info nil: no such
// contract.
type decodedContract struct {
	raw  []byte
	info *tandem.ContractInfo
	gen  uint64
}

// contractsVersion says when the contracts last changed: gen counts the
// changes (and restores), at is the applied index of the last one, or
// math.MaxUint64 while one is being committed. A reader whose state is
// at or after at sees the same contracts as every other such reader, so
// a decoding of generation gen serves them all without reading Pebble:
// every contract call reads its contract's info, and that read (a
// Pebble Get through every level, the key is rarely written) was 7% of
// a leader's CPU under a transfer load.
type contractsVersion struct {
	gen, at uint64
}

// bumpContracts starts a new generation of the contracts, as of index at.
func (s *Store) bumpContracts(at uint64) {
	var gen uint64 = 1
	if old := s.contractsVer.Load(); old != nil {
		gen = old.gen + 1
	}
	s.contractsVer.Store(&contractsVersion{gen: gen, at: at})
}

// cachedContract reads a contract's info from r, whose state is at index
// index, through the decoding cache (decodedContract).
func (s *Store) cachedContract(r reader, index uint64, name string) (*tandem.ContractInfo, error) {
	ver := s.contractsVer.Load()
	current := ver.at <= index
	if d, ok := s.contracts.Load(name); ok && current && d.(*decodedContract).gen == ver.gen {
		if info := d.(*decodedContract).info; info != nil {
			return info, nil
		}
		return nil, notFoundContract(name)
	}
	raw, closer, err := r.Get(contractKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		if current && s.contractsVer.Load() == ver {
			s.contracts.Store(name, &decodedContract{gen: ver.gen})
		}
		return nil, notFoundContract(name)
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	var c *tandem.ContractInfo
	if d, ok := s.contracts.Load(name); ok && d.(*decodedContract).info != nil && bytes.Equal(d.(*decodedContract).raw, raw) {
		c = d.(*decodedContract).info
	} else if c, err = decodeContract(name, raw); err != nil {
		return nil, err
	}
	// Remembered for the generation only if nothing changed meanwhile:
	// otherwise what r holds may be older or newer than it.
	if current && s.contractsVer.Load() == ver {
		s.contracts.Store(name, &decodedContract{raw: bytes.Clone(raw), info: c, gen: ver.gen})
	}
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
