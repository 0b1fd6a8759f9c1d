package contract

import (
	"sync"

	"github.com/tandemdb/tandem"
)

// pendingReader is implemented by views that know of writes still in
// flight (proposed, not applied). A read of such a write sees its content
// and becomes a content condition (its version is not known yet).
type pendingReader interface {
	// pending returns the in-flight state of a record: its canonical JSON
	// (nil if it is being deleted) and content hash; ok is false if no
	// write to it is in flight.
	pending(table, key string) (js []byte, hash string, ok bool)
}

// overlay holds the writes of the leader's in-flight contract
// transactions, newest per record. It is safe for concurrent use.
type overlay struct {
	mu     sync.Mutex
	writes map[recordKey]pendingWrite
	next   uint64 // owner tokens
}

type pendingWrite struct {
	js    []byte // canonical record JSON; nil for a delete
	hash  string
	owner uint64
}

// submit checks that no record the execution read (seen: the overlay
// owner it saw per record, 0 for none) has been written by another
// in-flight call since, and if so runs propose and records the writes, all
// under the lock so that the proposal order is the overlay order. stale
// means the execution must run again; propose's error is returned as is.
func (o *overlay) submit(seen map[recordKey]uint64, ops []tandem.Op, propose func() error) (token uint64, stale bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, owner := range seen {
		if o.writes[k].owner != owner {
			return 0, true, nil
		}
	}
	if err := propose(); err != nil {
		return 0, false, err
	}
	return o.addLocked(ops), false, nil
}

// addLocked records the writes of an outcome being proposed and returns
// the token that remove takes.
// REQUIRES: o.mu held.
func (o *overlay) addLocked(ops []tandem.Op) uint64 {
	o.next++
	for _, op := range ops {
		w := pendingWrite{owner: o.next}
		if op.Op != tandem.OpDelete {
			w.js, w.hash = op.Record, tandem.RecordHash(op.Record)
		}
		o.writes[recordKey{op.Table, op.Key}] = w
	}
	return o.next
}

// remove forgets the writes of a transaction that has applied or failed,
// unless a later in-flight transaction wrote the same record.
func (o *overlay) remove(token uint64, ops []tandem.Op) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, op := range ops {
		k := recordKey{op.Table, op.Key}
		if w, ok := o.writes[k]; ok && w.owner == token {
			delete(o.writes, k)
		}
	}
}

// overlayView is a view of the committed state with the overlay on top.
// It remembers which in-flight write (if any) each read saw, for submit.
// One execution uses it at a time.
type overlayView struct {
	View
	o    *overlay
	seen map[recordKey]uint64
}

func (v *overlayView) pending(table, key string) ([]byte, string, bool) {
	v.o.mu.Lock()
	defer v.o.mu.Unlock()
	k := recordKey{table, key}
	w, ok := v.o.writes[k]
	if _, again := v.seen[k]; !again {
		v.seen[k] = w.owner
	}
	return w.js, w.hash, ok
}
