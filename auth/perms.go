package auth

import (
	"slices"

	"github.com/tandemdb/tandem"
)

// Perms is the union of a principal's roles' permissions. It is immutable
// once built and safe for concurrent use.
type Perms struct {
	admin  bool
	grants []tandem.Permission
}

// Compile returns the union of roles' permissions. Nil roles (deleted
// since a user was given them) are skipped.
func Compile(roles ...*tandem.Role) *Perms {
	p := &Perms{}
	for _, r := range roles {
		if r == nil {
			continue
		}
		for _, g := range r.Permissions {
			if g.Action == tandem.ActClusterAdmin {
				p.admin = true
			}
			p.grants = append(p.grants, g)
		}
	}
	return p
}

// AdminPerms returns permissions that allow everything (insecure mode).
func AdminPerms() *Perms { return &Perms{admin: true} }

// Admin reports cluster.admin, which implies every permission.
func (p *Perms) Admin() bool { return p != nil && p.admin }

// Allows reports whether the principal may do action on resource (a table
// or contract name; ignored for cluster.admin). Attribute restrictions do
// not matter here: a restricted table.read grant still allows reading the
// table, without some attributes.
func (p *Perms) Allows(action tandem.Action, resource string) bool {
	if p == nil {
		return false
	}
	if p.admin {
		return true
	}
	for i := range p.grants {
		g := &p.grants[i]
		if g.Action == action && (g.Resource == tandem.AllResources || g.Resource == resource) {
			return true
		}
	}
	return false
}

// AnyOn reports whether the principal holds any permission on the table or
// contract resource (for listing resources).
func (p *Perms) AnyOn(resource string, actions ...tandem.Action) bool {
	for _, a := range actions {
		if p.Allows(a, resource) {
			return true
		}
	}
	return false
}

// Attrs returns which attributes of table the principal may use for
// action (table.read, table.insert or table.update). pk is the table's
// primary key, always covered when the action is allowed at all.
func (p *Perms) Attrs(action tandem.Action, table, pk string) AttrSet {
	s := AttrSet{pk: pk}
	if p == nil {
		return s
	}
	if p.admin {
		s.all = true
		return s
	}
	for i := range p.grants {
		g := &p.grants[i]
		if g.Action != action || (g.Resource != tandem.AllResources && g.Resource != table) {
			continue
		}
		if len(g.Attributes) == 0 && len(g.Except) == 0 {
			s.all = true
			s.grants = nil
			return s
		}
		s.grants = append(s.grants, g)
	}
	return s
}

// AttrSet says which attributes one action may use on one table.
type AttrSet struct {
	all    bool
	pk     string
	grants []*tandem.Permission
}

// All reports that every attribute is covered: nothing to filter.
func (s AttrSet) All() bool { return s.all }

// None reports that the action is not allowed on the table at all.
func (s AttrSet) None() bool { return !s.all && len(s.grants) == 0 }

// Covers reports whether attr may be used.
func (s AttrSet) Covers(attr string) bool {
	if s.all {
		return true
	}
	if len(s.grants) > 0 && attr == s.pk {
		return true
	}
	for _, g := range s.grants {
		if (len(g.Attributes) == 0 || slices.Contains(g.Attributes, attr)) && !slices.Contains(g.Except, attr) {
			return true
		}
	}
	return false
}

// Forbidden returns the CodeForbidden error naming the permission a
// request lacked.
func Forbidden(action tandem.Action, resource string) error {
	if action == tandem.ActClusterAdmin || resource == "" {
		return tandem.Errorf(tandem.CodeForbidden, "permission %s is required", action)
	}
	return tandem.Errorf(tandem.CodeForbidden, "permission %s on %q is required", action, resource)
}

// ForbiddenAttr returns the CodeForbidden error for an attribute the
// principal may not read or write.
func ForbiddenAttr(action tandem.Action, table, attr string) error {
	return tandem.Errorf(tandem.CodeForbidden, "permission %s on attribute %q of %q is required", action, attr, table)
}
