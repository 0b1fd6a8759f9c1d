package store_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// mval is a model attribute value: nil when missing, else int64, float64
// or string.
type mval any

// mcompare orders model values of one attribute: missing first.
func mcompare(a, b mval) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch a := a.(type) {
	case int64:
		return cmp.Compare(a, b.(int64))
	case float64:
		return cmp.Compare(a, b.(float64))
	default:
		return strings.Compare(a.(string), b.(string))
	}
}

type mrec map[string]mval

var modelAttrs = []string{"id", "balance", "name", "score", "city"}

// qmodel is the model of a table whose primary key "id" is an int when
// intKey is set.
type qmodel struct {
	intKey bool
	recs   map[string]mrec
}

// mmatch is the model of a filter.
func (m *qmodel) mmatch(r mrec, f tandem.Filter) bool {
	v := r[f.Attr]
	if f.Op == tandem.FilterNe {
		return v == nil || mcompare(v, m.mparse(f.Attr, f.Values[0])) != 0
	}
	if v == nil {
		return false
	}
	switch f.Op {
	case tandem.FilterPrefix:
		return strings.HasPrefix(v.(string), f.Values[0])
	case tandem.FilterIn:
		for _, lit := range f.Values {
			if mcompare(v, m.mparse(f.Attr, lit)) == 0 {
				return true
			}
		}
		return false
	}
	c := mcompare(v, m.mparse(f.Attr, f.Values[0]))
	switch f.Op {
	case tandem.FilterEq:
		return c == 0
	case tandem.FilterGt:
		return c > 0
	case tandem.FilterGe:
		return c >= 0
	case tandem.FilterLt:
		return c < 0
	case tandem.FilterLe:
		return c <= 0
	}
	panic(f.Op)
}

func (m *qmodel) mparse(attr, lit string) mval {
	switch attr {
	case "id":
		if m.intKey {
			i, _ := strconv.ParseInt(lit, 10, 64)
			return i
		}
	case "balance":
		i, _ := strconv.ParseInt(lit, 10, 64)
		return i
	case "score":
		f, _ := strconv.ParseFloat(lit, 64)
		return f
	}
	return lit
}

func (m *qmodel) randValue(rng *rand.Rand, attr string) string {
	switch attr {
	case "id":
		if m.intKey {
			return strconv.Itoa(rng.IntN(60) - 20)
		}
		return fmt.Sprintf("k%02d", rng.IntN(60))
	case "balance":
		return strconv.Itoa(rng.IntN(21) - 10)
	case "score":
		return strconv.FormatFloat(float64(rng.IntN(11)-5)/2, 'g', -1, 64)
	case "name":
		return []string{"Al", "Alma", "Bo", "Bob", "Cy", ""}[rng.IntN(6)]
	}
	return []string{"Lima", "Oslo", "Paris", "Rome"}[rng.IntN(4)]
}

func (m *qmodel) randFilter(rng *rand.Rand, inOr bool) tandem.Filter {
	attr := modelAttrs[rng.IntN(len(modelAttrs))]
	ops := []tandem.FilterOp{"eq", "ne", "gt", "ge", "lt", "le", "in"}
	if (attr == "id" && !m.intKey) || attr == "name" || attr == "city" {
		ops = append(ops, "prefix")
	}
	if inOr {
		ops = ops[:6]
	}
	f := tandem.Filter{Attr: attr, Op: ops[rng.IntN(len(ops))]}
	n := 1
	if f.Op == tandem.FilterIn {
		n = 1 + rng.IntN(4)
	}
	for range n {
		v := m.randValue(rng, attr)
		if f.Op == tandem.FilterPrefix && len(v) > 1 {
			v = v[:1+rng.IntN(len(v)-1)]
		}
		f.Values = append(f.Values, v)
	}
	return f
}

// TestQueryModel checks random queries, paged through, against a simple
// model, over every planner path.
func TestQueryModel(t *testing.T) {
	for _, tc := range []struct {
		seed   uint64
		intKey bool
	}{{1, false}, {2, true}, {3, false}} {
		t.Run(fmt.Sprintf("seed=%d,intKey=%t", tc.seed, tc.intKey), func(t *testing.T) {
			testQueryModel(t, rand.New(rand.NewPCG(tc.seed, 2)), &qmodel{intKey: tc.intKey, recs: map[string]mrec{}})
		})
	}
}

func testQueryModel(t *testing.T, rng *rand.Rand, qm *qmodel) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	sc := tandem.TableSchema{
		Name:       "m",
		Attributes: map[string]tandem.AttrType{"balance": tandem.TypeInt, "name": tandem.TypeString, "score": tandem.TypeFloat},
		Indexes:    []string{"balance", "name"},
	}
	if qm.intKey {
		sc.Attributes["id"] = tandem.TypeInt
	}
	a.apply(createTable(sc))
	model := qm.recs
	for range 300 {
		id := qm.randValue(rng, "id")
		if _, ok := model[id]; ok && rng.IntN(10) == 0 {
			a.apply(tandem.Command{Type: tandem.CmdTx, Tx: &tandem.Tx{Ops: []tandem.Op{{Op: tandem.OpDelete, Table: "m", Key: id}}}})
			delete(model, id)
			continue
		}
		m := mrec{"id": qm.mparse("id", id)}
		rec := map[string]any{"id": m["id"]}
		for _, attr := range modelAttrs[1:] {
			if rng.IntN(5) == 0 {
				continue
			}
			m[attr] = qm.mparse(attr, qm.randValue(rng, attr))
			rec[attr] = m[attr]
		}
		a.apply(upsert("m", rec))
		model[id] = m
	}
	plans := map[string]int{}
	for i := range 600 {
		q := &tandem.Query{Table: "m", Limit: 1 + rng.IntN(7), Desc: rng.IntN(2) == 0}
		for range rng.IntN(3) {
			q.Filters = append(q.Filters, qm.randFilter(rng, false))
		}
		if rng.IntN(4) == 0 {
			q.Or = [][]tandem.Filter{{qm.randFilter(rng, true), qm.randFilter(rng, true)}}
		}
		if k := rng.IntN(len(modelAttrs) + 1); k < len(modelAttrs) {
			q.Sort = modelAttrs[k]
		}
		want := qm.query(q)

		var got []string
		for page := 0; ; page++ {
			res, err := s.Query(q)
			if err != nil {
				t.Fatalf("query %d %+v: %v", i, q, err)
			}
			plans[res.Plan]++
			if len(res.Records) > q.Limit || (res.Next != "" && len(res.Records) != q.Limit) {
				t.Fatalf("query %d: page of %d records with limit %d", i, len(res.Records), q.Limit)
			}
			got = append(got, recordIDs(t, res.Records)...)
			if res.Next == "" {
				break
			}
			q.Cursor = res.Next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("query %d %+v:\n got %v\nwant %v", i, q, got, want)
		}
		q.Count, q.Cursor = true, ""
		res, err := s.Query(q)
		if err != nil || *res.Count != len(want) || len(res.Records) != 0 {
			t.Fatalf("count query %d: %v, want %d", i, err, len(want))
		}
	}
	for _, p := range []string{"pk get", "pk range", "scan", "index balance eq", "index name in", "index balance range", "index name range", "index balance order"} {
		if plans[p] == 0 {
			t.Errorf("no query used plan %q (plans: %v)", p, plans)
		}
	}
}

func (m *qmodel) query(q *tandem.Query) []string {
	var rows []mrec
	for _, r := range m.recs {
		ok := true
		for _, f := range q.Filters {
			ok = ok && m.mmatch(r, f)
		}
		for _, g := range q.Or {
			anyOK := false
			for _, f := range g {
				anyOK = anyOK || m.mmatch(r, f)
			}
			ok = ok && anyOK
		}
		if ok {
			rows = append(rows, r)
		}
	}
	slices.SortFunc(rows, func(a, b mrec) int {
		c := 0
		if q.Sort != "" {
			c = mcompare(a[q.Sort], b[q.Sort])
		}
		if c == 0 {
			c = mcompare(a["id"], b["id"])
		}
		if q.Desc {
			c = -c
		}
		return c
	})
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = fmt.Sprint(r["id"])
	}
	return ids
}

func recordIDs(t *testing.T, recs []json.RawMessage) []string {
	var ids []string
	for _, r := range recs {
		var m struct {
			ID      any    `json:"id"`
			Version uint64 `json:"_version"`
		}
		if err := json.Unmarshal(r, &m); err != nil || m.Version == 0 {
			t.Fatalf("bad record %s: %v", r, err)
		}
		ids = append(ids, fmt.Sprint(m.ID))
	}
	return ids
}

func TestQueryErrors(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	a := newApplier(t, s)
	a.apply(createTable(tandem.TableSchema{Name: "t", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"}}))
	for i := range 5 {
		a.apply(upsert("t", map[string]any{"id": strconv.Itoa(i), "n": i, "u": i}))
	}
	res, err := s.Query(&tandem.Query{Table: "t", Limit: 2, Sort: "n"})
	if err != nil || res.Next == "" {
		t.Fatalf("first page: %v %+v", err, res)
	}
	cursor := res.Next
	store.SetSortLimit(s, 3)

	tests := []struct {
		name string
		q    tandem.Query
		want string
	}{
		{"nil-free bad limit", tandem.Query{Table: "t", Limit: tandem.MaxLimit + 1}, "limit"},
		{"negative limit", tandem.Query{Table: "t", Limit: -1}, "limit"},
		{"bad sort name", tandem.Query{Table: "t", Sort: "_x"}, "attribute name"},
		{"bad select", tandem.Query{Table: "t", Select: []string{"a b"}}, "attribute name"},
		{"cursor of another sort", tandem.Query{Table: "t", Sort: "u", Cursor: cursor}, "different query"},
		{"cursor of another direction", tandem.Query{Table: "t", Sort: "n", Desc: true, Cursor: cursor}, "different query"},
		{"cursor of another filter", tandem.Query{Table: "t", Sort: "n", Cursor: cursor, Filters: []tandem.Filter{{Attr: "n", Op: "gt", Values: []string{"0"}}}}, "different query"},
		{"garbage cursor", tandem.Query{Table: "t", Cursor: "!!"}, "malformed"},
		{"unknown op", tandem.Query{Table: "t", Filters: []tandem.Filter{{Attr: "n", Op: "like", Values: []string{"1"}}}}, "unknown operator"},
		{"two values", tandem.Query{Table: "t", Filters: []tandem.Filter{{Attr: "n", Op: "eq", Values: []string{"1", "2"}}}}, "one value"},
		{"empty in", tandem.Query{Table: "t", Filters: []tandem.Filter{{Attr: "n", Op: "in"}}}, "at least one"},
		{"empty or", tandem.Query{Table: "t", Or: [][]tandem.Filter{{}}}, "or group 1 is empty"},
		{"sort needs an index", tandem.Query{Table: "t", Sort: "u"}, "sorting by u needs an index on u for more than 3"},
		{"pk order over an index range", tandem.Query{Table: "t", Filters: []tandem.Filter{{Attr: "n", Op: "ge", Values: []string{"0"}}}}, "add sort=n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Query(&tt.q)
			if tandem.ErrorCode(err) != tandem.CodeInvalid || !strings.Contains(tandem.ErrorMessage(err), tt.want) {
				t.Fatalf("Query: %v, want invalid containing %q", err, tt.want)
			}
		})
	}
	// Ordered plans and counts are not limited.
	for _, q := range []tandem.Query{
		{Table: "t", Sort: "n"},
		{Table: "t", Sort: "u", Count: true},
		{Table: "t", Limit: 2},
	} {
		if _, err := s.Query(&q); err != nil {
			t.Errorf("Query(%+v): %v", q, err)
		}
	}
	if _, err := s.Query(&tandem.Query{Table: "t", Sort: "n", Cursor: cursor}); err != nil {
		t.Errorf("cursor with its own query: %v", err)
	}
}
