package auth

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/tandemdb/tandem"
)

// Authorization of record reads and writes, shared by the REST record
// endpoints (package api) and contract functions that run with their
// caller's rights (package contract, through ContractRights). Errors are
// CodeForbidden and name the permission, except for a record that cannot
// be decoded (CodeInvalid).

// ReadAttrs returns the attributes of table (primary key pk) p may read,
// or a CodeForbidden error if p may not read the table at all.
func (p *Perms) ReadAttrs(table, pk string) (AttrSet, error) {
	set := p.Attrs(tandem.ActTableRead, table, pk)
	if set.None() {
		return set, Forbidden(tandem.ActTableRead, table)
	}
	return set, nil
}

// CheckWriteAttrs checks that every attribute of the record body is
// covered by set (attributes of action on table).
func CheckWriteAttrs(set AttrSet, action tandem.Action, table string, body []byte) error {
	if set.All() {
		return nil
	}
	rec, err := tandem.DecodeRecord(body)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(rec))
	for a := range rec {
		names = append(names, a)
	}
	slices.Sort(names) // name the same attribute every time
	for _, a := range names {
		if !set.Covers(a) {
			return ForbiddenAttr(action, table, a)
		}
	}
	return nil
}

// CheckOp checks one write; pk is the primary key of op's table ("" if
// the table does not exist: the write then fails on its own). Insert
// needs table.insert covering every attribute written; patch needs
// table.update likewise. Upsert may insert or replace a whole record, so
// it needs table.insert covering the body and table.update covering every
// attribute (replacing removes attributes the body does not name). Delete
// needs table.delete. An op conditional on a version (If-Match) also
// needs table.read: the condition reveals the version.
func (p *Perms) CheckOp(op *tandem.Op, pk string) error {
	if op.IfVersion != nil {
		if _, err := p.ReadAttrs(op.Table, pk); err != nil {
			return err
		}
	}
	attrs := func(action tandem.Action) (AttrSet, error) {
		set := p.Attrs(action, op.Table, pk)
		if set.None() {
			return set, Forbidden(action, op.Table)
		}
		return set, nil
	}
	switch op.Op {
	case tandem.OpDelete:
		if !p.Allows(tandem.ActTableDelete, op.Table) {
			return Forbidden(tandem.ActTableDelete, op.Table)
		}
		return nil
	case tandem.OpPatch:
		set, err := attrs(tandem.ActTableUpdate)
		if err != nil {
			return err
		}
		return CheckWriteAttrs(set, tandem.ActTableUpdate, op.Table, op.Record)
	case tandem.OpUpsert:
		set, err := attrs(tandem.ActTableUpdate)
		if err != nil {
			return err
		}
		if !set.All() {
			return tandem.Errorf(tandem.CodeForbidden,
				"permission table.update on every attribute of %q is required to replace a record; use PATCH to change some", op.Table)
		}
		fallthrough
	default: // insert
		set, err := attrs(tandem.ActTableInsert)
		if err != nil {
			return err
		}
		return CheckWriteAttrs(set, tandem.ActTableInsert, op.Table, op.Record)
	}
}

// CheckQuery refuses a query that filters, sorts or selects on an
// attribute set (the caller's readable attributes of q.Table) does not
// cover: the filter's outcome would leak the value even though the
// attribute is removed from the results.
func CheckQuery(q *tandem.Query, set AttrSet) error {
	if set.All() {
		return nil
	}
	check := func(a string) error {
		if a != "" && !set.Covers(a) {
			return ForbiddenAttr(tandem.ActTableRead, q.Table, a)
		}
		return nil
	}
	for _, f := range q.Filters {
		if err := check(f.Attr); err != nil {
			return err
		}
	}
	for _, group := range q.Or {
		for _, f := range group {
			if err := check(f.Attr); err != nil {
				return err
			}
		}
	}
	if err := check(q.Sort); err != nil {
		return err
	}
	for _, a := range q.Select {
		if err := check(a); err != nil {
			return err
		}
	}
	return nil
}

// FilterRecord removes the attributes set does not cover from a stored
// record's JSON ("_version" first, then the attributes in sorted order,
// as the store writes it), keeping that order.
func FilterRecord(js []byte, set AttrSet) ([]byte, error) {
	if set.All() {
		return js, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, tandem.WrapError(tandem.CodeInternal, err, "stored record is not a JSON object")
	}
	names := make([]string, 0, len(m))
	for a := range m {
		if a != "_version" && set.Covers(a) {
			names = append(names, a)
		}
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.Grow(len(js))
	b.WriteByte('{')
	if v, ok := m["_version"]; ok {
		b.WriteString(`"_version":`)
		b.Write(v)
		if len(names) > 0 {
			b.WriteByte(',')
		}
	}
	for i, a := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(a)
		if err != nil {
			return nil, tandem.WrapError(tandem.CodeInternal, err, "encode attribute name")
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(m[a])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ContractRights are a principal's permissions as a contract function
// that runs with its caller's rights sees them (it satisfies
// contract.Rights): every host operation is checked as the REST record
// endpoints check the same request.
type ContractRights struct{ Perms *Perms }

// CheckRead needs table.read on the table.
func (r ContractRights) CheckRead(sc *tandem.TableSchema) error {
	_, err := r.Perms.ReadAttrs(sc.Name, sc.PrimaryKey)
	return err
}

// FilterRecord removes the attributes the caller may not read.
func (r ContractRights) FilterRecord(sc *tandem.TableSchema, js []byte) ([]byte, error) {
	set, err := r.Perms.ReadAttrs(sc.Name, sc.PrimaryKey)
	if err != nil {
		return nil, err
	}
	return FilterRecord(js, set)
}

// CheckQuery needs table.read and refuses filters, sorts and selections on
// attributes the caller may not read.
func (r ContractRights) CheckQuery(sc *tandem.TableSchema, q *tandem.Query) error {
	set, err := r.Perms.ReadAttrs(sc.Name, sc.PrimaryKey)
	if err != nil {
		return err
	}
	return CheckQuery(q, set)
}

// CheckOp checks one write like Perms.CheckOp.
func (r ContractRights) CheckOp(sc *tandem.TableSchema, op *tandem.Op) error {
	return r.Perms.CheckOp(op, sc.PrimaryKey)
}
