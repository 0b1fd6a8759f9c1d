package api

import (
	"net/http"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
)

// Authorization of record reads and writes (docs/security.md). Every check
// runs before anything is proposed or read, so a denied request leaves no
// trace in the data; every denial is audited.

// primaryKey returns table's primary key attribute, or "" if the table
// does not exist (the request then fails on its own).
func (s *Server) primaryKey(table string) string {
	if sc, err := s.opts.Reader.Table(table); err == nil {
		return sc.PrimaryKey
	}
	return ""
}

// attrs returns the attributes the caller may use for action on table,
// or a denial if none.
func (s *Server) attrs(r *http.Request, action tandem.Action, table string) (auth.AttrSet, error) {
	set := s.principal(r).Perms.Attrs(action, table, s.primaryKey(table))
	if set.None() {
		return set, s.denied(r, auth.Forbidden(action, table))
	}
	return set, nil
}

// checkOp checks one write (auth.Perms.CheckOp) and audits a denial.
func (s *Server) checkOp(r *http.Request, op *tandem.Op) error {
	err := s.principal(r).Perms.CheckOp(op, s.primaryKey(op.Table))
	if tandem.ErrorCode(err) == tandem.CodeForbidden {
		return s.denied(r, err)
	}
	return err
}

// checkTx checks every op and condition of tx. A condition needs
// table.read on its table: its outcome reveals whether the record exists
// and its version.
func (s *Server) checkTx(r *http.Request, tx *tandem.Tx) error {
	if s.principal(r).Perms.Admin() {
		return nil
	}
	for _, c := range tx.Conditions {
		if _, err := s.attrs(r, tandem.ActTableRead, c.Table); err != nil {
			return err
		}
	}
	for i := range tx.Ops {
		if err := s.checkOp(r, &tx.Ops[i]); err != nil {
			return err
		}
	}
	return nil
}

// checkQuery refuses a query on attributes the caller may not read
// (auth.CheckQuery) and audits the denial.
func (s *Server) checkQuery(r *http.Request, q *tandem.Query, set auth.AttrSet) error {
	if err := auth.CheckQuery(q, set); err != nil {
		return s.denied(r, err)
	}
	return nil
}

// filterRecord removes the attributes set does not cover (auth.FilterRecord).
func filterRecord(js []byte, set auth.AttrSet) ([]byte, error) { return auth.FilterRecord(js, set) }

// visibleTables keeps the tables the caller holds any permission on.
func (s *Server) visibleTables(r *http.Request, tables []tandem.TableSchema) []tandem.TableSchema {
	p := s.principal(r).Perms
	if p.Admin() {
		return tables
	}
	out := tables[:0:0]
	for _, t := range tables {
		if p.AnyOn(t.Name, tableActions()...) {
			out = append(out, t)
		}
	}
	return out
}

func tableActions() []tandem.Action {
	return []tandem.Action{tandem.ActTableRead, tandem.ActTableInsert, tandem.ActTableUpdate, tandem.ActTableDelete, tandem.ActTableAdmin}
}
