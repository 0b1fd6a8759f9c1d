package store

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/tandemdb/tandem"
)

// createTable creates a table or evolves an existing one: declared
// attributes may be added (existing records must fit the new types) but not
// removed or retyped, the primary key may not change, and indexes may be
// added (backfilled here) or removed. Identical schemas are a no-op.
func (a *applier) createTable(in *tandem.TableSchema) error {
	sc := copySchema(in)
	sc.Version = 0
	if err := sc.Validate(); err != nil {
		return err
	}
	old := a.schema(sc.Name)
	if old == nil {
		sc.Version = a.index
		return a.putSchema(sc)
	}
	if old.PrimaryKey != sc.PrimaryKey {
		return tandem.Errorf(tandem.CodeConflict, "table %q has primary key %q; it cannot change to %q", sc.Name, old.PrimaryKey, sc.PrimaryKey)
	}
	for _, name := range slices.Sorted(maps.Keys(old.Attributes)) {
		t, nt := old.Attributes[name], sc.Attributes[name]
		switch {
		case nt == "":
			return tandem.Errorf(tandem.CodeConflict, "table %q: attribute %q is declared %s; declared attributes cannot be removed", sc.Name, name, t)
		case nt != t:
			return tandem.Errorf(tandem.CodeConflict, "table %q: attribute %q is declared %s; it cannot change to %s", sc.Name, name, t, nt)
		}
	}
	if old.KeyType() != sc.KeyType() {
		return tandem.Errorf(tandem.CodeConflict, "table %q: the primary key %q cannot change type", sc.Name, sc.PrimaryKey)
	}
	var added, addedIdx, droppedIdx []string
	for _, name := range slices.Sorted(maps.Keys(sc.Attributes)) {
		if _, ok := old.Attributes[name]; !ok {
			added = append(added, name)
		}
	}
	for _, ix := range sc.Indexes {
		if !old.HasIndex(ix) {
			addedIdx = append(addedIdx, ix)
		}
	}
	for _, ix := range old.Indexes {
		if !sc.HasIndex(ix) {
			droppedIdx = append(droppedIdx, ix)
		}
	}
	if len(added) == 0 && len(addedIdx) == 0 && len(droppedIdx) == 0 {
		return nil
	}
	if len(added) > 0 || len(addedIdx) > 0 {
		if err := a.backfill(sc, added, addedIdx); err != nil {
			return err
		}
	}
	for _, ix := range droppedIdx {
		p := indexPrefix(sc.Name, ix)
		if err := a.b.DeleteRange(p, prefixEnd(p), nil); err != nil {
			return err
		}
	}
	sc.Version = a.index
	return a.putSchema(sc)
}

// backfill checks every record of the table against the newly declared
// attributes and writes the entries of the new indexes. Nothing is written
// if a record does not fit.
func (a *applier) backfill(sc *tandem.TableSchema, added, addedIdx []string) error {
	scratch := a.s.db.NewBatch()
	defer scratch.Close()
	rp := recordPrefix(sc.Name)
	prefixes := make([][]byte, len(addedIdx))
	for i, ix := range addedIdx {
		prefixes[i] = indexPrefix(sc.Name, ix)
	}
	var enc []byte
	err := scanPrefix(a.b, rp, func(k, v []byte) error {
		_, js, err := splitStored(v)
		if err != nil {
			return err
		}
		rec, err := decodeJSON(js)
		if err != nil {
			return err
		}
		pk := k[len(rp):]
		for _, name := range added {
			if err := tandem.CheckValue(sc.Attributes[name], rec[name]); err != nil {
				key, _ := sc.KeyString(rec[sc.PrimaryKey])
				return tandem.Errorf(tandem.CodeConflict, "table %q: attribute %q cannot be declared %s: record %q: %v", sc.Name, name, sc.Attributes[name], key, err)
			}
		}
		for i, ix := range addedIdx {
			enc = appendAttr(enc[:0], sc.Attributes[ix], rec[ix])
			if err := scratch.Set(indexKey(prefixes[i], enc, pk), nil, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.b.Apply(scratch, nil)
}

func (a *applier) putSchema(sc *tandem.TableSchema) error {
	v, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	if err := a.b.Set(schemaKey(sc.Name), v, nil); err != nil {
		return err
	}
	a.schemas[sc.Name] = sc
	return nil
}

// dropTable deletes a table's schema, records and index entries.
func (a *applier) dropTable(name string) error {
	if a.schema(name) == nil {
		return notFoundTable(name)
	}
	rp, ip := recordPrefix(name), indexTablePrefix(name)
	for _, err := range []error{
		a.b.Delete(schemaKey(name), nil),
		a.b.DeleteRange(rp, prefixEnd(rp), nil),
		a.b.DeleteRange(ip, prefixEnd(ip), nil),
	} {
		if err != nil {
			return err
		}
	}
	a.schemas[name] = nil
	a.s.recs.clear() // the range deletes bypass it
	return nil
}
