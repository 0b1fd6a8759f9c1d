package query

import (
	"errors"
	"fmt"
	"strings"
)

// parseList splits "(a,b,...)" into its items, removing quotes (see the
// package documentation for the rules). It returns at most max items.
func parseList(s string, max int) ([]string, error) {
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return nil, errors.New("want a list in parentheses, such as (a,b)")
	}
	s = s[1 : len(s)-1]
	var (
		items  []string
		cur    strings.Builder
		quoted bool // the current item had a quoted part, so it may be empty
		inQ    bool
	)
	end := func() error {
		if cur.Len() == 0 && !quoted {
			return fmt.Errorf("item %d is empty (write \"\" for the empty string)", len(items)+1)
		}
		if len(items) == max {
			return fmt.Errorf("more than %d items", max)
		}
		items = append(items, cur.String())
		cur.Reset()
		quoted = false
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ && c == '\\':
			if i+1 == len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return nil, errors.New(`inside quotes a backslash must be followed by " or \`)
			}
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQ = !inQ
			quoted = true
		case inQ:
			cur.WriteByte(c)
		case c == ',':
			if err := end(); err != nil {
				return nil, err
			}
		case c == '(' || c == ')':
			return nil, errors.New("parentheses inside a list must be quoted")
		default:
			cur.WriteByte(c)
		}
	}
	if inQ {
		return nil, errors.New("unterminated quote")
	}
	if err := end(); err != nil {
		return nil, err
	}
	return items, nil
}
