package api

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
)

// Management of users, roles and API tokens (docs/api.md, "Security").
// Passwords are hashed here, on the node that receives them, before the
// command is proposed: apply stays cheap and deterministic, and no
// plaintext password ever enters the Raft log.

// Password length bounds.
const minPasswordLen = 8

// DefaultTokenTTL and MaxTokenTTL bound API token lifetimes.
const (
	DefaultTokenTTL = 30 * 24 * time.Hour
	MaxTokenTTL     = 366 * 24 * time.Hour
)

// UserView is a user as the API shows it: never its password hash.
type UserView struct {
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Version uint64   `json:"version"`
}

// TokenView is an API token as listed: never its secret or hash.
type TokenView struct {
	ID      string     `json:"id"`
	Owner   string     `json:"owner"`
	Name    string     `json:"name,omitempty"`
	Created *time.Time `json:"created,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
	// Token is the secret, in the answer to its creation only.
	Token string `json:"token,omitempty"`
}

func userView(u *tandem.User) UserView {
	return UserView{Name: u.Name, Roles: slices.Clone(u.Roles), Version: u.Version}
}

func tokenView(t *tandem.APIToken) TokenView {
	v := TokenView{ID: t.ID, Owner: t.Owner, Name: t.Name}
	if t.Created != 0 {
		c := time.Unix(0, t.Created).UTC()
		v.Created = &c
	}
	if t.Expires != 0 {
		e := time.Unix(0, t.Expires).UTC()
		v.Expires = &e
	}
	return v
}

// security returns the security options, or an error in insecure mode.
func (s *Server) security() (*Security, error) {
	if s.opts.Security == nil {
		return nil, tandem.Errorf(tandem.CodeInvalid, "this node runs with --insecure: users, roles and API tokens are off")
	}
	return s.opts.Security, nil
}

func (s *Server) now() time.Time {
	if s.opts.Security != nil && s.opts.Security.Now != nil {
		return s.opts.Security.Now()
	}
	return time.Now()
}

func (s *Server) hashPassword(r *http.Request, pw string) (string, error) {
	if len(pw) < minPasswordLen || len(pw) > auth.MaxPasswordLen {
		return "", tandem.Errorf(tandem.CodeInvalid, "a password must have %d to %d bytes", minPasswordLen, auth.MaxPasswordLen)
	}
	p := auth.DefaultParams()
	if s.opts.Security.HashParams != nil {
		p = *s.opts.Security.HashParams
	}
	h, err := s.opts.Security.Auth.HashPassword(r.Context(), pw, p)
	if err != nil {
		if tandem.ErrorCode(err) == tandem.CodeTimeout {
			return "", err
		}
		return "", tandem.WrapError(tandem.CodeInternal, err, "could not hash the password")
	}
	return h, nil
}

// proposeChange proposes a security command and waits until this node has
// applied it, so the caller's next request here sees the change.
func (s *Server) proposeChange(w http.ResponseWriter, r *http.Request, cmd tandem.Command) error {
	res, err := s.propose(w, r, cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadTimeout)
	defer cancel()
	if err := s.opts.Cluster.WaitApplied(ctx, res.Index); err != nil {
		return waitError(err, "the change is committed but this node has not applied it yet")
	}
	return nil
}

// reservedPrincipal reports names that the audit log uses for principals
// that are not users, so no user may take them.
func reservedPrincipal(name string) bool {
	return name == auth.Anonymous || name == "bootstrap"
}

type createUserRequest struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	if _, err := s.security(); err != nil {
		writeError(w, err)
		return
	}
	var req createUserRequest
	if err := s.decodeStrict(w, r, "user", &req); err != nil {
		writeError(w, err)
		return
	}
	if err := tandem.ValidateName("user", req.Name); err != nil {
		writeError(w, err)
		return
	}
	if reservedPrincipal(req.Name) {
		writeError(w, tandem.Errorf(tandem.CodeInvalid, "user name %q is reserved", req.Name))
		return
	}
	roles, err := checkRoles(req.Roles)
	if err != nil {
		writeError(w, err)
		return
	}
	req.Roles = roles
	hash, err := s.hashPassword(r, req.Password)
	if err != nil {
		writeError(w, err)
		return
	}
	cmd := tandem.Command{Type: tandem.CmdCreateUser, User: &tandem.User{Name: req.Name, PasswordHash: hash, Roles: req.Roles},
		Audit: s.changeAudit(r, "create_user", req.Name)}
	if err := s.proposeChange(w, r, cmd); err != nil {
		writeError(w, err)
		return
	}
	s.writeUser(w, req.Name, http.StatusCreated)
}

func (s *Server) writeUser(w http.ResponseWriter, name string, status int) {
	u, ok := s.opts.Security.State.User(name)
	if !ok {
		writeError(w, tandem.Errorf(tandem.CodeNotFound, "user %q does not exist", name))
		return
	}
	writeJSON(w, status, map[string]any{"user": userView(u)})
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	sec, err := s.security()
	if err != nil {
		writeError(w, err)
		return
	}
	users := sec.State.Users()
	out := make([]UserView, len(users))
	for i := range users {
		out[i] = userView(&users[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

// selfOrAdmin lets a user act on their own account, and admins on any.
func (s *Server) selfOrAdmin(r *http.Request, name string) error {
	p := s.principal(r)
	if p.User == name || p.Perms.Admin() {
		return nil
	}
	return s.denied(r, auth.Forbidden(tandem.ActClusterAdmin, ""))
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	if _, err := s.security(); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	if err := s.selfOrAdmin(r, name); err != nil {
		writeError(w, err)
		return
	}
	s.writeUser(w, name, http.StatusOK)
}

type passwordRequest struct {
	Password string `json:"password"`
	// CurrentPassword is required when users change their own password
	// (not for admins): a stolen API token must not be enough to take
	// over the account's password.
	CurrentPassword string `json:"current_password,omitempty"`
}

func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	sec, err := s.security()
	if err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	if err := s.selfOrAdmin(r, name); err != nil {
		writeError(w, err)
		return
	}
	var req passwordRequest
	if err := s.decodeStrict(w, r, "password change", &req); err != nil {
		writeError(w, err)
		return
	}
	if !s.principal(r).Perms.Admin() {
		if _, err := sec.Auth.Verify(r.Context(), name, req.CurrentPassword, clientHost(r)); err != nil {
			writeError(w, err)
			return
		}
	}
	hash, err := s.hashPassword(r, req.Password)
	if err != nil {
		writeError(w, err)
		return
	}
	cmd := tandem.Command{Type: tandem.CmdUpdateUser, User: &tandem.User{Name: name, PasswordHash: hash},
		Audit: s.changeAudit(r, "set_password", name)}
	if err := s.proposeChange(w, r, cmd); err != nil {
		writeError(w, err)
		return
	}
	s.writeUser(w, name, http.StatusOK)
}

type rolesRequest struct {
	Roles []string `json:"roles"`
}

func (s *Server) setUserRoles(w http.ResponseWriter, r *http.Request) {
	if _, err := s.security(); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	var req rolesRequest
	if err := s.decodeStrict(w, r, "roles", &req); err != nil {
		writeError(w, err)
		return
	}
	roles, err := checkRoles(req.Roles)
	if err != nil {
		writeError(w, err)
		return
	}
	req.Roles = roles
	cmd := tandem.Command{Type: tandem.CmdUpdateUser, User: &tandem.User{Name: name, Roles: req.Roles},
		Audit: s.changeAudit(r, "set_roles", name)}
	if err := s.proposeChange(w, r, cmd); err != nil {
		writeError(w, err)
		return
	}
	s.writeUser(w, name, http.StatusOK)
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	s.deleteNamed(w, r, tandem.CmdDeleteUser, "delete_user")
}

// deleteNamed proposes a delete command for the {name} of the path.
func (s *Server) deleteNamed(w http.ResponseWriter, r *http.Request, typ tandem.CommandType, action string) {
	if _, err := s.security(); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	cmd := tandem.Command{Type: typ, Name: name, Audit: s.changeAudit(r, action, name)}
	if err := s.proposeChange(w, r, cmd); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"deleted": name})
}

// allRoles returns the built-in roles followed by the stored ones.
func (s *Server) allRoles(sec *Security) []tandem.Role {
	var out []tandem.Role
	for _, n := range tandem.BuiltinRoleNames() {
		out = append(out, *tandem.BuiltinRole(n))
	}
	return append(out, sec.State.Roles()...)
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request) {
	sec, err := s.security()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": s.allRoles(sec)})
}

func (s *Server) getRole(w http.ResponseWriter, r *http.Request) {
	sec, err := s.security()
	if err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	if b := tandem.BuiltinRole(name); b != nil {
		writeJSON(w, http.StatusOK, map[string]any{"role": b})
		return
	}
	ro, ok := sec.State.Role(name)
	if !ok {
		writeError(w, tandem.Errorf(tandem.CodeNotFound, "role %q does not exist", name))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"role": ro})
}

type roleRequest struct {
	Permissions []tandem.Permission `json:"permissions"`
}

// parseRole decodes and checks the body of PUT /v1/roles/{name}: strict
// JSON (unknown fields refused), valid permissions, not a built-in name.
func parseRole(name string, body []byte) (*tandem.Role, error) {
	var req roleRequest
	if err := decodeStrictBytes(body, "role", &req); err != nil {
		return nil, err
	}
	ro := &tandem.Role{Name: name, Permissions: req.Permissions}
	if ro.Permissions == nil {
		ro.Permissions = []tandem.Permission{}
	}
	for i := range ro.Permissions {
		p := &ro.Permissions[i] // an empty list means no restriction, like none
		if len(p.Attributes) == 0 {
			p.Attributes = nil
		}
		if len(p.Except) == 0 {
			p.Except = nil
		}
	}
	if err := ro.Validate(); err != nil {
		return nil, err
	}
	if tandem.BuiltinRole(name) != nil {
		return nil, tandem.Errorf(tandem.CodeConflict, "role %q is built in and cannot change", name)
	}
	return ro, nil
}

func (s *Server) putRole(w http.ResponseWriter, r *http.Request) {
	sec, err := s.security()
	if err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	body, err := s.readBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	ro, err := parseRole(name, body)
	if err != nil {
		writeError(w, err)
		return
	}
	cmd := tandem.Command{Type: tandem.CmdPutRole, Role: ro, Audit: s.changeAudit(r, "put_role", name)}
	if err := s.proposeChange(w, r, cmd); err != nil {
		writeError(w, err)
		return
	}
	stored, _ := sec.State.Role(name)
	writeJSON(w, http.StatusOK, map[string]any{"role": stored})
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request) {
	s.deleteNamed(w, r, tandem.CmdDeleteRole, "delete_role")
}

type tokenRequest struct {
	User string `json:"user,omitempty"` // default: the caller
	Name string `json:"name,omitempty"`
	TTL  string `json:"ttl,omitempty"` // Go duration, default DefaultTokenTTL
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if _, err := s.security(); err != nil {
		writeError(w, err)
		return
	}
	var req tokenRequest
	if r.ContentLength != 0 { // no body: a token for the caller, with the defaults
		if err := s.decodeStrict(w, r, "API token request", &req); err != nil {
			writeError(w, err)
			return
		}
	}
	if req.User == "" {
		req.User = s.principal(r).User
	}
	if err := s.selfOrAdmin(r, req.User); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Name) > tandem.MaxNameLen {
		writeError(w, tandem.Errorf(tandem.CodeInvalid, "API token name is longer than %d bytes", tandem.MaxNameLen))
		return
	}
	ttl := DefaultTokenTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > MaxTokenTTL {
			writeError(w, tandem.Errorf(tandem.CodeInvalid, "ttl %q is not a Go duration between 1s and %v", req.TTL, MaxTokenTTL))
			return
		}
		ttl = d
	}
	secret, id, hash, err := auth.NewToken(nil)
	if err != nil {
		writeError(w, tandem.WrapError(tandem.CodeInternal, err, "could not create a token"))
		return
	}
	t := &tandem.APIToken{ID: id, Owner: req.User, Hash: hash, Name: req.Name, Expires: s.now().Add(ttl).UnixNano()}
	cmd := tandem.Command{Type: tandem.CmdCreateAPIToken, APIToken: t, Audit: s.changeAudit(r, "create_api_token", id+" for "+req.User)}
	if err := s.proposeChange(w, r, cmd); err != nil {
		writeError(w, err)
		return
	}
	if stored, ok := s.opts.Security.State.APIToken(id); ok {
		t = stored
	}
	v := tokenView(t)
	v.Token = secret
	writeJSON(w, http.StatusCreated, map[string]any{"api_token": v})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	sec, err := s.security()
	if err != nil {
		writeError(w, err)
		return
	}
	p := s.principal(r)
	owner := r.URL.Query().Get("user")
	if owner == "" && !p.Perms.Admin() {
		owner = p.User
	}
	if owner != "" {
		if err := s.selfOrAdmin(r, owner); err != nil {
			writeError(w, err)
			return
		}
	}
	out := []TokenView{}
	for _, t := range sec.State.APITokens() {
		if owner == "" || t.Owner == owner {
			out = append(out, tokenView(&t))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_tokens": out})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	sec, err := s.security()
	if err != nil {
		writeError(w, err)
		return
	}
	id := r.PathValue("id")
	if err := tandem.ValidateTokenID(id); err != nil {
		writeError(w, err)
		return
	}
	t, ok := sec.State.APIToken(id)
	if !ok {
		writeError(w, tandem.Errorf(tandem.CodeNotFound, "API token %q does not exist", id))
		return
	}
	if err := s.selfOrAdmin(r, t.Owner); err != nil {
		writeError(w, err)
		return
	}
	cmd := tandem.Command{Type: tandem.CmdRevokeAPIToken, Name: id, Audit: s.changeAudit(r, "revoke_api_token", id+" of "+t.Owner)}
	if err := s.proposeChange(w, r, cmd); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"revoked": id})
}

// whoami shows the caller's identity and roles.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p := s.principal(r)
	out := map[string]any{"user": p.User, "admin": p.Perms.Admin()}
	if p.TokenID != "" {
		out["api_token"] = p.TokenID
	}
	if s.opts.Security != nil {
		if u, ok := s.opts.Security.State.User(p.User); ok {
			out["roles"] = u.Roles
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// checkRoles validates a role list from a request; a missing list is an
// empty one (a user with no roles may only log in).
func checkRoles(roles []string) ([]string, error) {
	if roles == nil {
		roles = []string{}
	}
	return roles, tandem.ValidateRoles(roles)
}
