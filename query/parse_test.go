package query_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/query"
)

func f(attr string, op tandem.FilterOp, vals ...string) tandem.Filter {
	return tandem.Filter{Attr: attr, Op: op, Values: vals}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want tandem.Query
	}{
		{"empty", "", tandem.Query{}},
		{"bare equality", "name=Alice", tandem.Query{Filters: []tandem.Filter{f("name", "eq", "Alice")}}},
		{"ops", "a=eq.1&b=ne.2&c=gt.3&d=ge.4&e=lt.5&g=le.6&h=prefix.Al",
			tandem.Query{Filters: []tandem.Filter{
				f("a", "eq", "1"), f("b", "ne", "2"), f("c", "gt", "3"), f("d", "ge", "4"),
				f("e", "lt", "5"), f("g", "le", "6"), f("h", "prefix", "Al"),
			}}},
		{"literal that looks like an op", "a=eq.gt.5", tandem.Query{Filters: []tandem.Filter{f("a", "eq", "gt.5")}}},
		{"unknown op prefix is a literal", "a=foo.bar", tandem.Query{Filters: []tandem.Filter{f("a", "eq", "foo.bar")}}},
		{"op without dot is a literal", "a=gt", tandem.Query{Filters: []tandem.Filter{f("a", "eq", "gt")}}},
		{"empty literal after op", "a=eq.", tandem.Query{Filters: []tandem.Filter{f("a", "eq", "")}}},
		{"repeated filters", "balance=gt.1&balance=lt.9",
			tandem.Query{Filters: []tandem.Filter{f("balance", "gt", "1"), f("balance", "lt", "9")}}},
		{"filters sorted by name", "z=1&a=2", tandem.Query{Filters: []tandem.Filter{f("a", "eq", "2"), f("z", "eq", "1")}}},
		{"in", `s=in.(a,b,"c,d")`, tandem.Query{Filters: []tandem.Filter{f("s", "in", "a", "b", "c,d")}}},
		{"in quoting", `s=in.("a\"b","x\\y",p"(q)"r,"")`,
			tandem.Query{Filters: []tandem.Filter{f("s", "in", `a"b`, `x\y`, "p(q)r", "")}}},
		{"in single", "s=in.(a)", tandem.Query{Filters: []tandem.Filter{f("s", "in", "a")}}},
		{"or", "or=(a.gt.1,b.Bob,c.prefix.x)",
			tandem.Query{Or: [][]tandem.Filter{{f("a", "gt", "1"), f("b", "eq", "Bob"), f("c", "prefix", "x")}}}},
		{"or quoted", `or=("a.eq.x,y",b.eq."(z)")`,
			tandem.Query{Or: [][]tandem.Filter{{f("a", "eq", "x,y"), f("b", "eq", "(z)")}}}},
		{"two or groups", "or=(a.1,b.2)&or=(c.3)",
			tandem.Query{Or: [][]tandem.Filter{{f("a", "eq", "1"), f("b", "eq", "2")}, {f("c", "eq", "3")}}}},
		{"sort asc", "sort=name", tandem.Query{Sort: "name"}},
		{"sort desc", "sort=-name", tandem.Query{Sort: "name", Desc: true}},
		{"limit", "limit=10000", tandem.Query{Limit: 10000}},
		{"cursor", "cursor=abc_-", tandem.Query{Cursor: "abc_-"}},
		{"select", "select=a,b", tandem.Query{Select: []string{"a", "b"}}},
		{"count", "count=true", tandem.Query{Count: true}},
		{"count false", "count=false", tandem.Query{}},
		{"read options ignored", "consistency=local&min_index=7&consistency=x", tandem.Query{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := query.Parse("t", v)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			tt.want.Table = "t"
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tt.raw, *got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		raw  string
		want string // substring of the message
	}{
		{"name=", `"name": empty value`},
		{"_version=1", `"_version"`},
		{"1abc=1", `"1abc"`},
		{"sort=a&sort=b", `"sort": given 2 times`},
		{"limit=1&limit=2", `"limit": given 2 times`},
		{"cursor=a&cursor=b", `"cursor": given 2 times`},
		{"select=a&select=b", `"select": given 2 times`},
		{"count=true&count=true", `"count": given 2 times`},
		{"sort=", `"sort": empty value`},
		{"sort=-", `"sort": attribute name is empty`},
		{"sort=a,b", `"sort"`},
		{"limit=0", `"limit"`},
		{"limit=10001", `"limit"`},
		{"limit=x", `"limit"`},
		{"limit=", `"limit": empty value`},
		{"cursor=" + strings.Repeat("a", 4097), `"cursor": longer than`},
		{"select=a,a", `"select": attribute "a" is listed twice`},
		{"select=a,", `"select": attribute name is empty`},
		{"count=yes", `"count"`},
		{"s=in.", `"s": in: want a list`},
		{"s=in.()", `"s": in: item 1 is empty`},
		{"s=in.(a,,b)", `"s": in: item 2 is empty`},
		{`s=in.("a)`, `"s": in: unterminated quote`},
		{`s=in.("a\x")`, `"s": in: inside quotes a backslash`},
		{"s=in.(a(b))", `"s": in: parentheses inside a list must be quoted`},
		{"s=in.(" + strings.Repeat("a,", 1000) + "a)", `"s": in: more than 1000 items`},
		{"or=", `"or": empty value`},
		{"or=a.eq.1", `"or": want a list`},
		{"or=(a)", `"or": alternative 1 ("a") is not attr.op.value`},
		{"or=(a.)", `"or": alternative 1`},
		{"or=(_a.eq.1)", `"or": alternative 1: attribute name "_a"`},
		{"or=(a.in.(1,2))", `"or": parentheses`},
		{`or=(a.in."(1)")`, `"or": alternative 1: in is not allowed inside or`},
		{"or=(" + strings.Repeat("a.1,", 100) + "a.1)", `"or": more than 100 items`},
	}
	for _, tt := range tests {
		t.Run(tt.raw[:min(len(tt.raw), 40)], func(t *testing.T) {
			v, err := url.ParseQuery(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			_, err = query.Parse("t", v)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.raw)
			}
			if c := tandem.ErrorCode(err); c != tandem.CodeInvalid {
				t.Fatalf("code %q, want invalid (%v)", c, err)
			}
			if msg := tandem.ErrorMessage(err); !strings.Contains(msg, tt.want) {
				t.Fatalf("message %q does not contain %q", msg, tt.want)
			}
		})
	}
}
