package query_test

import (
	"net/url"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/query"
)

// FuzzParse checks that Parse never panics and reports every problem as
// CodeInvalid. The seed corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add("name=Alice&sort=-balance&limit=5")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := query.Parse("t", v)
		if err != nil {
			if c := tandem.ErrorCode(err); c != tandem.CodeInvalid {
				t.Fatalf("Parse(%q): code %q: %v", raw, c, err)
			}
			return
		}
		for _, fl := range q.Filters {
			if len(fl.Values) == 0 {
				t.Fatalf("Parse(%q): filter %+v has no values", raw, fl)
			}
		}
	})
}
