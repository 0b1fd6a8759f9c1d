package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/query"
)

// writeConditions reads If-Match / If-None-Match. ifVersion is the exact
// version required (0: must not exist); mustExist is If-Match: *.
func writeConditions(r *http.Request) (ifVersion *uint64, mustExist bool, err error) {
	im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	if im != "" && inm != "" {
		return nil, false, tandem.Errorf(tandem.CodeInvalid, "send If-Match or If-None-Match, not both")
	}
	if inm != "" {
		if strings.TrimSpace(inm) != "*" {
			return nil, false, tandem.Errorf(tandem.CodeInvalid, "If-None-Match must be *, not %q", inm)
		}
		zero := uint64(0)
		return &zero, false, nil
	}
	if im == "" {
		return nil, false, nil
	}
	v := strings.TrimSpace(im)
	if v == "*" {
		return nil, true, nil
	}
	v = strings.TrimPrefix(v, "W/")
	v = strings.Trim(v, `"`)
	n, perr := strconv.ParseUint(v, 10, 64)
	if perr != nil || n == 0 {
		return nil, false, tandem.Errorf(tandem.CodeInvalid, "If-Match %q is not a record version such as \"42\" (or *)", im)
	}
	return &n, false, nil
}

// recordWrite proposes a one-op transaction built from the request.
func (s *Server) recordWrite(w http.ResponseWriter, r *http.Request, op tandem.Op) (tandem.Result, error) {
	ifv, mustExist, err := writeConditions(r)
	if err != nil {
		return tandem.Result{}, err
	}
	op.IfVersion = ifv
	tx := &tandem.Tx{Ops: []tandem.Op{op}}
	if mustExist {
		tx.Conditions = []tandem.Condition{{Kind: tandem.CondExists, Table: op.Table, Key: op.Key}}
	}
	if err := tx.Validate(); err != nil {
		return tandem.Result{}, err
	}
	if err := s.checkTx(r, tx); err != nil {
		return tandem.Result{}, err
	}
	res, err := s.propose(w, r, tandem.Command{Type: tandem.CmdTx, Tx: tx})
	if err != nil && mustExist && tandem.ErrorCode(err) == tandem.CodeConflict {
		err = tandem.Errorf(tandem.CodePreconditionFailed, "record %s/%s does not exist (If-Match: *)", op.Table, op.Key)
	}
	return res, err
}

// recordBody reads a record body and checks that it is a JSON object with
// no reserved attributes; types are checked when the write is applied.
func (s *Server) recordBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if _, err := tandem.DecodeRecord(body); err != nil {
		return nil, err
	}
	return body, nil
}

func pathTableKey(r *http.Request) (table, key string, err error) {
	table, key = r.PathValue("table"), r.PathValue("key")
	if err := tandem.ValidateName("table", table); err != nil {
		return "", "", err
	}
	if key == "" {
		return "", "", tandem.Errorf(tandem.CodeInvalid, "record key is empty")
	}
	if len(key) > tandem.MaxKeyLen {
		return "", "", tandem.Errorf(tandem.CodeInvalid, "record key is longer than %d bytes", tandem.MaxKeyLen)
	}
	// The key must equal the record's primary key attribute, a JSON
	// string, where invalid UTF-8 turns into U+FFFD: the write would land
	// under another key.
	if !utf8.ValidString(key) {
		return "", "", tandem.Errorf(tandem.CodeInvalid, "record key %q is not valid UTF-8", key)
	}
	return table, key, nil
}

type writeResponse struct {
	Key     string `json:"key"`
	Version uint64 `json:"version"`
	Deleted bool   `json:"deleted,omitempty"`
}

func (s *Server) insertRecord(w http.ResponseWriter, r *http.Request) {
	table := r.PathValue("table")
	if err := tandem.ValidateName("table", table); err != nil {
		writeError(w, err)
		return
	}
	body, err := s.recordBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.recordWrite(w, r, tandem.Op{Op: tandem.OpInsert, Table: table, Record: body})
	if err != nil {
		writeError(w, err)
		return
	}
	// The key comes from the record's primary key attribute, whose name is
	// in the schema: read it once this node has applied the insert, so the
	// schema is the one the insert was checked against.
	key := s.appliedKey(r.Context(), res.Index, table, body)
	w.Header().Set("ETag", etag(res.Index))
	if key != "" {
		w.Header().Set("Location", "/v1/tables/"+url.PathEscape(table)+"/records/"+url.PathEscape(key))
	}
	writeJSON(w, http.StatusCreated, writeResponse{Key: key, Version: res.Index})
}

func (s *Server) appliedKey(ctx context.Context, index uint64, table string, body []byte) string {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	if err := s.opts.Cluster.WaitApplied(ctx, index); err != nil {
		return ""
	}
	schema, err := s.opts.Reader.Table(table)
	if err != nil {
		return ""
	}
	rec, err := tandem.DecodeRecord(body)
	if err != nil {
		return ""
	}
	key, _ := schema.KeyString(rec[schema.PrimaryKey])
	return key
}

func (s *Server) putRecord(w http.ResponseWriter, r *http.Request) {
	s.keyedWrite(w, r, tandem.OpUpsert)
}
func (s *Server) patchRecord(w http.ResponseWriter, r *http.Request) {
	s.keyedWrite(w, r, tandem.OpPatch)
}
func (s *Server) deleteRecord(w http.ResponseWriter, r *http.Request) {
	s.keyedWrite(w, r, tandem.OpDelete)
}

func (s *Server) keyedWrite(w http.ResponseWriter, r *http.Request, kind tandem.OpKind) {
	table, key, err := pathTableKey(r)
	if err != nil {
		writeError(w, err)
		return
	}
	op := tandem.Op{Op: kind, Table: table, Key: key}
	if kind != tandem.OpDelete {
		if op.Record, err = s.recordBody(w, r); err != nil {
			writeError(w, err)
			return
		}
	}
	res, err := s.recordWrite(w, r, op)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("ETag", etag(res.Index))
	writeJSON(w, http.StatusOK, writeResponse{Key: key, Version: res.Index, Deleted: kind == tandem.OpDelete})
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request) {
	table, key, err := pathTableKey(r)
	if err != nil {
		writeError(w, err)
		return
	}
	readable, err := s.attrs(r, tandem.ActTableRead, table)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.readBarrier(r, r.URL.Query()); err != nil {
		writeError(w, err)
		return
	}
	applied := s.opts.Reader.AppliedIndex()
	rec, err := s.opts.Reader.Get(table, key)
	if err == nil {
		rec.JSON, err = filterRecord(rec.JSON, readable)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("ETag", etag(rec.Version))
	setReadIndex(w, applied)
	w.WriteHeader(http.StatusOK)
	w.Write(rec.JSON) // the store includes "_version"
}

// queryParams are the parameters the API reads itself; the rest go to
// query.Parse.
var queryParams = []string{"consistency", "min_index", "timeout"}

func (s *Server) queryRecords(w http.ResponseWriter, r *http.Request) {
	table := r.PathValue("table")
	if err := tandem.ValidateName("table", table); err != nil {
		writeError(w, err)
		return
	}
	all := r.URL.Query()
	vals := make(url.Values, len(all))
	for k, v := range all {
		vals[k] = v
	}
	for _, p := range queryParams {
		delete(vals, p)
	}
	q, err := query.Parse(table, vals)
	if err != nil {
		writeError(w, err)
		return
	}
	readable, err := s.attrs(r, tandem.ActTableRead, table)
	if err == nil {
		err = s.checkQuery(r, q, readable)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.readBarrier(r, all); err != nil {
		writeError(w, err)
		return
	}
	applied := s.opts.Reader.AppliedIndex()
	res, err := s.opts.Reader.Query(q)
	for i := 0; err == nil && i < len(res.Records); i++ {
		res.Records[i], err = filterRecord(res.Records[i], readable)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if res.Records == nil && res.Count == nil {
		res.Records = []json.RawMessage{}
	}
	setReadIndex(w, applied)
	writeJSON(w, http.StatusOK, res)
}
