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
//
// A write stays in the overlay a little after its entry is applied: an
// execution whose view (a snapshot) was opened before that entry was
// applied does not see the write in the view, and must still see it here,
// or it would read the record's older state unnoticed and its transaction
// would fail a condition at apply (on a hot record, again and again, up to
// MaxAttempts). So an applied write is kept, marked with its commit index,
// until no open view is older than that index; views at or after it read
// the record from the view itself.
type overlay struct {
	mu     sync.Mutex
	writes map[recordKey]pendingWrite
	next   uint64 // owner tokens
	// views are the open overlay views and the applied index each
	// includes (0 while it is being opened: hold everything).
	views map[*overlayView]uint64
	// applied lists writes marked applied, oldest first, for purge.
	applied []appliedWrite
}

type pendingWrite struct {
	js    []byte // canonical record JSON; nil for a delete
	hash  string
	owner uint64
	// index is the commit index of the write's entry once it is applied
	// (0 while in flight).
	index uint64
}

// visibleOwner is the owner a view at viewIndex records for w: 0 if w is
// applied and the view holds it (the view's own state is then current).
func (w pendingWrite) visibleOwner(viewIndex uint64) uint64 {
	if w.index != 0 && w.index <= viewIndex {
		return 0
	}
	return w.owner
}

type appliedWrite struct {
	key   recordKey
	owner uint64
	index uint64
}

func newOverlay() overlay {
	return overlay{writes: map[recordKey]pendingWrite{}, views: map[*overlayView]uint64{}}
}

// submit checks that no record the execution read (seen: the overlay
// owner it saw per record, 0 for none or for one its view, at viewIndex,
// already held) has been written by another call since, and if not runs
// propose and records the writes, all under the lock so that the proposal
// order is the overlay order. stale means the execution must run again;
// propose's error is returned as is.
func (o *overlay) submit(seen map[recordKey]uint64, viewIndex uint64, ops []tandem.Op, propose func() error) (token uint64, stale bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, owner := range seen {
		if o.writes[k].visibleOwner(viewIndex) != owner {
			return 0, true, nil
		}
	}
	if err := propose(); err != nil {
		return 0, false, err
	}
	return o.addLocked(ops), false, nil
}

// addLocked records the writes of an outcome being proposed and returns
// the token that settle takes.
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

// settle ends a transaction's time in flight. index is the commit index of
// its entry if its writes were applied; 0 if they were not (rejected) or
// its fate is unknown: its writes are then forgotten at once, unless a
// later in-flight transaction wrote the same record.
func (o *overlay) settle(token uint64, ops []tandem.Op, index uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, op := range ops {
		k := recordKey{op.Table, op.Key}
		w, ok := o.writes[k]
		if !ok || w.owner != token {
			continue
		}
		if index == 0 {
			delete(o.writes, k)
			continue
		}
		w.index = index
		o.writes[k] = w
		o.applied = append(o.applied, appliedWrite{key: k, owner: token, index: index})
	}
	o.purgeLocked()
}

// purgeLocked forgets applied writes that every open view includes (views
// opened later include them too: they were applied before).
// REQUIRES: o.mu held.
func (o *overlay) purgeLocked() {
	oldest := uint64(1<<64 - 1)
	for _, idx := range o.views {
		oldest = min(oldest, idx)
	}
	n := 0
	for _, a := range o.applied {
		if a.index > oldest {
			break
		}
		if w, ok := o.writes[a.key]; ok && w.owner == a.owner {
			delete(o.writes, a.key)
		}
		n++
	}
	o.applied = o.applied[n:]
}

// openView registers an execution's view before it is opened (so that no
// write it may need is purged meanwhile); setIndex then records the index
// the view includes, and close unregisters it.
func (o *overlay) openView() *overlayView {
	v := &overlayView{o: o, seen: map[recordKey]uint64{}}
	o.mu.Lock()
	o.views[v] = 0
	o.mu.Unlock()
	return v
}

// overlayView is a view of the committed state with the overlay on top.
// It remembers which overlay write (if any) each read saw, for submit.
// One execution uses it at a time.
type overlayView struct {
	View
	o     *overlay
	index uint64 // the applied index View includes
	seen  map[recordKey]uint64
}

func (v *overlayView) setView(view View) {
	v.View = view
	v.o.mu.Lock()
	v.index = view.AppliedIndex()
	v.o.views[v] = v.index
	v.o.mu.Unlock()
}

func (v *overlayView) close() {
	v.o.mu.Lock()
	delete(v.o.views, v)
	v.o.purgeLocked()
	v.o.mu.Unlock()
}

func (v *overlayView) pending(table, key string) ([]byte, string, bool) {
	v.o.mu.Lock()
	defer v.o.mu.Unlock()
	k := recordKey{table, key}
	w, ok := v.o.writes[k]
	owner := w.visibleOwner(v.index)
	if _, again := v.seen[k]; !again {
		v.seen[k] = owner
	}
	if ok && owner == 0 {
		return nil, "", false // applied, and the view holds it
	}
	return w.js, w.hash, ok
}
