package store

import "strings"

// recordCache holds the stored value of recently written records, as the
// applier last wrote them, so that a transaction's conditions and reads at
// apply find hot records without a Pebble lookup. Under token transfers
// those lookups (the version conditions of every call, through the
// indexed batch, mostly seeking the memtable's skiplist) were 15% of a
// follower's CPU.
//
// It is exact, not a guess: only the applier writes records, under
// applyMu, and every write goes through it (txWriter.flush). It is
// cleared wherever records change otherwise (a dropped table, a restored
// snapshot) and when an apply batch is not committed. When it grows past
// maxCached it is simply emptied: it refills with what is hot.
type recordCache struct {
	m map[string][]byte // record key -> stored value; nil: deleted
}

const maxCached = 1 << 16

func (c *recordCache) get(key []byte) (val []byte, found, cached bool) {
	v, ok := c.m[string(key)]
	return v, v != nil, ok
}

// set records a write of the current apply batch. val must not change
// afterwards.
func (c *recordCache) set(key []byte, val []byte, del bool) {
	if !strings.HasPrefix(string(key), prefixRecord) {
		return
	}
	switch {
	case c.m == nil:
		c.m = make(map[string][]byte)
	case len(c.m) >= maxCached:
		// clear keeps the map's table: refilling it does not grow it
		// again, step by step (the growth was 3% of a node's CPU under
		// write load).
		clear(c.m)
	}
	if del {
		val = nil
	} else if val == nil {
		val = []byte{}
	}
	c.m[string(key)] = val
}

func (c *recordCache) clear() { c.m = nil }
