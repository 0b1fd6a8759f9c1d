package contract

import (
	"testing"

	"github.com/tandemdb/tandem"
)

// indexView is a View that only knows its applied index.
type indexView struct {
	View
	index uint64
}

func (v indexView) AppliedIndex() uint64 { return v.index }

func putOp(key, js string) []tandem.Op {
	return []tandem.Op{{Op: tandem.OpUpsert, Table: "acct", Key: key, Record: []byte(js)}}
}

func openAt(o *overlay, index uint64) *overlayView {
	v := o.openView()
	v.setView(indexView{index: index})
	return v
}

func submitOK(t *testing.T, o *overlay, v *overlayView, ops []tandem.Op) uint64 {
	t.Helper()
	token, stale, err := o.submit(v.seen, v.index, ops, func() error { return nil })
	if err != nil || stale {
		t.Fatalf("submit: stale %v, err %v", stale, err)
	}
	return token
}

// TestOverlayKeepsAppliedWritesForOlderViews: a view opened before a
// write's entry was applied must still read that write from the overlay
// (its snapshot lacks it); otherwise the execution reads the old record
// unnoticed and fails a condition at apply, which on a hot record repeats
// until the call answers 409.
func TestOverlayKeepsAppliedWritesForOlderViews(t *testing.T) {
	o := newOverlay()
	writer := openAt(&o, 5)
	token := submitOK(t, &o, writer, putOp("a", `{"id":"a","n":1}`))
	writer.close()

	old := openAt(&o, 5) // opened before entry 6 applied
	o.settle(token, putOp("a", `{"id":"a","n":1}`), 6)

	js, _, ok := old.pending("acct", "a")
	if !ok || string(js) != `{"id":"a","n":1}` {
		t.Fatalf("view at 5 after the write applied at 6: pending = %q, %v; want the write", js, ok)
	}
	fresh := openAt(&o, 6)
	if js, _, ok := fresh.pending("acct", "a"); ok {
		t.Fatalf("view at 6 reads the applied write from the overlay (%q), not from its snapshot", js)
	}
	// Both executions may submit: nothing changed since either read.
	submitOK(t, &o, fresh, putOp("b", `{"id":"b"}`))
	submitOK(t, &o, old, putOp("c", `{"id":"c"}`))

	// While the old view is open the write stays; once every open view
	// holds it, it goes.
	if _, ok := o.writes[recordKey{"acct", "a"}]; !ok {
		t.Fatal("applied write purged while a view that lacks it is open")
	}
	old.close()
	if _, ok := o.writes[recordKey{"acct", "a"}]; ok {
		t.Fatal("applied write kept after every open view holds it")
	}
	// The view at 6 read "a" as held by its snapshot: the purge does not
	// make it stale.
	submitOK(t, &o, fresh, putOp("d", `{"id":"d"}`))
	fresh.close()
}

// TestOverlayStaleAndSettle: a write newer than what an execution read
// makes it stale; a write that was not applied leaves the overlay at once.
func TestOverlayStaleAndSettle(t *testing.T) {
	o := newOverlay()
	reader := openAt(&o, 5)
	if _, _, ok := reader.pending("acct", "a"); ok {
		t.Fatal("empty overlay has a write")
	}
	writer := openAt(&o, 5)
	token := submitOK(t, &o, writer, putOp("a", `{"id":"a","n":2}`))
	if _, stale, _ := o.submit(reader.seen, reader.index, putOp("x", `{"id":"x"}`), func() error { return nil }); !stale {
		t.Fatal("execution that read a before another call wrote it is not stale")
	}
	opening := o.openView() // registered, index not known yet: holds everything
	o.settle(token, putOp("a", `{"id":"a","n":2}`), 7)
	writer.close()
	reader.close()
	if _, ok := o.writes[recordKey{"acct", "a"}]; !ok {
		t.Fatal("applied write purged while a view was being opened")
	}
	opening.close()
	if len(o.writes) != 0 || len(o.applied) != 0 {
		t.Fatalf("after every view closed: writes %v, applied %v", o.writes, o.applied)
	}

	w2 := openAt(&o, 7)
	token = submitOK(t, &o, w2, putOp("b", `{"id":"b"}`))
	o.settle(token, putOp("b", `{"id":"b"}`), 0) // rejected or unknown
	if _, ok := o.writes[recordKey{"acct", "b"}]; ok {
		t.Fatal("write that was not applied kept in the overlay")
	}
	w2.close()
}
