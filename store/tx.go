package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tandemdb/tandem"
)

// txWriter holds the writes of the transaction being applied. Reads see
// them first, then the batch, then the database. They reach the batch only
// when the whole transaction succeeded.
type txWriter struct {
	a      *applier
	pos    map[string]int // key -> index in writes
	writes []pendingWrite // in first-write order, so flushing is deterministic
}

type pendingWrite struct {
	key, val []byte
	del      bool
}

func (w *txWriter) reset() {
	clear(w.pos)
	clear(w.writes)
	w.writes = w.writes[:0]
}

func (w *txWriter) get(key []byte) ([]byte, bool, error) {
	if i, ok := w.pos[string(key)]; ok {
		pw := &w.writes[i]
		return pw.val, !pw.del, nil
	}
	if v, found, ok := w.a.s.recs.get(key); ok {
		return v, found, nil
	}
	v, err := get(w.a.b, key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (w *txWriter) put(key, val []byte, del bool) {
	if i, ok := w.pos[string(key)]; ok {
		w.writes[i].val, w.writes[i].del = val, del
		return
	}
	w.pos[string(key)] = len(w.writes)
	w.writes = append(w.writes, pendingWrite{key: key, val: val, del: del})
}

func (w *txWriter) flush() error {
	for i := range w.writes {
		pw := &w.writes[i]
		var err error
		if pw.del {
			err = w.a.b.Delete(pw.key, nil)
		} else {
			err = w.a.b.Set(pw.key, pw.val, nil)
		}
		if err != nil {
			return err
		}
	}
	w.a.s.recs.set(w.writes, w.a.index)
	return nil
}

// stored is a record as read inside a transaction.
type stored struct {
	version uint64
	json    []byte
}

// getRecord reads the record at key (a record key).
func (w *txWriter) getRecord(key []byte) (*stored, error) {
	v, ok, err := w.get(key)
	if err != nil || !ok {
		return nil, err
	}
	version, js, err := splitStored(v)
	if err != nil {
		return nil, err
	}
	return &stored{version: version, json: js}, nil
}

// applyTx checks the conditions of tx, then applies its ops; a rejected tx
// leaves no writes behind.
func (a *applier) applyTx(tx *tandem.Tx) error {
	if err := tx.Validate(); err != nil {
		return err
	}
	w := &a.tx
	w.reset()
	for i, c := range tx.Conditions {
		var err error
		switch c.Kind {
		case tandem.CondContract:
			err = a.checkContractCondition(i, c)
		case tandem.CondQuery:
			err = a.checkQueryCondition(i, c)
		default:
			err = w.checkCondition(i, c)
		}
		if err != nil {
			return err
		}
	}
	for i := range tx.Ops {
		if err := w.applyOp(&tx.Ops[i]); err != nil {
			if len(tx.Ops) > 1 && isCommandError(err) {
				var e *tandem.Error
				errors.As(err, &e)
				return &tandem.Error{Code: e.Code, Message: fmt.Sprintf("op %d: %s", i, e.Message), Err: e.Err}
			}
			return err
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	return a.writeEvents(tx.Events)
}

func (w *txWriter) checkCondition(i int, c tandem.Condition) error {
	sc := w.a.schema(c.Table)
	if sc == nil {
		return tandem.Errorf(tandem.CodeNotFound, "condition %d: table %q does not exist", i, c.Table)
	}
	if err := tandem.ValidateKey(sc, c.Key); err != nil {
		return tandem.Errorf(tandem.CodeInvalid, "condition %d: %s", i, tandem.ErrorMessage(err))
	}
	rec, err := w.getRecord(recordKey(sc.Name, encodePK(sc, c.Key)))
	if err != nil {
		return err
	}
	var found string
	switch {
	case c.Kind == tandem.CondNotExists && rec != nil:
		found = fmt.Sprintf("record exists with version %d", rec.version)
	case c.Kind != tandem.CondNotExists && rec == nil:
		found = "record does not exist"
	case c.Kind == tandem.CondVersion && rec.version != c.Version:
		found = fmt.Sprintf("version is %d", rec.version)
	case c.Kind == tandem.CondContent && tandem.RecordHash(rec.json) != c.Hash:
		found = fmt.Sprintf("its content changed (version %d)", rec.version)
	default:
		return nil
	}
	return tandem.Errorf(tandem.CodeConflict, "condition %d failed: %s: %s", i, c.String(), found)
}

func (w *txWriter) applyOp(op *tandem.Op) error {
	sc := w.a.schema(op.Table)
	if sc == nil {
		return notFoundTable(op.Table)
	}
	if op.Key != "" {
		if err := tandem.ValidateKey(sc, op.Key); err != nil {
			return err
		}
	}
	switch op.Op {
	case tandem.OpInsert, tandem.OpUpsert:
		return w.write(sc, op)
	case tandem.OpPatch:
		return w.patch(sc, op)
	case tandem.OpDelete:
		return w.delete(sc, op)
	}
	return tandem.Errorf(tandem.CodeInvalid, "unknown op %q", op.Op)
}

// checkVersion enforces op.IfVersion against rec (nil if absent).
func checkVersion(sc *tandem.TableSchema, key string, op *tandem.Op, rec *stored) error {
	if op.IfVersion == nil {
		return nil
	}
	var have uint64
	if rec != nil {
		have = rec.version
	}
	if have != *op.IfVersion {
		return tandem.Errorf(tandem.CodePreconditionFailed, "record %s/%s has version %d, not %d", sc.Name, key, have, *op.IfVersion)
	}
	return nil
}

// write applies an insert or upsert.
func (w *txWriter) write(sc *tandem.TableSchema, op *tandem.Op) error {
	rec, err := tandem.DecodeRecord(op.Record)
	if err != nil {
		return err
	}
	if op.Key != "" && rec[sc.PrimaryKey] == nil {
		rec[sc.PrimaryKey] = sc.KeyValue(op.Key)
	}
	key, err := sc.Check(rec)
	if err != nil {
		return err
	}
	if op.Key != "" && op.Key != key {
		return tandem.Errorf(tandem.CodeInvalid, "key %q does not match the record's primary key %q", op.Key, key)
	}
	rk := recordKey(sc.Name, encodePK(sc, key))
	var old *stored
	if op.Op == tandem.OpInsert || op.IfVersion != nil || len(sc.Indexes) > 0 {
		if old, err = w.getRecord(rk); err != nil {
			return err
		}
	}
	if err := checkVersion(sc, key, op, old); err != nil {
		return err
	}
	if op.Op == tandem.OpInsert && old != nil {
		return tandem.Errorf(tandem.CodeConflict, "record %q already exists in table %q", key, sc.Name)
	}
	return w.putRecord(sc, rk, rec, old)
}

func (w *txWriter) patch(sc *tandem.TableSchema, op *tandem.Op) error {
	if op.Key == "" {
		return tandem.Errorf(tandem.CodeInvalid, "patch needs a key")
	}
	rk := recordKey(sc.Name, encodePK(sc, op.Key))
	old, err := w.getRecord(rk)
	if err != nil {
		return err
	}
	if err := checkVersion(sc, op.Key, op, old); err != nil {
		return err
	}
	if old == nil {
		return tandem.Errorf(tandem.CodeNotFound, "record %q does not exist in table %q", op.Key, sc.Name)
	}
	changes, err := tandem.DecodeRecord(op.Record)
	if err != nil {
		return err
	}
	rec, err := decodeJSON(old.json)
	if err != nil {
		return err
	}
	if err := sc.Patch(op.Key, rec, changes); err != nil {
		return err
	}
	return w.putRecord(sc, rk, rec, old)
}

func (w *txWriter) delete(sc *tandem.TableSchema, op *tandem.Op) error {
	if op.Key == "" {
		return tandem.Errorf(tandem.CodeInvalid, "delete needs a key")
	}
	pk := encodePK(sc, op.Key)
	rk := recordKey(sc.Name, pk)
	old, err := w.getRecord(rk)
	if err != nil {
		return err
	}
	if err := checkVersion(sc, op.Key, op, old); err != nil {
		return err
	}
	if old == nil {
		return tandem.Errorf(tandem.CodeNotFound, "record %q does not exist in table %q", op.Key, sc.Name)
	}
	if len(sc.Indexes) > 0 {
		oldRec, err := decodeJSON(old.json)
		if err != nil {
			return err
		}
		for _, attr := range sc.Indexes {
			ip := indexPrefix(sc.Name, attr)
			w.put(indexKey(ip, appendAttr(nil, sc.Attributes[attr], oldRec[attr]), pk), nil, true)
		}
	}
	w.put(rk, nil, true)
	return nil
}

// putRecord writes rec at record key rk, replacing old (nil if absent), and
// updates the table's indexes.
func (w *txWriter) putRecord(sc *tandem.TableSchema, rk []byte, rec tandem.Record, old *stored) error {
	val, err := encodeStored(w.a.index, rec)
	if err != nil {
		return err
	}
	if len(sc.Indexes) > 0 {
		pk := rk[len(prefixRecord)+len(sc.Name)+1:]
		var oldRec tandem.Record
		if old != nil {
			if oldRec, err = decodeJSON(old.json); err != nil {
				return err
			}
		}
		var nv, ov []byte
		for _, attr := range sc.Indexes {
			t := sc.Attributes[attr]
			ip := indexPrefix(sc.Name, attr)
			nv = appendAttr(nv[:0], t, rec[attr])
			if old != nil {
				ov = appendAttr(ov[:0], t, oldRec[attr])
				if bytes.Equal(ov, nv) {
					continue
				}
				w.put(indexKey(ip, ov, pk), nil, true)
			}
			w.put(indexKey(ip, nv, pk), []byte{}, false)
		}
	}
	w.put(rk, val, false)
	return nil
}
