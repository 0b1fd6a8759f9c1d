package tandem

import "encoding/json"

// FilterOp is a comparison in a query filter.
type FilterOp string

// Filter operators.
const (
	FilterEq     FilterOp = "eq"
	FilterNe     FilterOp = "ne"
	FilterGt     FilterOp = "gt"
	FilterGe     FilterOp = "ge"
	FilterLt     FilterOp = "lt"
	FilterLe     FilterOp = "le"
	FilterPrefix FilterOp = "prefix" // strings only
	FilterIn     FilterOp = "in"     // set membership; Values has every member
)

// Filter compares one attribute with literal values. Values are the raw
// strings from the query; they are converted to the attribute's declared
// type (or inferred for undeclared attributes) when the query is planned.
type Filter struct {
	Attr   string   `json:"attr"`
	Op     FilterOp `json:"op"`
	Values []string `json:"values"`
}

// Query selects records of one table. Filters are ANDed; each group in Or
// is a disjunction that must also hold (so the whole is a conjunction of
// Filters and of each OR group).
type Query struct {
	Table   string     `json:"table"`
	Filters []Filter   `json:"filters,omitempty"`
	Or      [][]Filter `json:"or,omitempty"`
	Sort    string     `json:"sort,omitempty"` // attribute; empty means primary key order
	Desc    bool       `json:"desc,omitempty"`
	Limit   int        `json:"limit,omitempty"`  // 0 means DefaultLimit
	Cursor  string     `json:"cursor,omitempty"` // from a previous QueryResult.Next
	Select  []string   `json:"select,omitempty"` // attributes to return; empty means all
	Count   bool       `json:"count,omitempty"`  // return only the number of matches
}

// Query limits.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// QueryResult is one page of a query.
type QueryResult struct {
	// Records are JSON objects, each with its "_version" attribute.
	Records []json.RawMessage `json:"records"`
	// Next is the cursor for the following page, empty on the last one.
	Next string `json:"next,omitempty"`
	// Count is set for count queries: the number of matching records.
	Count *int `json:"count,omitempty"`
	// Plan says how the query was served, e.g. "index balance range" or
	// "scan"; for operators and tests.
	Plan string `json:"plan,omitempty"`
}

// RecordData is a stored record as read: its JSON and version.
type RecordData struct {
	Version uint64
	JSON    []byte
}
