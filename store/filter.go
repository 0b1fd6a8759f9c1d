package store

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemdb/tandem"
)

// cond is a query filter resolved against a table's schema: its literals
// are encoded like the attribute's values, so that evaluating it is a byte
// comparison.
type cond struct {
	attr string
	op   tandem.FilterOp
	// typ is the type the attribute's values are encoded as: the declared
	// type, the key type for the primary key, "" if undeclared.
	typ tandem.AttrType
	// vals are the encoded literals; for in, sorted and without duplicates;
	// for prefix, the encoding of every string with that prefix.
	vals   [][]byte
	prefix string
}

// valueType returns the type attr's values are encoded as (see cond.typ),
// and whether attr is declared json.
func valueType(sc *tandem.TableSchema, attr string) (t tandem.AttrType, isJSON bool) {
	if attr == sc.PrimaryKey {
		return sc.KeyType(), false
	}
	t = sc.Attributes[attr]
	if t == tandem.TypeJSON {
		return "", true
	}
	return t, false
}

// resolveFilter checks f against sc and encodes its literals.
func resolveFilter(sc *tandem.TableSchema, f tandem.Filter) (*cond, error) {
	if err := tandem.ValidateName("attribute", f.Attr); err != nil {
		return nil, err
	}
	t, isJSON := valueType(sc, f.Attr)
	if isJSON {
		return nil, tandem.Errorf(tandem.CodeInvalid, "attribute %s is json; it cannot be filtered on", f.Attr)
	}
	c := &cond{attr: f.Attr, op: f.Op, typ: t}
	switch f.Op {
	case tandem.FilterEq, tandem.FilterNe, tandem.FilterGt, tandem.FilterGe, tandem.FilterLt, tandem.FilterLe, tandem.FilterPrefix:
		if len(f.Values) != 1 {
			return nil, tandem.Errorf(tandem.CodeInvalid, "filter %s %s needs one value, got %d", f.Attr, f.Op, len(f.Values))
		}
	case tandem.FilterIn:
		if len(f.Values) == 0 {
			return nil, tandem.Errorf(tandem.CodeInvalid, "filter %s in needs at least one value", f.Attr)
		}
	default:
		return nil, tandem.Errorf(tandem.CodeInvalid, "filter on %s: unknown operator %q", f.Attr, f.Op)
	}
	if f.Op == tandem.FilterPrefix {
		if t != "" && t != tandem.TypeString {
			return nil, tandem.Errorf(tandem.CodeInvalid, "attribute %s is %s; prefix needs a string attribute", f.Attr, t)
		}
		c.prefix = f.Values[0]
		c.vals = [][]byte{appendStringPrefix(nil, c.prefix)}
		return c, nil
	}
	for _, lit := range f.Values {
		enc, err := encodeLiteral(t, lit)
		if err != nil {
			return nil, tandem.Errorf(tandem.CodeInvalid, "attribute %s is %s; cannot compare with %q", f.Attr, t, lit)
		}
		c.vals = append(c.vals, enc)
	}
	if f.Op == tandem.FilterIn {
		slices.SortFunc(c.vals, bytes.Compare)
		c.vals = slices.CompactFunc(c.vals, bytes.Equal)
	}
	return c, nil
}

// encodeLiteral encodes a filter literal as a value of type t. For
// undeclared attributes ("") the type is inferred: true and false are
// booleans, JSON numbers are numbers, anything else is a string.
func encodeLiteral(t tandem.AttrType, lit string) ([]byte, error) {
	switch t {
	case "":
		switch {
		case lit == "true" || lit == "false":
			return appendBool(nil, lit == "true"), nil
		case isJSONNumber(lit):
			if f, err := strconv.ParseFloat(lit, 64); err == nil {
				return appendFloat(nil, f), nil
			}
		}
		return appendString(nil, lit), nil
	case tandem.TypeString:
		return appendString(nil, lit), nil
	case tandem.TypeInt:
		i, err := strconv.ParseInt(lit, 10, 64)
		if err != nil {
			return nil, err
		}
		return appendInt(nil, i), nil
	case tandem.TypeFloat:
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, strconv.ErrSyntax
		}
		return appendFloat(nil, f), nil
	case tandem.TypeBool:
		if lit != "true" && lit != "false" {
			return nil, strconv.ErrSyntax
		}
		return appendBool(nil, lit == "true"), nil
	case tandem.TypeTime:
		tm, err := time.Parse(time.RFC3339Nano, lit)
		if err != nil {
			return nil, err
		}
		return appendTime(nil, tm), nil
	}
	return nil, strconv.ErrSyntax
}

// isJSONNumber reports whether s is a number in JSON syntax.
func isJSONNumber(s string) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// match reports whether rec satisfies c. A missing or null attribute
// satisfies only ne. Comparisons between values of different types (for
// undeclared attributes) are false. buf is scratch space.
func (c *cond) match(rec tandem.Record, buf []byte) (bool, []byte) {
	v := rec[c.attr]
	if c.op == tandem.FilterPrefix {
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, c.prefix), buf
	}
	buf = appendAttr(buf[:0], c.typ, v)
	switch c.op {
	case tandem.FilterEq, tandem.FilterIn:
		for _, lit := range c.vals {
			if bytes.Equal(buf, lit) {
				return true, buf
			}
		}
		return false, buf
	case tandem.FilterNe:
		return !bytes.Equal(buf, c.vals[0]), buf
	}
	lit := c.vals[0]
	if buf[0] != lit[0] {
		return false, buf
	}
	cmp := bytes.Compare(buf, lit)
	switch c.op {
	case tandem.FilterGt:
		return cmp > 0, buf
	case tandem.FilterGe:
		return cmp >= 0, buf
	case tandem.FilterLt:
		return cmp < 0, buf
	case tandem.FilterLe:
		return cmp <= 0, buf
	}
	return false, buf
}

// isRange reports whether c bounds a range of values.
func (c *cond) isRange() bool {
	switch c.op {
	case tandem.FilterGt, tandem.FilterGe, tandem.FilterLt, tandem.FilterLe, tandem.FilterPrefix:
		return true
	}
	return false
}

func (c *cond) isEqIn() bool { return c.op == tandem.FilterEq || c.op == tandem.FilterIn }
