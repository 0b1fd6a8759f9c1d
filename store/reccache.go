package store

import (
	"bytes"
	"hash/maphash"
	"sync"
)

// recordKeyPrefix is prefixRecord as bytes, for the cache's test of every
// write's key.
var recordKeyPrefix = []byte(prefixRecord)

// recordCache holds the stored value of recently written records, as the
// applier last wrote them, so that a transaction's conditions and reads at
// apply find hot records without a Pebble lookup. Under token transfers
// those lookups (the version conditions of every call, through the
// indexed batch, mostly seeking the memtable's skiplist) were 15% of a
// follower's CPU.
//
// Readers use it too (Get, View.Get): a contract call reads every record
// it touches, and those Pebble lookups (with the stack growth their deep
// frames cost a fresh goroutine) were 15% of a leader's CPU under
// transfers. A reader at applied index i may take an entry written at or
// before i: the entry is the latest write of its key (any later write
// would have replaced it), so it is what a Pebble read at i would find.
// Entries of the batch being applied carry indexes above every published
// one, so no reader sees a write before its commit.
//
// It is exact, not a guess: only the applier writes records, under
// applyMu, and every write goes through it (txWriter.flush). It is
// cleared wherever records change otherwise (a dropped table, a restored
// snapshot) and when an apply batch is not committed.
//
// It is direct-mapped: a fixed table of slots, each key in the one slot
// its hash picks, a write replacing whatever the slot held. An earlier
// map keyed by record key cost 4.6 µs of node CPU per replicated write
// (three nodes, a string allocated and a map grown per write; 5% of the
// nodes' CPU under the write benchmark, docs/benchmarks.md); a slot costs
// a hash and a store. A key pushed out by another is simply not cached:
// a miss reads Pebble. Large values are not cached, and past
// maxCachedBytes the table is emptied, so the memory it holds stays
// bounded whatever the record size; it refills with what is hot.
type recordCache struct {
	// mu guards slots against readers: the applier (under applyMu, the
	// only writer) reads them without it, and takes it to change them.
	mu    sync.RWMutex
	seed  maphash.Seed
	slots []cachedRecord // nil until the first write; cacheSlots long
	bytes int            // of the keys and values the slots hold
}

// cachedRecord is a record's latest write: its stored value (nil: the
// record was deleted) at log index at. A slot with a nil key is empty.
type cachedRecord struct {
	key []byte
	val []byte
	at  uint64
}

const (
	cacheSlots     = 1 << 16 // a power of two
	maxCachedValue = 16 << 10
	maxCachedBytes = 64 << 20
)

func newRecordCache() recordCache { return recordCache{seed: maphash.MakeSeed()} }

func (c *recordCache) slot(key []byte) *cachedRecord {
	return &c.slots[maphash.Bytes(c.seed, key)&(cacheSlots-1)]
}

// get is the applier's lookup (under applyMu).
func (c *recordCache) get(key []byte) (val []byte, found, cached bool) {
	if c.slots == nil {
		return nil, false, false
	}
	e := c.slot(key)
	if e.key == nil || !bytes.Equal(e.key, key) {
		return nil, false, false
	}
	return e.val, e.val != nil, true
}

// lookup is a reader's: the record's stored value as of applied index
// index, if the cache can tell (cached).
func (c *recordCache) lookup(key []byte, index uint64) (val []byte, found, cached bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.slots == nil {
		return nil, false, false
	}
	e := c.slot(key)
	if e.key == nil || e.at > index || !bytes.Equal(e.key, key) {
		return nil, false, false
	}
	return e.val, e.val != nil, true
}

// set records the writes of a transaction applied at index at (under
// applyMu). Their keys and values must not change afterwards: the cache
// keeps them.
func (c *recordCache) set(writes []pendingWrite, at uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range writes {
		pw := &writes[i]
		if !bytes.HasPrefix(pw.key, recordKeyPrefix) {
			continue
		}
		if c.slots == nil {
			c.slots = make([]cachedRecord, cacheSlots)
		}
		e := c.slot(pw.key)
		if len(pw.val) > maxCachedValue && !pw.del {
			// Not cached, and no older value of the key may stay.
			if e.key != nil && bytes.Equal(e.key, pw.key) {
				c.bytes -= len(e.key) + len(e.val)
				*e = cachedRecord{}
			}
			continue
		}
		val := pw.val
		if pw.del {
			val = nil
		} else if val == nil {
			val = []byte{}
		}
		c.bytes += len(pw.key) + len(val) - len(e.key) - len(e.val)
		*e = cachedRecord{key: pw.key, val: val, at: at}
		if c.bytes > maxCachedBytes {
			clear(c.slots)
			c.bytes = 0
		}
	}
}

// clear empties the cache (under applyMu).
func (c *recordCache) clear() {
	c.mu.Lock()
	c.slots = nil
	c.bytes = 0
	c.mu.Unlock()
}
