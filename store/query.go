package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tandemdb/tandem"
)

// MaxSortRows is the number of matching records past which a query whose
// access path does not yield its order is refused rather than sorted in
// memory.
const MaxSortRows = 100_000

// Query runs q against a consistent view of the store. Errors:
// CodeNotFound (no such table), CodeInvalid (bad filter, sort, limit or
// cursor, or an order that needs an index; see MaxSortRows),
// CodeUnavailable (closed).
func (s *Store) Query(q *tandem.Query) (*tandem.QueryResult, error) {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, closedError()
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	return s.queryIn(snap, *s.schemas.Load(), q)
}

// queryIn runs q against r for Query and View.Query.
func (s *Store) queryIn(r reader, schemas schemaMap, q *tandem.Query) (*tandem.QueryResult, error) {
	if q == nil {
		return nil, tandem.Errorf(tandem.CodeInvalid, "query is missing")
	}
	sc := schemas[q.Table]
	if sc == nil {
		return nil, notFoundTable(q.Table)
	}
	ex, err := newExecution(sc, q)
	if err != nil {
		return nil, err
	}
	ex.sortLimit = s.sortLimit
	ex.snap = r
	return ex.run()
}

// execution is one run of a query.
type execution struct {
	sc       *tandem.TableSchema
	q        *tandem.Query
	limit    int
	sortAttr string          // "" for primary key order
	sortType tandem.AttrType // encoding type of the sort attribute
	sel      []string        // sorted, with the primary key; nil for all
	or       [][]*cond
	fp       [fpLen]byte
	cursor   *position
	plan     *plan
	snap     reader // a snapshot, or the applier's batch for query conditions
	// sortLimit is the most matches an unordered plan may sort.
	sortLimit int

	rows  []row
	count int
	buf   []byte
}

// row is a matching record and its position.
type row struct {
	pos position
	val []byte // stored value
}

func newExecution(sc *tandem.TableSchema, q *tandem.Query) (*execution, error) {
	ex := &execution{sc: sc, q: q, limit: q.Limit}
	switch {
	case ex.limit == 0:
		ex.limit = tandem.DefaultLimit
	case ex.limit < 0 || ex.limit > tandem.MaxLimit:
		return nil, tandem.Errorf(tandem.CodeInvalid, "limit %d is not between 1 and %d", q.Limit, tandem.MaxLimit)
	}
	if q.Sort != "" {
		if err := tandem.ValidateName("attribute", q.Sort); err != nil {
			return nil, err
		}
		if q.Sort != sc.PrimaryKey {
			ex.sortAttr = q.Sort
			ex.sortType, _ = valueType(sc, q.Sort)
		}
	}
	if len(q.Select) > 0 {
		ex.sel = []string{sc.PrimaryKey}
		for _, a := range q.Select {
			if err := tandem.ValidateName("attribute", a); err != nil {
				return nil, err
			}
			ex.sel = append(ex.sel, a)
		}
		slices.Sort(ex.sel)
		ex.sel = slices.Compact(ex.sel)
	}
	conds := make([]*cond, 0, len(q.Filters))
	for _, f := range q.Filters {
		c, err := resolveFilter(sc, f)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	for i, g := range q.Or {
		if len(g) == 0 {
			return nil, tandem.Errorf(tandem.CodeInvalid, "or group %d is empty", i+1)
		}
		group := make([]*cond, 0, len(g))
		for _, f := range g {
			c, err := resolveFilter(sc, f)
			if err != nil {
				return nil, err
			}
			group = append(group, c)
		}
		ex.or = append(ex.or, group)
	}
	ex.fp = fingerprint(q.Table, ex.sortAttr, q.Desc, q.Filters, q.Or)
	if q.Cursor != "" && !q.Count {
		pos, err := decodeCursor(q.Cursor, ex.fp, ex.sortAttr != "")
		if err != nil {
			return nil, err
		}
		ex.cursor = &pos
	}
	ex.plan = makePlan(sc, conds, ex.sortAttr)
	return ex, nil
}

func (ex *execution) run() (*tandem.QueryResult, error) {
	p := ex.plan
	var err error
	switch p.access {
	case accessGet:
		err = ex.runGets()
	default:
		err = ex.runSpans()
	}
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	res := &tandem.QueryResult{Records: []json.RawMessage{}, Plan: p.name}
	if ex.q.Count {
		n := ex.count
		res.Count = &n
		return res, nil
	}
	if !p.ordered {
		slices.SortFunc(ex.rows, func(a, b row) int { return comparePos(a.pos, b.pos) })
		if ex.q.Desc {
			slices.Reverse(ex.rows)
		}
		if ex.cursor != nil {
			i := 0
			for i < len(ex.rows) && !ex.after(ex.rows[i].pos) {
				i++
			}
			ex.rows = ex.rows[i:]
		}
	}
	rows := ex.rows
	if len(rows) > ex.limit {
		rows = rows[:ex.limit]
		res.Next = encodeCursor(ex.fp, rows[len(rows)-1].pos)
	}
	res.Records = make([]json.RawMessage, 0, len(rows))
	for _, r := range rows {
		version, js, err := splitStored(r.val)
		if err != nil {
			return nil, tandem.WrapError(tandem.CodeInternal, err, "read failed")
		}
		var out []byte
		if ex.sel == nil {
			out = appendVersioned(make([]byte, 0, len(js)+24), version, js)
		} else if out, err = appendProjected(nil, version, js, ex.sel); err != nil {
			return nil, tandem.WrapError(tandem.CodeInternal, err, "read failed")
		}
		res.Records = append(res.Records, out)
	}
	return res, nil
}

// errStop ends a scan early once a page is full.
var errStop = errors.New("stop")

// after reports whether pos comes after the cursor in the query's order.
func (ex *execution) after(pos position) bool {
	if ex.cursor == nil {
		return true
	}
	c := comparePos(pos, *ex.cursor)
	if ex.q.Desc {
		return c < 0
	}
	return c > 0
}

// runGets reads the plan's record keys.
func (ex *execution) runGets() error {
	keys := ex.plan.keys
	if ex.q.Desc && ex.plan.ordered {
		keys = slices.Clone(keys)
		slices.Reverse(keys)
	}
	rp := len(ex.plan.recPrefix)
	for _, k := range keys {
		val, closer, err := ex.snap.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		err = ex.consider(k[rp:], nil, val)
		_ = closer.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// runSpans iterates the plan's spans, in the query's direction when the
// plan is ordered.
func (ex *execution) runSpans() error {
	p := ex.plan
	spans := p.spans
	desc := ex.q.Desc && p.ordered
	if desc {
		spans = slices.Clone(spans)
		slices.Reverse(spans)
	}
	seek := ex.seekKey()
	it, err := ex.snap.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for _, sp := range spans {
		lo, hi := sp.lo, sp.hi
		if seek != nil {
			if desc {
				hi = minKey(hi, seek)
			} else {
				lo = maxKey(lo, seek)
			}
			if bytes.Compare(lo, hi) >= 0 {
				continue
			}
		}
		it.SetBounds(lo, hi)
		var valid bool
		if desc {
			valid = it.Last()
		} else {
			valid = it.First()
		}
		for ; valid; valid = step(it, desc) {
			if err := ex.visit(it); err != nil {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return err
		}
	}
	return nil
}

func step(it *pebble.Iterator, desc bool) bool {
	if desc {
		return it.Prev()
	}
	return it.Next()
}

// seekKey returns the key in the plan's key space at the cursor, so that an
// ordered scan can start there; nil if there is none.
func (ex *execution) seekKey() []byte {
	p, c := ex.plan, ex.cursor
	if c == nil || !p.ordered {
		return nil
	}
	switch {
	case p.access == accessRecords && ex.sortAttr == "":
		return append(slices.Clip(p.recPrefix), c.pk...)
	case p.access == accessIndex && p.sortFromKey:
		return append(append(slices.Clip(p.idxPrefix), c.sort...), c.pk...)
	case p.access == accessIndex && ex.sortAttr == "" && len(p.spans) == 1:
		return append(slices.Clip(p.spans[0].lo), c.pk...)
	}
	return nil
}

// visit handles the iterator's current key.
func (ex *execution) visit(it *pebble.Iterator) error {
	p := ex.plan
	k := it.Key()
	if p.access == accessRecords {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		return ex.consider(k[len(p.recPrefix):], nil, v)
	}
	rest := k[len(p.idxPrefix):]
	n, err := valueLen(rest)
	if err != nil {
		return fmt.Errorf("store: index key %q: %w", k, err)
	}
	pk := rest[n:]
	val, closer, err := ex.snap.Get(append(slices.Clip(p.recPrefix), pk...))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil // cannot happen in a consistent snapshot
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	var sortVal []byte
	if p.sortFromKey {
		sortVal = rest[:n]
	}
	return ex.consider(pk, sortVal, val)
}

// consider evaluates the record with encoded key pk and stored value val
// (both valid only during the call) and keeps it if it matches. sortVal is
// its sort value if the access path knows it.
func (ex *execution) consider(pk, sortVal, val []byte) error {
	p := ex.plan
	_, js, err := splitStored(val)
	if err != nil {
		return err
	}
	needSort := ex.sortAttr != "" && sortVal == nil && !ex.q.Count
	var rec tandem.Record
	if len(p.residual) > 0 || len(ex.or) > 0 || needSort {
		if rec, err = decodeJSON(js); err != nil {
			return fmt.Errorf("store: decode record %q: %w", pk, err)
		}
	}
	var ok bool
	for _, c := range p.residual {
		if ok, ex.buf = c.match(rec, ex.buf); !ok {
			return nil
		}
	}
	for _, g := range ex.or {
		ok = false
		for _, c := range g {
			if ok, ex.buf = c.match(rec, ex.buf); ok {
				break
			}
		}
		if !ok {
			return nil
		}
	}
	if ex.q.Count {
		ex.count++
		return nil
	}
	if needSort {
		sortVal = appendAttr(nil, ex.sortType, rec[ex.sortAttr])
	}
	pos := position{pk: pk, sort: sortVal}
	if p.ordered && !ex.after(pos) {
		return nil
	}
	if !p.ordered && len(ex.rows) == ex.sortLimit {
		if ex.sortAttr != "" {
			return tandem.Errorf(tandem.CodeInvalid, "sorting by %s needs an index on %s for more than %d matching records", ex.sortAttr, ex.sortAttr, ex.sortLimit)
		}
		return tandem.Errorf(tandem.CodeInvalid, "more than %d records match; add sort=%s to page through them in index order, or narrow the filter", ex.sortLimit, p.attr)
	}
	ex.rows = append(ex.rows, row{
		pos: position{pk: slices.Clone(pk), sort: slices.Clone(sortVal)},
		val: slices.Clone(val),
	})
	if p.ordered && len(ex.rows) > ex.limit {
		return errStop
	}
	return nil
}
