package auth

import (
	"strings"

	"github.com/tandemdb/tandem"
)

// ParsePermission reads the command line form of a permission:
//
//	ACTION[:RESOURCE[:ATTRS]]
//
// where ATTRS is a comma-separated list of attribute names; a name with a
// leading '-' goes to Except, the others to Attributes. Examples:
// "cluster.admin", "table.read:*", "table.read:patients:-diagnosis",
// "table.update:patients:notes,ward", "contract.call:transfer". The
// result is validated (tandem.Permission.Validate).
func ParsePermission(s string) (tandem.Permission, error) {
	var p tandem.Permission
	parts := strings.SplitN(s, ":", 3)
	p.Action = tandem.Action(parts[0])
	if len(parts) > 1 {
		p.Resource = parts[1]
	}
	if len(parts) > 2 {
		if parts[2] == "" {
			return p, tandem.Errorf(tandem.CodeInvalid, "permission %q: empty attribute list", s)
		}
		for _, a := range strings.Split(parts[2], ",") {
			if name, ok := strings.CutPrefix(a, "-"); ok {
				p.Except = append(p.Except, name)
			} else {
				p.Attributes = append(p.Attributes, a)
			}
		}
	}
	if err := p.Validate(); err != nil {
		return p, tandem.WrapError(tandem.CodeInvalid, err, "permission %q: %s", s, tandem.ErrorMessage(err))
	}
	return p, nil
}

// FormatPermission is the inverse of ParsePermission.
func FormatPermission(p tandem.Permission) string {
	s := string(p.Action)
	if p.Resource == "" && len(p.Attributes) == 0 && len(p.Except) == 0 {
		return s
	}
	s += ":" + p.Resource
	var attrs []string
	attrs = append(attrs, p.Attributes...)
	for _, e := range p.Except {
		attrs = append(attrs, "-"+e)
	}
	if len(attrs) > 0 {
		s += ":" + strings.Join(attrs, ",")
	}
	return s
}
