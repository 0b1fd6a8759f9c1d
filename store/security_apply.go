package store

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/tandemdb/tandem"
)

// secView returns the security state as of this point of the batch,
// cloning it on first use so that changes are published only after the
// commit.
func (a *applier) secView() *secState {
	if a.sec != nil {
		return a.sec
	}
	return a.s.sec.Load()
}

func (a *applier) secWrite() *secState {
	if a.sec == nil {
		a.sec = a.s.sec.Load().clone()
	}
	return a.sec
}

// roleExists reports whether name is a built-in or stored role.
func (a *applier) roleExists(name string) bool {
	if tandem.BuiltinRole(name) != nil {
		return true
	}
	_, ok := a.secView().roles[name]
	return ok
}

// applySecurity applies a security command. Every check comes before the
// first write, so a rejected command leaves nothing behind.
func (a *applier) applySecurity(c *tandem.Command) error {
	var err error
	switch c.Type {
	case tandem.CmdCreateUser:
		err = a.createUser(c.User)
	case tandem.CmdUpdateUser:
		err = a.updateUser(c.User)
	case tandem.CmdDeleteUser:
		err = a.deleteUser(c.Name)
	case tandem.CmdPutRole:
		err = a.putRole(c.Role)
	case tandem.CmdDeleteRole:
		err = a.deleteRole(c.Name)
	case tandem.CmdCreateAPIToken:
		err = a.createAPIToken(c.APIToken)
	case tandem.CmdRevokeAPIToken:
		err = a.revokeAPIToken(c.Name)
	case tandem.CmdAudit:
		if len(c.Audit) == 0 || len(c.Audit) > tandem.MaxAuditBatch {
			return tandem.Errorf(tandem.CodeInvalid, "audit command with %d entries (1 to %d)", len(c.Audit), tandem.MaxAuditBatch)
		}
	}
	return err
}

// writeAudit writes the audit entries of a command that succeeded, keyed
// by entry index and a sequence number within the entry. Any JSON-encoded
// command may carry them (contract deploys, for instance); the
// binary-encoded ones (tx, tables, nodes) cannot.
func (a *applier) writeAudit(entries []tandem.AuditEntry) error {
	for i := range entries {
		e := entries[i]
		e.Index = 0
		v, err := json.Marshal(&e)
		if err != nil {
			return err
		}
		k := binary.BigEndian.AppendUint64([]byte(prefixAudit), a.index)
		k = binary.BigEndian.AppendUint32(k, a.auditSeq)
		a.auditSeq++
		if err := a.b.Set(k, v, nil); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) putJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.b.Set([]byte(key), b, nil)
}

func (a *applier) checkUserRoles(roles []string) error {
	if err := tandem.ValidateRoles(roles); err != nil {
		return err
	}
	for _, r := range roles {
		if !a.roleExists(r) {
			return tandem.Errorf(tandem.CodeInvalid, "role %q does not exist", r)
		}
	}
	return nil
}

func (a *applier) createUser(in *tandem.User) error {
	if in == nil {
		return tandem.Errorf(tandem.CodeInvalid, "create_user command without a user")
	}
	if err := tandem.ValidateName("user", in.Name); err != nil {
		return err
	}
	if in.PasswordHash == "" {
		return tandem.Errorf(tandem.CodeInvalid, "user %q has no password hash", in.Name)
	}
	if _, ok := a.secView().users[in.Name]; ok {
		return tandem.Errorf(tandem.CodeConflict, "user %q already exists", in.Name)
	}
	if err := a.checkUserRoles(in.Roles); err != nil {
		return err
	}
	u := &tandem.User{Name: in.Name, PasswordHash: in.PasswordHash, Roles: slices.Clone(in.Roles), Version: a.index}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	if err := a.putJSON(prefixUser+u.Name, u); err != nil {
		return err
	}
	a.secWrite().users[u.Name] = u
	return nil
}

// admins counts the users holding the built-in admin role.
func (a *applier) admins() int {
	n := 0
	for _, u := range a.secView().users {
		if slices.Contains(u.Roles, "admin") {
			n++
		}
	}
	return n
}

func (a *applier) updateUser(in *tandem.User) error {
	if in == nil {
		return tandem.Errorf(tandem.CodeInvalid, "update_user command without a user")
	}
	old, ok := a.secView().users[in.Name]
	if !ok {
		return tandem.Errorf(tandem.CodeNotFound, "user %q does not exist", in.Name)
	}
	u := *old
	u.Version = a.index
	if in.PasswordHash != "" {
		u.PasswordHash = in.PasswordHash
	}
	if in.Roles != nil {
		if err := a.checkUserRoles(in.Roles); err != nil {
			return err
		}
		if slices.Contains(old.Roles, "admin") && !slices.Contains(in.Roles, "admin") && a.admins() == 1 {
			return tandem.Errorf(tandem.CodeConflict, "user %q is the last with the admin role; give it to another user first", in.Name)
		}
		u.Roles = slices.Clone(in.Roles)
	}
	if err := a.putJSON(prefixUser+u.Name, &u); err != nil {
		return err
	}
	a.secWrite().users[u.Name] = &u
	return nil
}

func (a *applier) deleteUser(name string) error {
	old, ok := a.secView().users[name]
	if !ok {
		return tandem.Errorf(tandem.CodeNotFound, "user %q does not exist", name)
	}
	if slices.Contains(old.Roles, "admin") && a.admins() == 1 {
		return tandem.Errorf(tandem.CodeConflict, "user %q is the last with the admin role; give it to another user first", name)
	}
	if err := a.b.Delete([]byte(prefixUser+name), nil); err != nil {
		return err
	}
	var revoke []string
	for id, t := range a.secView().tokens {
		if t.Owner == name {
			revoke = append(revoke, id)
		}
	}
	for _, id := range revoke {
		if err := a.b.Delete([]byte(prefixAPIToken+id), nil); err != nil {
			return err
		}
	}
	st := a.secWrite()
	delete(st.users, name)
	for _, id := range revoke {
		delete(st.tokens, id)
	}
	return nil
}

func (a *applier) putRole(in *tandem.Role) error {
	if in == nil {
		return tandem.Errorf(tandem.CodeInvalid, "put_role command without a role")
	}
	if err := in.Validate(); err != nil {
		return err
	}
	if tandem.BuiltinRole(in.Name) != nil {
		return tandem.Errorf(tandem.CodeConflict, "role %q is built in and cannot change", in.Name)
	}
	r := &tandem.Role{Name: in.Name, Permissions: slices.Clone(in.Permissions), Version: a.index}
	if r.Permissions == nil {
		r.Permissions = []tandem.Permission{}
	}
	if err := a.putJSON(prefixRole+r.Name, r); err != nil {
		return err
	}
	a.secWrite().roles[r.Name] = r
	return nil
}

func (a *applier) deleteRole(name string) error {
	if tandem.BuiltinRole(name) != nil {
		return tandem.Errorf(tandem.CodeConflict, "role %q is built in and cannot be deleted", name)
	}
	if _, ok := a.secView().roles[name]; !ok {
		return tandem.Errorf(tandem.CodeNotFound, "role %q does not exist", name)
	}
	var users []string
	for _, u := range a.secView().users {
		if slices.Contains(u.Roles, name) {
			users = append(users, u.Name)
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return tandem.Errorf(tandem.CodeConflict, "role %q is still given to users %v", name, users)
	}
	if err := a.b.Delete([]byte(prefixRole+name), nil); err != nil {
		return err
	}
	delete(a.secWrite().roles, name)
	return nil
}

func (a *applier) createAPIToken(in *tandem.APIToken) error {
	if in == nil {
		return tandem.Errorf(tandem.CodeInvalid, "create_api_token command without a token")
	}
	if err := tandem.ValidateTokenID(in.ID); err != nil {
		return err
	}
	if h, err := hex.DecodeString(in.Hash); err != nil || len(h) != 32 {
		return tandem.Errorf(tandem.CodeInvalid, "API token %s: hash is not a hex SHA-256", in.ID)
	}
	if len(in.Name) > tandem.MaxNameLen {
		return tandem.Errorf(tandem.CodeInvalid, "API token name is longer than %d bytes", tandem.MaxNameLen)
	}
	if _, ok := a.secView().users[in.Owner]; !ok {
		return tandem.Errorf(tandem.CodeNotFound, "user %q does not exist", in.Owner)
	}
	if _, ok := a.secView().tokens[in.ID]; ok {
		return tandem.Errorf(tandem.CodeConflict, "API token %s already exists", in.ID)
	}
	t := *in
	t.Created = a.time
	if err := a.putJSON(prefixAPIToken+t.ID, &t); err != nil {
		return err
	}
	a.secWrite().tokens[t.ID] = &t
	return nil
}

func (a *applier) revokeAPIToken(id string) error {
	if _, ok := a.secView().tokens[id]; !ok {
		return tandem.Errorf(tandem.CodeNotFound, "API token %q does not exist", id)
	}
	if err := a.b.Delete([]byte(prefixAPIToken+id), nil); err != nil {
		return err
	}
	delete(a.secWrite().tokens, id)
	return nil
}
