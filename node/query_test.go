package node_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
)

// acct is the model of one record of the query test's table. A nil field
// is an absent value: the attribute is null in the record (even i) or
// missing from it (odd i).
type acct struct {
	i         int
	id        string
	name      *string
	balance   *int64
	score     *float64
	active    *bool
	joined    *time.Time
	joinedRaw string // as written, possibly with a zone offset
	city      *string
	tier      int // undeclared: stored as a JSON number
	version   uint64
}

func ptr[T any](v T) *T { return &v }

// queryAccounts returns 60 records with shared and missing values, negative
// and extreme numbers, names sharing prefixes and times written in
// different zones.
func queryAccounts() []*acct {
	names := []string{"Al", "Alice", "Alicia", "Alan", "Bob", "Bobby", "carol", "Carol", "Dave"}
	cities := []string{"Oslo", "Paris", "Osaka"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plus2 := time.FixedZone("", 2*3600)
	var out []*acct
	for i := range 60 {
		a := &acct{i: i, id: fmt.Sprintf("k%02d", i), tier: i % 3}
		if i%10 != 9 {
			a.name = ptr(names[i%10])
		}
		switch {
		case i%11 == 5:
		case i == 1:
			a.balance = ptr(int64(1<<53 + 1)) // not exact as a float64
		case i == 2:
			a.balance = ptr(int64(math.MinInt64))
		default:
			a.balance = ptr(int64(i*37%50 - 25))
		}
		if i%7 != 3 {
			a.score = ptr(float64(i%13)*1.25 - 5)
		}
		if i%4 != 2 {
			a.active = ptr(i%3 == 0)
		}
		if i%9 != 4 {
			tm := base.Add(time.Duration(i%6) * 24 * time.Hour)
			switch {
			case i == 7:
				tm = tm.Add(500 * time.Millisecond)
			case i == 11:
				tm = time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)
			}
			a.joined = &tm
			a.joinedRaw = tm.Format(time.RFC3339Nano)
			if i%6 == 5 {
				a.joinedRaw = tm.In(plus2).Format(time.RFC3339Nano)
			}
		}
		if i%4 != 3 {
			a.city = ptr(cities[i%4])
		}
		out = append(out, a)
	}
	return out
}

// doc returns the record as written.
func (a *acct) doc() map[string]any {
	d := map[string]any{"id": a.id, "tier": a.tier, "meta": map[string]any{"i": a.i, "tags": []string{"x", a.id}}}
	opt := func(name string, isNil bool, v any) {
		switch {
		case !isNil:
			d[name] = v
		case a.i%2 == 0:
			d[name] = nil
		}
	}
	opt("name", a.name == nil, deref(a.name))
	opt("balance", a.balance == nil, deref(a.balance))
	opt("score", a.score == nil, deref(a.score))
	opt("active", a.active == nil, deref(a.active))
	opt("joined", a.joined == nil, a.joinedRaw)
	opt("city", a.city == nil, deref(a.city))
	return d
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// cmpNil orders two optional values with absent ones first.
func cmpNil[T any](a, b *T, c func(T, T) int) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return c(*a, *b)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// Model sort orders by attribute.
var (
	byName    = func(a, b *acct) int { return cmpNil(a.name, b.name, strings.Compare) }
	byBalance = func(a, b *acct) int { return cmpNil(a.balance, b.balance, cmp.Compare[int64]) }
	byScore   = func(a, b *acct) int { return cmpNil(a.score, b.score, cmp.Compare[float64]) }
	byActive  = func(a, b *acct) int { return cmpNil(a.active, b.active, cmpBool) }
	byJoined  = func(a, b *acct) int { return cmpNil(a.joined, b.joined, time.Time.Compare) }
	byCity    = func(a, b *acct) int { return cmpNil(a.city, b.city, strings.Compare) }
)

// Model filters: an absent value matches nothing but ne.
func nameIs(pred func(string) bool) func(*acct) bool {
	return func(a *acct) bool { return a.name != nil && pred(*a.name) }
}
func balanceIs(pred func(int64) bool) func(*acct) bool {
	return func(a *acct) bool { return a.balance != nil && pred(*a.balance) }
}
func scoreIs(pred func(float64) bool) func(*acct) bool {
	return func(a *acct) bool { return a.score != nil && pred(*a.score) }
}
func joinedIs(pred func(time.Time) bool) func(*acct) bool {
	return func(a *acct) bool { return a.joined != nil && pred(*a.joined) }
}
func cityIs(pred func(string) bool) func(*acct) bool {
	return func(a *acct) bool { return a.city != nil && pred(*a.city) }
}
func activeIs(v bool) func(*acct) bool {
	return func(a *acct) bool { return a.active != nil && *a.active == v }
}
func and(ps ...func(*acct) bool) func(*acct) bool {
	return func(a *acct) bool {
		for _, p := range ps {
			if !p(a) {
				return false
			}
		}
		return true
	}
}
func or(ps ...func(*acct) bool) func(*acct) bool {
	return func(a *acct) bool {
		for _, p := range ps {
			if p(a) {
				return true
			}
		}
		return false
	}
}
func eq[T comparable](v T) func(T) bool { return func(x T) bool { return x == v } }

// expected returns the keys the model says a query returns: ordered by
// the sort attribute (nil: primary key), ties by primary key, the whole
// order reversed when descending.
func expected(accts []*acct, match func(*acct) bool, sortBy func(a, b *acct) int, desc bool) []string {
	var sel []*acct
	for _, a := range accts {
		if match == nil || match(a) {
			sel = append(sel, a)
		}
	}
	slices.SortFunc(sel, func(a, b *acct) int {
		if sortBy != nil {
			if c := sortBy(a, b); c != 0 {
				return c
			}
		}
		return strings.Compare(a.id, b.id)
	})
	if desc {
		slices.Reverse(sel)
	}
	keys := []string{}
	for _, a := range sel {
		keys = append(keys, a.id)
	}
	return keys
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatalf("test query %q: %v", s, err)
	}
	return v
}

func withParam(v url.Values, name, value string) url.Values {
	out := make(url.Values, len(v)+1)
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	out.Set(name, value)
	return out
}

// pageKeys returns the primary keys of a page's records, checking that
// each carries the version the model holds.
func pageKeys(t *testing.T, res *tandem.QueryResult, byID map[string]*acct) []string {
	t.Helper()
	keys := []string{}
	for _, raw := range res.Records {
		var r struct {
			ID      string `json:"id"`
			Version uint64 `json:"_version"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("record %s: %v", raw, err)
		}
		if a := byID[r.ID]; a == nil || r.Version != a.version {
			t.Fatalf("record %s is not one written, with the version it got", raw)
		}
		keys = append(keys, r.ID)
	}
	return keys
}

// wantAPIError checks that err is an API error with the given status and
// code whose message contains msg.
func wantAPIError(t *testing.T, what string, err error, status int, code tandem.Code, msg string) {
	t.Helper()
	var e *client.Error
	switch {
	case err == nil:
		t.Errorf("%s: no error; want %d %s", what, status, code)
	case !errors.As(err, &e):
		t.Errorf("%s: error %v is not an API error", what, err)
	case e.Status != status || e.Code != code || !strings.Contains(e.Message, msg):
		t.Errorf("%s: got %d %s %q; want %d %s with a message containing %q", what, e.Status, e.Code, e.Message, status, code, msg)
	}
}

// TestQueryHTTP runs queries of every kind through the HTTP API of an
// in-process cluster and checks their results against a model.
func TestQueryHTTP(t *testing.T) {
	nodes, c := startCluster(t, 3)
	ctx := context.Background()
	const table = "accounts"
	schema := tandem.TableSchema{
		Name: table,
		Attributes: map[string]tandem.AttrType{
			"id": tandem.TypeString, "name": tandem.TypeString, "balance": tandem.TypeInt,
			"score": tandem.TypeFloat, "active": tandem.TypeBool, "joined": tandem.TypeTime,
			"city": tandem.TypeString, "meta": tandem.TypeJSON,
		},
		Indexes: []string{"balance", "name", "joined"},
	}
	if _, _, err := c.CreateTable(ctx, schema); err != nil {
		t.Fatal(err)
	}
	// A second table, for read-your-writes and foreign cursors.
	if _, _, err := c.CreateTable(ctx, tandem.TableSchema{Name: "ryw", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"}}); err != nil {
		t.Fatal(err)
	}
	accts := queryAccounts()
	byID := make(map[string]*acct, len(accts))
	for _, a := range accts {
		byID[a.id] = a
		nc := c.Node(a.i % len(nodes))
		var res client.WriteResult
		var err error
		if a.i%2 == 0 {
			res, err = nc.Insert(ctx, table, a.doc())
		} else {
			res, err = nc.Put(ctx, table, a.id, a.doc())
		}
		if err != nil {
			t.Fatalf("write %s via node %d: %v", a.id, a.i%len(nodes)+1, err)
		}
		a.version = res.Version
	}

	t.Run("records round trip", func(t *testing.T) {
		res, err := c.Query(ctx, table, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Records) != len(accts) || res.Next != "" || res.Plan != "scan" {
			t.Fatalf("got %d records, next %q, plan %q; want %d, none, scan", len(res.Records), res.Next, res.Plan, len(accts))
		}
		for i, raw := range res.Records {
			got := decodeNumbers(t, raw)
			a := accts[i]
			if v, _ := got["_version"].(json.Number).Int64(); uint64(v) != a.version {
				t.Errorf("%s: _version %v, want %d", a.id, got["_version"], a.version)
			}
			delete(got, "_version")
			want, _ := json.Marshal(a.doc())
			if w := decodeNumbers(t, want); !reflect.DeepEqual(got, w) {
				t.Errorf("record %d:\n got %s\nwant %s", i, raw, want)
			}
		}
	})

	for _, tc := range []struct {
		q      string
		match  func(*acct) bool
		sortBy func(a, b *acct) int
		desc   bool
		plan   string
		want   []string // if set, the model must agree
	}{
		// Equality.
		{q: "balance=7", match: balanceIs(eq[int64](7)), plan: "index balance eq"},
		{q: "balance=eq.-14", match: balanceIs(eq[int64](-14)), plan: "index balance eq", want: []string{"k03", "k53"}},
		{q: "balance=9007199254740993", match: balanceIs(eq[int64](1<<53 + 1)), plan: "index balance eq", want: []string{"k01"}},
		{q: "balance=-9223372036854775808", match: balanceIs(eq[int64](math.MinInt64)), plan: "index balance eq", want: []string{"k02"}},
		{q: "name=Alice", match: nameIs(eq("Alice")), plan: "index name eq"},
		{q: "name=carol", match: nameIs(eq("carol")), plan: "index name eq"},
		{q: "joined=2026-01-06T00:00:00Z", match: joinedIs(func(tm time.Time) bool { return tm.Equal(time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)) }), plan: "index joined eq"},
		{q: "joined=2026-01-02T00:00:00.5Z", match: joinedIs(func(tm time.Time) bool { return tm.Nanosecond() != 0 }), plan: "index joined eq", want: []string{"k07"}},
		{q: "score=-2.5", match: scoreIs(eq(-2.5)), plan: "scan"},
		{q: "city=Oslo", match: cityIs(eq("Oslo")), plan: "scan"},
		{q: "active=true", match: activeIs(true), plan: "scan"},
		{q: "tier=2", match: func(a *acct) bool { return a.tier == 2 }, plan: "scan"},
		{q: "id=k42", match: func(a *acct) bool { return a.id == "k42" }, plan: "pk get", want: []string{"k42"}},
		{q: "name=Nobody", match: nameIs(eq("Nobody")), plan: "index name eq", want: []string{}},
		// Not equal: absent values match.
		{q: "balance=ne.0", match: func(a *acct) bool { return a.balance == nil || *a.balance != 0 }, plan: "scan"},
		{q: "name=ne.Bob", match: func(a *acct) bool { return a.name == nil || *a.name != "Bob" }, plan: "scan"},
		{q: "active=ne.true&city=ne.Paris", match: func(a *acct) bool {
			return (a.active == nil || !*a.active) && (a.city == nil || *a.city != "Paris")
		}, plan: "scan"},
		// Ranges.
		{q: "balance=ge.-5&balance=lt.10", match: balanceIs(func(b int64) bool { return b >= -5 && b < 10 }), plan: "index balance range"},
		{q: "balance=gt.-5&balance=le.10&score=ge.0", match: and(balanceIs(func(b int64) bool { return b > -5 && b <= 10 }), scoreIs(func(s float64) bool { return s >= 0 })), plan: "index balance range"},
		{q: "balance=lt.-20", match: balanceIs(func(b int64) bool { return b < -20 }), plan: "index balance range"},
		{q: "balance=gt.10&balance=lt.5", match: balanceIs(func(b int64) bool { return false }), plan: "index balance range", want: []string{}},
		{q: "score=gt.-1.25&score=lt.5", match: scoreIs(func(s float64) bool { return s > -1.25 && s < 5 }), plan: "scan"},
		{q: "joined=ge.2026-01-03T00:00:00Z&joined=lt.2026-01-05T00:00:00Z", match: joinedIs(func(tm time.Time) bool {
			return !tm.Before(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)) && tm.Before(time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
		}), plan: "index joined range"},
		{q: "joined=lt.1970-01-01T00:00:00Z", match: joinedIs(func(tm time.Time) bool { return tm.Year() < 1970 }), plan: "index joined range", want: []string{"k11"}},
		{q: "id=ge.k50&id=lt.k55", match: func(a *acct) bool { return a.id >= "k50" && a.id < "k55" }, plan: "pk range", want: []string{"k50", "k51", "k52", "k53", "k54"}},
		// Prefix.
		{q: "name=prefix.Al", match: nameIs(func(s string) bool { return strings.HasPrefix(s, "Al") }), plan: "index name range"},
		{q: "name=prefix.Ali", match: nameIs(func(s string) bool { return strings.HasPrefix(s, "Ali") }), plan: "index name range"},
		{q: "name=prefix.Bob&balance=ge.0", match: and(nameIs(func(s string) bool { return strings.HasPrefix(s, "Bob") }), balanceIs(func(b int64) bool { return b >= 0 })), plan: "index balance range"},
		{q: "city=prefix.Os", match: cityIs(func(s string) bool { return strings.HasPrefix(s, "Os") }), plan: "scan"},
		// In.
		{q: "name=in.(Bob,carol,Nobody)", match: nameIs(func(s string) bool { return s == "Bob" || s == "carol" }), plan: "index name in"},
		{q: "balance=in.(-25,0,7,24,7)", match: balanceIs(func(b int64) bool { return b == -25 || b == 0 || b == 7 || b == 24 }), plan: "index balance in"},
		{q: `city=in.(Paris,"Osaka")`, match: cityIs(func(s string) bool { return s == "Paris" || s == "Osaka" }), plan: "scan"},
		{q: "id=in.(k59,k03,k10,zzz)", match: func(a *acct) bool { return a.id == "k03" || a.id == "k10" || a.id == "k59" }, plan: "pk get", want: []string{"k03", "k10", "k59"}},
		// Or groups.
		{q: "or=(balance.lt.-20,name.eq.Dave)", match: or(balanceIs(func(b int64) bool { return b < -20 }), nameIs(eq("Dave"))), plan: "scan"},
		{q: "or=(score.ge.7.5,active.eq.true)&city=Oslo", match: and(or(scoreIs(func(s float64) bool { return s >= 7.5 }), activeIs(true)), cityIs(eq("Oslo"))), plan: "scan"},
		{q: "or=(balance.lt.0,balance.gt.20)&or=(name.prefix.A,name.prefix.B)", match: and(
			or(balanceIs(func(b int64) bool { return b < 0 }), balanceIs(func(b int64) bool { return b > 20 })),
			or(nameIs(func(s string) bool { return strings.HasPrefix(s, "A") }), nameIs(func(s string) bool { return strings.HasPrefix(s, "B") }))), plan: "scan"},
		{q: "or=(city.eq.Paris,name.ne.Al)&balance=ge.0", match: and(
			or(cityIs(eq("Paris")), func(a *acct) bool { return a.name == nil || *a.name != "Al" }),
			balanceIs(func(b int64) bool { return b >= 0 })), plan: "index balance range"},
		// Sorting: served in index order ...
		{q: "sort=balance", sortBy: byBalance, plan: "index balance order"},
		{q: "sort=-balance", sortBy: byBalance, desc: true, plan: "index balance order"},
		{q: "sort=-joined", sortBy: byJoined, desc: true, plan: "index joined order"},
		{q: "sort=name&city=Oslo", match: cityIs(eq("Oslo")), sortBy: byName, plan: "index name order"},
		{q: "sort=-name&name=prefix.A", match: nameIs(func(s string) bool { return strings.HasPrefix(s, "A") }), sortBy: byName, desc: true, plan: "index name range"},
		{q: "sort=balance&balance=ge.-10&balance=le.10", match: balanceIs(func(b int64) bool { return b >= -10 && b <= 10 }), sortBy: byBalance, plan: "index balance range"},
		{q: "sort=-id", desc: true, plan: "scan"},
		{q: "sort=-id&joined=2026-01-06T00:00:00Z", match: joinedIs(func(tm time.Time) bool { return tm.Equal(time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)) }), desc: true, plan: "index joined eq"},
		{q: "sort=-id&id=prefix.k1", match: func(a *acct) bool { return strings.HasPrefix(a.id, "k1") }, desc: true, plan: "pk range"},
		{q: "sort=-id&id=in.(k59,k03,k10)", match: func(a *acct) bool { return a.id == "k03" || a.id == "k10" || a.id == "k59" }, desc: true, plan: "pk get", want: []string{"k59", "k10", "k03"}},
		// ... and sorted in memory.
		{q: "sort=score", sortBy: byScore, plan: "scan"},
		{q: "sort=-score&active=false", match: activeIs(false), sortBy: byScore, desc: true, plan: "scan"},
		{q: "sort=city", sortBy: byCity, plan: "scan"},
		{q: "sort=-tier", sortBy: func(a, b *acct) int { return cmp.Compare(a.tier, b.tier) }, desc: true, plan: "scan"},
		{q: "sort=-active", sortBy: byActive, desc: true, plan: "scan"},
		{q: "sort=joined&balance=ge.0", match: balanceIs(func(b int64) bool { return b >= 0 }), sortBy: byJoined, plan: "index balance range"},
		{q: "sort=-balance&name=in.(Al,Bob,Dave)", match: nameIs(func(s string) bool { return s == "Al" || s == "Bob" || s == "Dave" }), sortBy: byBalance, desc: true, plan: "index name in"},
	} {
		t.Run(tc.q, func(t *testing.T) {
			params := mustQuery(t, tc.q)
			want := expected(accts, tc.match, tc.sortBy, tc.desc)
			if tc.want != nil && !slices.Equal(want, tc.want) {
				t.Fatalf("the model disagrees with the test: %v, want %v", want, tc.want)
			}
			res, err := c.Query(ctx, table, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := pageKeys(t, res, byID); !slices.Equal(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
			if res.Plan != tc.plan || res.Next != "" || res.Count != nil {
				t.Errorf("plan %q, next %q, count %v; want plan %q, no next, no count", res.Plan, res.Next, res.Count, tc.plan)
			}

			res, err = c.Query(ctx, table, withParam(params, "count", "true"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Count == nil || *res.Count != len(want) || len(res.Records) != 0 {
				t.Errorf("count=true: count %v and %d records; want %d and none", res.Count, len(res.Records), len(want))
			}

			// Page through it; the pages must add up to the whole.
			const limit = 7
			var paged []string
			q := withParam(params, "limit", fmt.Sprint(limit))
			for page := 1; ; page++ {
				res, err := c.Query(ctx, table, q)
				if err != nil {
					t.Fatalf("page %d: %v", page, err)
				}
				keys := pageKeys(t, res, byID)
				paged = append(paged, keys...)
				if res.Plan != tc.plan {
					t.Errorf("page %d: plan %q, want %q", page, res.Plan, tc.plan)
				}
				if res.Next == "" {
					if len(paged) > 0 && len(keys) == 0 {
						t.Errorf("page %d is empty", page)
					}
					break
				}
				if len(keys) != limit {
					t.Fatalf("page %d has %d records and a cursor; want %d", page, len(keys), limit)
				}
				if page > len(accts) {
					t.Fatal("cursors do not end")
				}
				q.Set("cursor", res.Next)
			}
			if !slices.Equal(paged, want) && !(len(paged) == 0 && len(want) == 0) {
				t.Errorf("pages of %d:\n got %v\nwant %v", limit, paged, want)
			}
		})
	}

	t.Run("pages that fill exactly", func(t *testing.T) {
		for _, q := range []string{"sort=-balance", "sort=score", "balance=ne.0&sort=name"} {
			var pages []*tandem.QueryResult
			for p, err := range c.QueryPages(ctx, table, mustQuery(t, q+"&limit=10")) {
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				pages = append(pages, p)
			}
			total := 0
			for _, p := range pages {
				total += len(p.Records)
			}
			if n := (total + 9) / 10; len(pages) != n || len(pages[len(pages)-1].Records) == 0 {
				t.Errorf("%s: %d records in %d pages; want %d pages, none empty", q, total, len(pages), n)
			}
		}
	})

	t.Run("cursor with another limit and select", func(t *testing.T) {
		first, err := c.Query(ctx, table, mustQuery(t, "sort=balance&limit=5"))
		if err != nil {
			t.Fatal(err)
		}
		rest, err := c.Query(ctx, table, url.Values{"sort": {"balance"}, "limit": {"20"}, "select": {"balance"}, "cursor": {first.Next}})
		if err != nil {
			t.Fatal(err)
		}
		want := expected(accts, nil, byBalance, false)
		got := append(pageKeys(t, first, byID), pageKeys(t, rest, byID)...)
		if !slices.Equal(got, want[:25]) {
			t.Errorf("got  %v\nwant %v", got, want[:25])
		}
	})

	t.Run("count ignores limit", func(t *testing.T) {
		res, err := c.Query(ctx, table, mustQuery(t, "count=true&limit=1&balance=ge.0"))
		if err != nil {
			t.Fatal(err)
		}
		if want := len(expected(accts, balanceIs(func(b int64) bool { return b >= 0 }), nil, false)); res.Count == nil || *res.Count != want {
			t.Errorf("count %v, want %d", res.Count, want)
		}
	})

	t.Run("select", func(t *testing.T) {
		for _, tc := range []struct {
			sel  string
			attr []string // the selected attributes besides id
		}{
			{"name,balance", []string{"name", "balance"}},
			{"id,city", []string{"city"}},
			{"meta", []string{"meta"}},
			{"nothing", nil},
		} {
			res, err := c.Query(ctx, table, url.Values{"select": {tc.sel}, "balance": {"ge.0"}, "sort": {"-balance"}})
			if err != nil {
				t.Fatal(err)
			}
			want := expected(accts, balanceIs(func(b int64) bool { return b >= 0 }), byBalance, true)
			if got := pageKeys(t, res, byID); !slices.Equal(got, want) {
				t.Fatalf("select=%s: got %v, want %v", tc.sel, got, want)
			}
			for _, raw := range res.Records {
				got := decodeNumbers(t, raw)
				id := got["id"].(string)
				full, _ := json.Marshal(byID[id].doc())
				doc := decodeNumbers(t, full)
				wantRec := map[string]any{"id": id, "_version": got["_version"]}
				for _, a := range tc.attr {
					if v, ok := doc[a]; ok {
						wantRec[a] = v
					}
				}
				if !reflect.DeepEqual(got, wantRec) {
					t.Errorf("select=%s: got %s, want %v", tc.sel, raw, wantRec)
				}
			}
		}
	})

	t.Run("read your writes on a follower", func(t *testing.T) {
		leader, follower := -1, -1
		for i, nd := range nodes {
			if nd.Self().Leader {
				leader = i
			} else if follower < 0 {
				follower = i
			}
		}
		if leader < 0 || follower < 0 {
			t.Fatalf("leader %d, follower %d", leader, follower)
		}
		w, r := c.Node(leader), c.Node(follower)
		for i := range 15 {
			key := fmt.Sprintf("r%02d", i)
			res, err := w.Put(ctx, "ryw", key, map[string]any{"n": i})
			if err != nil {
				t.Fatal(err)
			}
			page, err := r.Query(ctx, "ryw", url.Values{"n": {fmt.Sprint(i)}}, client.Local(), client.MinIndex(res.Index))
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Records) != 1 || !bytes.Contains(page.Records[0], []byte(`"id":"`+key+`"`)) {
				t.Fatalf("follower, local, min_index %d: got %s; want %s", res.Index, page.Records, key)
			}
			count, err := r.Query(ctx, "ryw", url.Values{"count": {"true"}}, client.Local(), client.MinIndex(res.Index))
			if err != nil {
				t.Fatal(err)
			}
			if count.Count == nil || *count.Count != i+1 {
				t.Fatalf("follower, local, min_index %d: count %v, want %d", res.Index, count.Count, i+1)
			}
		}
		_, err := r.Query(ctx, "ryw", url.Values{"timeout": {"100ms"}}, client.Local(), client.MinIndex(1<<40))
		wantAPIError(t, "min_index far ahead", err, 504, tandem.CodeTimeout, "has not applied index")
	})

	t.Run("errors", func(t *testing.T) {
		cursor := func(q string) string {
			res, err := c.Query(ctx, table, mustQuery(t, q))
			if err != nil || res.Next == "" {
				t.Fatalf("%s: next %q, err %v", q, res.Next, err)
			}
			return res.Next
		}
		byBalance := cursor("sort=balance&limit=5")
		scanCursor := cursor("limit=5")
		for _, tc := range []struct {
			table  string
			params url.Values
			status int
			code   tandem.Code
			msg    string
		}{
			{"nosuch", nil, 404, tandem.CodeNotFound, "nosuch"},
			{"nosuch", url.Values{"balance": {"1"}}, 404, tandem.CodeNotFound, "nosuch"},
			{table, url.Values{"balance": {"between.1"}}, 400, tandem.CodeInvalid, "balance"},
			{table, url.Values{"balance": {"prefix.1"}}, 400, tandem.CodeInvalid, "prefix"},
			{table, url.Values{"score": {"gt.high"}}, 400, tandem.CodeInvalid, "score"},
			{table, url.Values{"joined": {"ge.yesterday"}}, 400, tandem.CodeInvalid, "joined"},
			{table, url.Values{"active": {"yes"}}, 400, tandem.CodeInvalid, "active"},
			{table, url.Values{"meta": {"x"}}, 400, tandem.CodeInvalid, "json"},
			{table, url.Values{"or": {"(balance)"}}, 400, tandem.CodeInvalid, "or"},
			{table, url.Values{"or": {"(name.in.(a,b))"}}, 400, tandem.CodeInvalid, "or"},
			{table, url.Values{"name": {"in.(a,"}}, 400, tandem.CodeInvalid, "name"},
			{table, url.Values{"name": {""}}, 400, tandem.CodeInvalid, "name"},
			{table, url.Values{"sort": {"-"}}, 400, tandem.CodeInvalid, "sort"},
			{table, url.Values{"limit": {"0"}}, 400, tandem.CodeInvalid, "limit"},
			{table, url.Values{"limit": {"-1"}}, 400, tandem.CodeInvalid, "limit"},
			{table, url.Values{"limit": {"10001"}}, 400, tandem.CodeInvalid, "limit"},
			{table, url.Values{"limit": {"ten"}}, 400, tandem.CodeInvalid, "limit"},
			{table, url.Values{"limit": {"5", "6"}}, 400, tandem.CodeInvalid, "limit"},
			{table, url.Values{"count": {"yes"}}, 400, tandem.CodeInvalid, "count"},
			{table, url.Values{"select": {"name,name"}}, 400, tandem.CodeInvalid, "select"},
			{table, url.Values{"consistency": {"eventual"}}, 400, tandem.CodeInvalid, "consistency"},
			{table, url.Values{"min_index": {"soon"}}, 400, tandem.CodeInvalid, "min_index"},
			{table, url.Values{"cursor": {"not-a-cursor"}}, 400, tandem.CodeInvalid, "cursor"},
			{table, url.Values{"sort": {"-balance"}, "cursor": {byBalance}}, 400, tandem.CodeInvalid, "different query"},
			{table, url.Values{"sort": {"balance"}, "balance": {"ge.0"}, "cursor": {byBalance}}, 400, tandem.CodeInvalid, "different query"},
			{table, url.Values{"cursor": {byBalance}}, 400, tandem.CodeInvalid, "different query"},
			{table, url.Values{"sort": {"balance"}, "cursor": {scanCursor}}, 400, tandem.CodeInvalid, "different query"},
			{"ryw", url.Values{"cursor": {scanCursor}}, 400, tandem.CodeInvalid, "different query"},
		} {
			_, err := c.Query(ctx, tc.table, tc.params)
			wantAPIError(t, fmt.Sprintf("%s?%s", tc.table, tc.params.Encode()), err, tc.status, tc.code, tc.msg)
		}
	})
}

// decodeNumbers decodes a JSON object keeping numbers exact.
func decodeNumbers(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return m
}
