package tandem

import (
	"fmt"
	"slices"
)

// Security vocabulary: users, roles, permissions, API tokens and audit
// entries, all replicated state (docs/security.md). Package auth evaluates
// permissions and verifies credentials; the store applies the commands.

// Action is what a permission allows.
type Action string

// Actions. Table and contract actions apply to the named resource or to
// every one ("*"); cluster.admin has no resource and implies every other
// permission.
const (
	ActTableRead      Action = "table.read"      // get, query, conditions on records
	ActTableInsert    Action = "table.insert"    // insert (and upsert of a new record)
	ActTableUpdate    Action = "table.update"    // patch, upsert of an existing record
	ActTableDelete    Action = "table.delete"    // delete a record
	ActTableAdmin     Action = "table.admin"     // create, change or drop the table
	ActContractDeploy Action = "contract.deploy" // deploy or roll back a contract
	ActContractCall   Action = "contract.call"   // call a contract's functions
	ActClusterAdmin   Action = "cluster.admin"   // nodes, users, roles, API tokens, audit; everything
)

// AllResources as a permission's resource covers every table or contract.
const AllResources = "*"

// Limits on security state, so one role or user cannot grow without bound.
const (
	MaxPermissions   = 256 // per role
	MaxAttrsPerGrant = 256 // attributes or except list of one permission
	MaxRolesPerUser  = 64
	MaxAuditBatch    = 1024 // audit entries in one command
)

// Permission grants one action on one resource. For table.read,
// table.insert and table.update it may restrict attributes: the grant
// covers attribute A when Attributes is empty or lists A, and Except does
// not list A. A principal may read (write) A if any of its grants for the
// table covers A; grants add up, an Except never takes away what another
// grant gives. The primary key is always covered (it is in the record's
// URL anyway).
type Permission struct {
	Action     Action   `json:"action"`
	Resource   string   `json:"resource,omitempty"`
	Attributes []string `json:"attributes,omitempty"`
	Except     []string `json:"except,omitempty"`
}

// Role is a named set of permissions.
type Role struct {
	Name        string       `json:"name"`
	Permissions []Permission `json:"permissions"`
	// Builtin is set on the built-in roles, which cannot change.
	Builtin bool `json:"builtin,omitempty"`
	// Version is the log index of the last change; set by apply.
	Version uint64 `json:"version,omitempty"`
}

// User is an account. PasswordHash is an argon2id hash in the PHC string
// format (package auth); it never leaves the node through the API.
type User struct {
	Name         string   `json:"name"`
	PasswordHash string   `json:"password_hash,omitempty"`
	Roles        []string `json:"roles"`
	// Version is the log index of the last change; set by apply. Caches of
	// verified passwords are keyed by it, so any change invalidates them.
	Version uint64 `json:"version,omitempty"`
}

// APIToken is the stored half of an API token: the secret itself is shown
// once at creation and only its SHA-256 is kept.
type APIToken struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
	Hash  string `json:"hash,omitempty"` // hex SHA-256 of the secret
	Name  string `json:"name,omitempty"` // free text to tell tokens apart
	// Created is set by apply from the entry time; Expires (0: never) by
	// the node that creates the token. Unix nanoseconds.
	Created int64 `json:"created,omitempty"`
	Expires int64 `json:"expires,omitempty"`
}

// AuditEntry is one line of the replicated audit log.
type AuditEntry struct {
	Time      int64  `json:"time"` // Unix nanoseconds, on the node that saw the event
	Node      string `json:"node"`
	Principal string `json:"principal"`
	Address   string `json:"address,omitempty"` // client address
	Action    string `json:"action"`            // e.g. "login", "create_user", "GET /v1/tables/{table}"
	Target    string `json:"target,omitempty"`
	Outcome   string `json:"outcome"` // AuditOK, AuditDenied, AuditUnauthenticated
	Detail    string `json:"detail,omitempty"`
	// Index is the log index of the entry that recorded it; set on read.
	Index uint64 `json:"index,omitempty"`
}

// AuditQuery selects audit entries. Zero fields do not filter.
type AuditQuery struct {
	Since, Until int64 // Unix nanoseconds, Since inclusive, Until exclusive
	Principal    string
	Action       string
	Limit        int    // default and maximum MaxLimit
	Cursor       string // from a previous AuditPage.Next
}

// AuditPage is one page of audit entries, oldest first (in log order).
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    string       `json:"next,omitempty"`
}

// Audit outcomes.
const (
	AuditOK              = "ok"
	AuditDenied          = "denied"
	AuditUnauthenticated = "unauthenticated"
)

// BuiltinRoleNames lists the built-in roles.
func BuiltinRoleNames() []string { return []string{"admin", "reader", "writer"} }

// BuiltinRole returns a fresh copy of the built-in role name, or nil.
// admin can do everything; reader reads every table; writer reads and
// writes every table's records but cannot change schemas.
func BuiltinRole(name string) *Role {
	all := AllResources
	switch name {
	case "admin":
		return &Role{Name: name, Builtin: true, Permissions: []Permission{{Action: ActClusterAdmin}}}
	case "reader":
		return &Role{Name: name, Builtin: true, Permissions: []Permission{{Action: ActTableRead, Resource: all}}}
	case "writer":
		return &Role{Name: name, Builtin: true, Permissions: []Permission{
			{Action: ActTableRead, Resource: all},
			{Action: ActTableInsert, Resource: all},
			{Action: ActTableUpdate, Resource: all},
			{Action: ActTableDelete, Resource: all},
		}}
	}
	return nil
}

// Validate checks a permission's shape.
func (p *Permission) Validate() error {
	switch p.Action {
	case ActClusterAdmin:
		if p.Resource != "" || len(p.Attributes) > 0 || len(p.Except) > 0 {
			return Errorf(CodeInvalid, "permission %s takes no resource or attributes", p.Action)
		}
		return nil
	case ActTableRead, ActTableInsert, ActTableUpdate, ActTableDelete, ActTableAdmin, ActContractDeploy, ActContractCall:
	default:
		return Errorf(CodeInvalid, "permission action %q is not one of table.read, table.insert, table.update, table.delete, table.admin, contract.deploy, contract.call, cluster.admin", p.Action)
	}
	if p.Resource != AllResources {
		if err := ValidateName("permission resource", p.Resource); err != nil {
			return Errorf(CodeInvalid, "permission %s: resource must be a table or contract name, or \"*\": %s", p.Action, ErrorMessage(err))
		}
	}
	attrs := p.Action == ActTableRead || p.Action == ActTableInsert || p.Action == ActTableUpdate
	if !attrs && (len(p.Attributes) > 0 || len(p.Except) > 0) {
		return Errorf(CodeInvalid, "permission %s cannot restrict attributes", p.Action)
	}
	for _, list := range [][]string{p.Attributes, p.Except} {
		if len(list) > MaxAttrsPerGrant {
			return Errorf(CodeInvalid, "permission %s lists more than %d attributes", p.Action, MaxAttrsPerGrant)
		}
		for _, a := range list {
			if err := ValidateName("attribute", a); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks a role's shape (not whether it is built in).
func (r *Role) Validate() error {
	if err := ValidateName("role", r.Name); err != nil {
		return err
	}
	if len(r.Permissions) > MaxPermissions {
		return Errorf(CodeInvalid, "role %q has more than %d permissions", r.Name, MaxPermissions)
	}
	for i := range r.Permissions {
		if err := r.Permissions[i].Validate(); err != nil {
			return WrapError(CodeInvalid, err, "role %q: %s", r.Name, ErrorMessage(err))
		}
	}
	return nil
}

// ValidateRoles checks a user's role list: names valid, no duplicates,
// not too many. Whether the roles exist is checked at apply.
func ValidateRoles(roles []string) error {
	if len(roles) > MaxRolesPerUser {
		return Errorf(CodeInvalid, "a user may have at most %d roles", MaxRolesPerUser)
	}
	for i, r := range roles {
		if err := ValidateName("role", r); err != nil {
			return err
		}
		if slices.Contains(roles[:i], r) {
			return Errorf(CodeInvalid, "role %q is listed twice", r)
		}
	}
	return nil
}

// ValidateTokenID checks an API token ID: 16 lowercase hex digits.
func ValidateTokenID(id string) error {
	if len(id) != 16 {
		return Errorf(CodeInvalid, "API token ID %q is not 16 hex digits", id)
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return Errorf(CodeInvalid, "API token ID %q is not 16 hex digits", id)
		}
	}
	return nil
}

func (e AuditEntry) String() string {
	return fmt.Sprintf("%s %s@%s %s %s %s", e.Outcome, e.Principal, e.Node, e.Action, e.Target, e.Detail)
}
