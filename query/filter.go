package query

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tandemdb/tandem"
)

// lookupOp returns the filter operator named s.
func lookupOp(s string) (tandem.FilterOp, bool) {
	switch op := tandem.FilterOp(s); op {
	case tandem.FilterEq, tandem.FilterNe, tandem.FilterGt, tandem.FilterGe,
		tandem.FilterLt, tandem.FilterLe, tandem.FilterPrefix, tandem.FilterIn:
		return op, true
	}
	return "", false
}

// parseFilter parses a filter value, "op.literal" or a bare literal meaning
// equality, on attribute attr. allowIn is false inside or groups.
func parseFilter(attr, val string, allowIn bool) (tandem.Filter, error) {
	op, lit := tandem.FilterEq, val
	if head, rest, ok := strings.Cut(val, "."); ok {
		if o, ok := lookupOp(head); ok {
			op, lit = o, rest
		}
	}
	f := tandem.Filter{Attr: attr, Op: op}
	if op != tandem.FilterIn {
		f.Values = []string{lit}
		return f, nil
	}
	if !allowIn {
		return f, errors.New("in is not allowed inside or; list the alternatives instead")
	}
	items, err := parseList(lit, MaxInItems)
	if err != nil {
		return f, fmt.Errorf("in: %w", err)
	}
	f.Values = items
	return f, nil
}

// parseOr parses one or group: "(attr.op.value,...)".
func parseOr(val string) ([]tandem.Filter, error) {
	if val == "" {
		return nil, invalid(paramOr, "empty value")
	}
	items, err := parseList(val, MaxOrItems)
	if err != nil {
		return nil, invalid(paramOr, "%s", err)
	}
	group := make([]tandem.Filter, 0, len(items))
	for i, item := range items {
		attr, rest, ok := strings.Cut(item, ".")
		if !ok || rest == "" {
			return nil, invalid(paramOr, "alternative %d (%q) is not attr.op.value", i+1, truncate(item))
		}
		if err := tandem.ValidateName("attribute", attr); err != nil {
			return nil, invalid(paramOr, "alternative %d: %s", i+1, tandem.ErrorMessage(err))
		}
		f, err := parseFilter(attr, rest, false)
		if err != nil {
			return nil, invalid(paramOr, "alternative %d: %s", i+1, err)
		}
		group = append(group, f)
	}
	return group, nil
}
