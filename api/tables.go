package api

import (
	"context"
	"net/http"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
)

func (s *Server) listTables(w http.ResponseWriter, r *http.Request) {
	if err := s.readBarrier(r, r.URL.Query()); err != nil {
		writeError(w, err)
		return
	}
	setReadIndex(w, s.opts.Reader.AppliedIndex())
	tables := s.visibleTables(r, s.opts.Reader.Tables())
	if tables == nil {
		tables = []tandem.TableSchema{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tables": tables})
}

func (s *Server) getTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	if err := tandem.ValidateName("table", name); err != nil {
		writeError(w, err)
		return
	}
	if !s.principal(r).Perms.AnyOn(name, tableActions()...) {
		writeError(w, s.denied(r, auth.Forbidden(tandem.ActTableRead, name)))
		return
	}
	if err := s.readBarrier(r, r.URL.Query()); err != nil {
		writeError(w, err)
		return
	}
	setReadIndex(w, s.opts.Reader.AppliedIndex())
	t, err := s.opts.Reader.Table(name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"table": t})
}

func (s *Server) putTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	if err := tandem.ValidateName("table", name); err != nil {
		writeError(w, err)
		return
	}
	var schema tandem.TableSchema
	if err := s.decodeStrict(w, r, "table schema", &schema); err != nil {
		writeError(w, err)
		return
	}
	if schema.Name != "" && schema.Name != name {
		writeError(w, tandem.Errorf(tandem.CodeInvalid, "schema name %q does not match the table %q in the path", schema.Name, name))
		return
	}
	schema.Name, schema.Version = name, 0
	if err := schema.Validate(); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.propose(w, r, tandem.Command{Type: tandem.CmdCreateTable, Table: &schema})
	if err != nil {
		writeError(w, err)
		return
	}
	// Answer with the schema as applied (with its version), read once this
	// node has applied the change.
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadTimeout)
	defer cancel()
	if err := s.opts.Cluster.WaitApplied(ctx, res.Index); err == nil {
		if t, err := s.opts.Reader.Table(name); err == nil {
			writeJSON(w, http.StatusOK, map[string]any{"table": t})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"table": schema})
}

func (s *Server) dropTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	if err := tandem.ValidateName("table", name); err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.propose(w, r, tandem.Command{Type: tandem.CmdDropTable, Name: name}); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": name})
}

func (s *Server) postTx(w http.ResponseWriter, r *http.Request) {
	var tx tandem.Tx
	if err := s.decodeStrict(w, r, "transaction", &tx); err != nil {
		writeError(w, err)
		return
	}
	if err := tx.Validate(); err != nil {
		writeError(w, err)
		return
	}
	if len(tx.Events) > 0 {
		writeError(w, tandem.Errorf(tandem.CodeInvalid, "events are emitted by contracts, not by /v1/tx"))
		return
	}
	for i, op := range tx.Ops {
		if len(op.Record) > 0 {
			if _, err := tandem.DecodeRecord(op.Record); err != nil {
				writeError(w, tandem.Errorf(tandem.CodeInvalid, "op %d: %s", i, tandem.ErrorMessage(err)))
				return
			}
		}
	}
	if err := s.checkTx(r, &tx); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.propose(w, r, tandem.Command{Type: tandem.CmdTx, Tx: &tx})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"index": res.Index})
}
