package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tandemdb/tandem"
)

// Store is a node's replicated state in Pebble. Apply, Snapshot and Restore
// are called by the Raft state machine, one at a time; every other method
// is safe to call concurrently with them and with each other.
type Store struct {
	opts Options
	log  *slog.Logger

	// mu is held for writing by Close only, and for reading by every
	// method that touches db, so that Close waits for them.
	mu     sync.RWMutex
	closed bool
	db     *pebble.DB

	// applyMu serialises Apply, Snapshot and Restore.
	applyMu sync.Mutex
	// recs is the applier's cache of recently written records; guarded
	// by applyMu.
	recs recordCache
	// restoring is held for writing by Restore and for reading by every
	// reader (Get, Query, Table, Tables, Nodes), so that no read sees the
	// state half replaced: a read waits for a restore to finish.
	restoring sync.RWMutex

	schemas atomic.Pointer[schemaMap]    // replaced after each commit
	state   atomic.Pointer[appliedState] // replaced after each commit
	sec     atomic.Pointer[secState]     // replaced after each commit that changes it
	// nodes is the cluster's node list, replaced after each commit that
	// changes it. Followers look the leader's address up in it for every
	// forwarded batch; reading it from Pebble each time was 9% of a
	// follower's CPU under a write load.
	nodes atomic.Pointer[[]tandem.NodeInfo]
	// contractsVer is the generation of the contracts (store/view.go).
	contractsVer atomic.Pointer[contractsVersion]
	dirty        atomic.Bool

	// snaps are the open snapshots, released by Close.
	snapMu sync.Mutex
	snaps  map[*Snapshot]struct{}

	// sortLimit is MaxSortRows; tests lower it.
	sortLimit int

	// contracts caches contracts' info by name (decodedContract), for
	// View.Contract and Contract: every contract call reads its
	// contract's info, and decoding the version list was 8% of a leader's
	// CPU under a transfer load (reading it from Pebble another 7%).
	contracts sync.Map
}

// schemaMap holds the committed schemas by name. It is never modified once
// published; writers build a new one.
type schemaMap map[string]*tandem.TableSchema

// appliedState is the applied index and the ledger hash at that index.
type appliedState struct {
	index uint64
	hash  [32]byte
}

// Open opens (creating if needed) the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	db, err := pebble.Open(opts.Dir, opts.pebbleOptions(cache))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	s := &Store{opts: opts, log: opts.Logger, db: db, sortLimit: MaxSortRows, snaps: map[*Snapshot]struct{}{}, recs: newRecordCache()}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// load reads the restore marker, applied state and schemas from db into
// memory.
func (s *Store) load() error {
	_, err := get(s.db, []byte(keyRestoring))
	switch {
	case err == nil:
		s.dirty.Store(true)
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("store: read restore marker: %w", err)
	default:
		s.dirty.Store(false)
	}
	st := &appliedState{}
	val, err := get(s.db, []byte(keyApplied))
	switch {
	case err == nil:
		if st, err = decodeApplied(val); err != nil {
			return err
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("store: read applied index: %w", err)
	}
	schemas := schemaMap{}
	err = scanPrefix(s.db, []byte(prefixSchema), func(k, v []byte) error {
		var sc tandem.TableSchema
		if err := json.Unmarshal(v, &sc); err != nil {
			return fmt.Errorf("store: decode schema %q: %w", k, err)
		}
		schemas[sc.Name] = &sc
		return nil
	})
	if err != nil {
		return err
	}
	sec, err := loadSec(s.db)
	if err != nil {
		return err
	}
	nodes, err := readNodes(s.db)
	if err != nil {
		return err
	}
	s.state.Store(st)
	s.schemas.Store(&schemas)
	s.sec.Store(sec)
	s.nodes.Store(&nodes)
	s.bumpContracts(st.index)
	return nil
}

// readNodes reads the node list from r.
func readNodes(r reader) ([]tandem.NodeInfo, error) {
	var out []tandem.NodeInfo
	err := scanPrefix(r, []byte(prefixNode), func(k, v []byte) error {
		var n tandem.NodeInfo
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("store: decode node %q: %w", k, err)
		}
		out = append(out, n)
		return nil
	})
	return out, err
}

// Close closes the store, waiting for running calls (a Snapshot.WriteTo in
// progress included) and releasing open snapshots. It is safe to call
// twice; every other method fails with a CodeUnavailable error afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.snapMu.Lock()
	var err error
	for sn := range s.snaps {
		err = errors.Join(err, sn.snap.Close())
		delete(s.snaps, sn)
	}
	s.snapMu.Unlock()
	// Not needed for safety (Raft replays what the memtable held), but it
	// makes the next start replay nothing.
	if !s.dirty.Load() {
		err = errors.Join(err, s.db.Flush())
	}
	return errors.Join(err, s.db.Close())
}

// Dirty reports that a Restore was interrupted: the state is incomplete and
// must be restored from a snapshot before the store is used.
func (s *Store) Dirty() bool { return s.dirty.Load() }

// AppliedIndex returns the index of the last applied log entry.
func (s *Store) AppliedIndex() uint64 { return s.state.Load().index }

// State returns the applied index and the ledger hash at that index.
func (s *Store) State() (applied uint64, hash [32]byte) {
	st := s.state.Load()
	return st.index, st.hash
}

// Table returns a copy of the schema of table name, or a CodeNotFound error.
func (s *Store) Table(name string) (*tandem.TableSchema, error) {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	sc := (*s.schemas.Load())[name]
	if sc == nil {
		return nil, notFoundTable(name)
	}
	return copySchema(sc), nil
}

// Tables returns copies of every table's schema, sorted by name.
func (s *Store) Tables() []tandem.TableSchema {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	m := *s.schemas.Load()
	out := make([]tandem.TableSchema, 0, len(m))
	for _, sc := range m {
		out = append(out, *copySchema(sc))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns the record of table with the canonical primary key key. Its
// JSON includes "_version" as the first attribute. Errors: CodeNotFound
// (table or record missing), CodeInvalid (malformed key), CodeUnavailable
// (closed).
func (s *Store) Get(table, key string) (tandem.RecordData, error) {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return tandem.RecordData{}, closedError()
	}
	// The database is at least at the published index (commits come
	// before publishing).
	return s.getRecord(s.db, s.state.Load().index, *s.schemas.Load(), table, key)
}

// getRecord reads a record for Get and View.Get: from the applier's cache
// of recent writes if it has the record as of index, else from r, whose
// state is at index or later.
func (s *Store) getRecord(r reader, index uint64, schemas schemaMap, table, key string) (tandem.RecordData, error) {
	sc := schemas[table]
	if sc == nil {
		return tandem.RecordData{}, notFoundTable(table)
	}
	if err := tandem.ValidateKey(sc, key); err != nil {
		return tandem.RecordData{}, err
	}
	k := make([]byte, 0, len(prefixRecord)+len(table)+len(key)+8)
	k = append(append(append(k, prefixRecord...), table...), 0)
	k = appendPK(k, sc, key)
	val, found, cached := s.recs.lookup(k, index)
	if !cached {
		v, closer, err := r.Get(k)
		switch {
		case errors.Is(err, pebble.ErrNotFound):
		case err != nil:
			return tandem.RecordData{}, tandem.WrapError(tandem.CodeInternal, err, "read failed")
		default:
			defer closer.Close()
			val, found = v, true
		}
	}
	if !found {
		return tandem.RecordData{}, tandem.Errorf(tandem.CodeNotFound, "record %q does not exist in table %q", key, table)
	}
	version, js, err := splitStored(val)
	if err != nil {
		return tandem.RecordData{}, tandem.WrapError(tandem.CodeInternal, err, "read failed")
	}
	out := appendVersioned(make([]byte, 0, len(js)+32), version, js)
	return tandem.RecordData{Version: version, JSON: out}, nil
}

// Nodes returns the registered cluster nodes, sorted by ID. It returns nil
// once the store is closed.
func (s *Store) Nodes() []tandem.NodeInfo {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return slices.Clone(*s.nodes.Load())
}

// syncLocked makes every committed batch durable by flushing the memtable
// to a synced table (Pebble runs without a WAL; see pebbleOptions).
// REQUIRES: s.mu held for reading, store open.
func (s *Store) syncLocked() error {
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	return nil
}

func copySchema(sc *tandem.TableSchema) *tandem.TableSchema {
	c := *sc
	if sc.Attributes != nil {
		c.Attributes = make(map[string]tandem.AttrType, len(sc.Attributes))
		for k, v := range sc.Attributes {
			c.Attributes[k] = v
		}
	}
	c.Indexes = slices.Clone(sc.Indexes)
	return &c
}

// encodeApplied and decodeApplied convert the value of keyApplied.
func encodeApplied(st appliedState) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 40), st.index)
	return append(b, st.hash[:]...)
}

func decodeApplied(v []byte) (*appliedState, error) {
	if len(v) != 40 {
		return nil, fmt.Errorf("store: applied state has %d bytes, want 40", len(v))
	}
	st := &appliedState{index: binary.BigEndian.Uint64(v)}
	copy(st.hash[:], v[8:])
	return st, nil
}

// reader is what get and scanPrefix read from: a DB, batch or snapshot.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

var (
	_ reader = (*pebble.DB)(nil)
	_ reader = (*pebble.Batch)(nil)
	_ reader = (*pebble.Snapshot)(nil)
)

// get returns a copy of the value of key.
func get(r reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(v)
	if out == nil {
		out = []byte{}
	}
	return out, closer.Close()
}

// scanPrefix calls fn for every key starting with prefix, in order. The
// slices are valid only during the call.
func scanPrefix(r reader, prefix []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}
