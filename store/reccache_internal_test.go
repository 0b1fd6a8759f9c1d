package store

import (
	"bytes"
	"fmt"
	"testing"
)

// The record cache is direct-mapped: these check what that adds to the
// exactness the store tests check (reccache_test.go): a key pushed out of
// its slot, a value too large to keep and the memory bound never leave a
// stale value behind.

func recWrite(key string, val []byte) pendingWrite {
	return pendingWrite{key: []byte(prefixRecord + "t\x00" + key), val: val}
}

// collidingKeys returns two record keys of different names in one slot.
func collidingKeys(t *testing.T, c *recordCache) (a, b pendingWrite) {
	t.Helper()
	a = recWrite("a", []byte("va"))
	want := c.slotOf(a.key)
	for i := 0; i < 1<<22; i++ {
		b = recWrite(fmt.Sprintf("b%d", i), []byte("vb"))
		if c.slotOf(b.key) == want {
			return a, b
		}
	}
	t.Fatal("no colliding key found")
	return
}

// slotOf is the slot key maps to (allocating the table if need be).
func (c *recordCache) slotOf(key []byte) *cachedRecord {
	if c.slots == nil {
		c.slots = make([]cachedRecord, cacheSlots)
	}
	return c.slot(key)
}

func TestRecordCacheSlotTakenByAnotherKey(t *testing.T) {
	c := newRecordCache()
	a, b := collidingKeys(t, &c)
	c.set([]pendingWrite{a}, 10)
	if v, found, cached := c.get(a.key); !cached || !found || string(v) != "va" {
		t.Fatalf("a after its write: %q %v %v", v, found, cached)
	}
	c.set([]pendingWrite{b}, 11)
	if _, _, cached := c.get(a.key); cached {
		t.Fatal("a is still answered from the cache after b took its slot")
	}
	if _, _, cached := c.lookup(a.key, 20); cached {
		t.Fatal("a reader is answered for a after b took its slot")
	}
	if v, found, cached := c.lookup(b.key, 11); !cached || !found || string(v) != "vb" {
		t.Fatalf("b: %q %v %v", v, found, cached)
	}
	if _, _, cached := c.lookup(b.key, 10); cached {
		t.Fatal("a reader at index 10 was answered with b's write at 11")
	}
}

func TestRecordCacheLargeValueDropsTheOldOne(t *testing.T) {
	c := newRecordCache()
	small := recWrite("k", []byte("small"))
	c.set([]pendingWrite{small}, 5)
	large := recWrite("k", bytes.Repeat([]byte("x"), maxCachedValue+1))
	c.set([]pendingWrite{large}, 6)
	if v, _, cached := c.get(large.key); cached {
		t.Fatalf("after a write too large to cache, the cache answers %d bytes", len(v))
	}
	if c.bytes != 0 {
		t.Fatalf("bytes = %d after the only entry left", c.bytes)
	}
	// A deletion is cached whatever the size of what it deleted.
	c.set([]pendingWrite{{key: large.key, del: true}}, 7)
	if _, found, cached := c.get(large.key); !cached || found {
		t.Fatalf("deleted record: found %v, cached %v", found, cached)
	}
}

func TestRecordCacheStaysUnderItsByteBound(t *testing.T) {
	c := newRecordCache()
	val := bytes.Repeat([]byte("v"), maxCachedValue)
	var last pendingWrite
	for i := 0; i < 2*maxCachedBytes/maxCachedValue; i++ {
		last = recWrite(fmt.Sprintf("k%d", i), val)
		c.set([]pendingWrite{last}, uint64(i+1))
		if c.bytes > maxCachedBytes {
			t.Fatalf("after %d writes the cache holds %d bytes, over %d", i+1, c.bytes, maxCachedBytes)
		}
	}
	held := 0
	for i := range c.slots {
		if e := &c.slots[i]; e.key != nil {
			held += len(e.key) + len(e.val)
		}
	}
	if held != c.bytes {
		t.Fatalf("slots hold %d bytes, the count says %d", held, c.bytes)
	}
	if c.bytes == 0 {
		t.Fatal("the cache is empty after the writes")
	}
}

func TestRecordCacheIgnoresOtherKeys(t *testing.T) {
	c := newRecordCache()
	c.set([]pendingWrite{{key: []byte(prefixSchema + "t"), val: []byte("{}")}}, 1)
	if c.bytes != 0 {
		t.Fatalf("a schema write was cached (%d bytes)", c.bytes)
	}
}
