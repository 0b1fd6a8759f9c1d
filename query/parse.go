package query

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tandemdb/tandem"
)

// Limits on the query string.
const (
	MaxCursorLen  = 4 << 10 // bytes of a cursor
	MaxInItems    = 1000    // items of an in list
	MaxOrItems    = 100     // alternatives of one or group
	MaxParamCount = 1000    // filter and or parameters together
)

// Reserved parameter names.
const (
	paramSort        = "sort"
	paramLimit       = "limit"
	paramCursor      = "cursor"
	paramSelect      = "select"
	paramCount       = "count"
	paramOr          = "or"
	paramConsistency = "consistency"
	paramMinIndex    = "min_index"
)

// Parse builds the query on table described by the query-string parameters
// v. It returns a *tandem.Error with CodeInvalid naming the first bad
// parameter.
func Parse(table string, v url.Values) (*tandem.Query, error) {
	q := &tandem.Query{Table: table}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	filters := 0
	for _, name := range names {
		vals := v[name]
		if len(vals) == 0 {
			continue
		}
		switch name {
		case paramConsistency, paramMinIndex:
			continue
		case paramSort, paramLimit, paramCursor, paramSelect, paramCount:
			if len(vals) > 1 {
				return nil, invalid(name, "given %d times; it may appear once", len(vals))
			}
			if vals[0] == "" {
				return nil, invalid(name, "empty value")
			}
			if err := parseSingle(q, name, vals[0]); err != nil {
				return nil, err
			}
			continue
		}
		filters += len(vals)
		if filters > MaxParamCount {
			return nil, invalid(name, "more than %d filter and or parameters", MaxParamCount)
		}
		if name == paramOr {
			for _, val := range vals {
				group, err := parseOr(val)
				if err != nil {
					return nil, err
				}
				q.Or = append(q.Or, group)
			}
			continue
		}
		if err := tandem.ValidateName("attribute", name); err != nil {
			return nil, invalid(name, "%s", tandem.ErrorMessage(err))
		}
		for _, val := range vals {
			if val == "" {
				return nil, invalid(name, "empty value (write eq. to compare with the empty string)")
			}
			f, err := parseFilter(name, val, true)
			if err != nil {
				return nil, invalid(name, "%s", err)
			}
			q.Filters = append(q.Filters, f)
		}
	}
	return q, nil
}

// parseSingle parses one of the parameters that may appear only once.
func parseSingle(q *tandem.Query, name, val string) error {
	switch name {
	case paramSort:
		attr := val
		if strings.HasPrefix(attr, "-") {
			attr, q.Desc = attr[1:], true
		}
		if err := tandem.ValidateName("attribute", attr); err != nil {
			return invalid(name, "%s", tandem.ErrorMessage(err))
		}
		q.Sort = attr
	case paramLimit:
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > tandem.MaxLimit {
			return invalid(name, "%q is not an integer between 1 and %d", truncate(val), tandem.MaxLimit)
		}
		q.Limit = n
	case paramCursor:
		if len(val) > MaxCursorLen {
			return invalid(name, "longer than %d bytes", MaxCursorLen)
		}
		q.Cursor = val
	case paramSelect:
		attrs := strings.Split(val, ",")
		if len(attrs) > tandem.MaxAttributes {
			return invalid(name, "more than %d attributes", tandem.MaxAttributes)
		}
		for i, a := range attrs {
			if err := tandem.ValidateName("attribute", a); err != nil {
				return invalid(name, "%s", tandem.ErrorMessage(err))
			}
			if slices.Contains(attrs[:i], a) {
				return invalid(name, "attribute %q is listed twice", a)
			}
		}
		q.Select = attrs
	case paramCount:
		switch val {
		case "true":
			q.Count = true
		case "false":
			q.Count = false
		default:
			return invalid(name, "%q is not true or false", truncate(val))
		}
	}
	return nil
}

// invalid returns the CodeInvalid error for parameter param.
func invalid(param, format string, args ...any) error {
	e := tandem.Errorf(tandem.CodeInvalid, format, args...)
	e.Message = "query parameter " + strconv.Quote(truncate(param)) + ": " + e.Message
	return e
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
