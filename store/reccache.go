package store

import (
	"strings"
	"sync"
)

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
// snapshot) and when an apply batch is not committed. When it grows past
// maxCached it is simply emptied: it refills with what is hot.
type recordCache struct {
	// mu guards m against readers: the applier (under applyMu, the only
	// writer) reads m without it, and takes it to change m.
	mu sync.RWMutex
	m  map[string]cachedRecord // record key -> its latest write
}

// cachedRecord is a record's latest write: its stored value (nil: the
// record was deleted) at log index at.
type cachedRecord struct {
	val []byte
	at  uint64
}

const maxCached = 1 << 16

// get is the applier's lookup (under applyMu).
func (c *recordCache) get(key []byte) (val []byte, found, cached bool) {
	e, ok := c.m[string(key)]
	return e.val, e.val != nil, ok
}

// lookup is a reader's: the record's stored value as of applied index
// index, if the cache can tell (cached).
func (c *recordCache) lookup(key []byte, index uint64) (val []byte, found, cached bool) {
	c.mu.RLock()
	e, ok := c.m[string(key)]
	c.mu.RUnlock()
	if !ok || e.at > index {
		return nil, false, false
	}
	return e.val, e.val != nil, true
}

// set records the writes of a transaction applied at index at (under
// applyMu). Their values must not change afterwards.
func (c *recordCache) set(writes []pendingWrite, at uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range writes {
		pw := &writes[i]
		if !strings.HasPrefix(string(pw.key), prefixRecord) {
			continue
		}
		switch {
		case c.m == nil:
			c.m = make(map[string]cachedRecord)
		case len(c.m) >= maxCached:
			// clear keeps the map's table: refilling it does not grow it
			// again, step by step (the growth was 3% of a node's CPU under
			// write load).
			clear(c.m)
		}
		val := pw.val
		if pw.del {
			val = nil
		} else if val == nil {
			val = []byte{}
		}
		c.m[string(pw.key)] = cachedRecord{val: val, at: at}
	}
}

// clear empties the cache (under applyMu).
func (c *recordCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
