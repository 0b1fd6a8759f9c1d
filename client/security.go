package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/tandemdb/tandem"
)

// WithBasicAuth sends HTTP Basic credentials with every request.
func WithBasicAuth(user, password string) Option {
	return func(o *options) { o.authz = BasicAuthorization(user, password) }
}

// WithToken sends an API token (Authorization: Bearer) with every request.
func WithToken(token string) Option {
	return func(o *options) { o.authz = "Bearer " + token }
}

// Environment variables read by CredentialsFromEnv.
const (
	EnvUser     = "TANDEM_USER"
	EnvPassword = "TANDEM_PASSWORD"
	EnvToken    = "TANDEM_TOKEN"
)

// CredentialsFromEnv returns the option for the credentials in the
// environment: TANDEM_TOKEN, else TANDEM_USER and TANDEM_PASSWORD, else
// an option that sends none.
func CredentialsFromEnv() Option {
	if t := os.Getenv(EnvToken); t != "" {
		return WithToken(t)
	}
	if u := os.Getenv(EnvUser); u != "" {
		return WithBasicAuth(u, os.Getenv(EnvPassword))
	}
	return func(*options) {}
}

// BasicAuthorization returns the Authorization header value for HTTP
// Basic credentials.
func BasicAuthorization(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// User is a user as the API shows it (never its password hash).
type User struct {
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Version uint64   `json:"version"`
}

// APIToken is an API token as listed. Token (the secret) is set only in
// the answer to CreateAPIToken.
type APIToken struct {
	ID      string     `json:"id"`
	Owner   string     `json:"owner"`
	Name    string     `json:"name,omitempty"`
	Created *time.Time `json:"created,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
	Token   string     `json:"token,omitempty"`
}

// Identity answers WhoAmI.
type Identity struct {
	User     string   `json:"user"`
	Admin    bool     `json:"admin"`
	Roles    []string `json:"roles,omitempty"`
	APIToken string   `json:"api_token,omitempty"`
}

func (c *Client) jsonCall(ctx context.Context, method, path string, query url.Values, in, out any) error {
	cl := &call{method: method, path: path, query: query}
	if method == http.MethodGet {
		cl.retry = retryTransport
	}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
		cl.body = b
	}
	rep, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(rep.body, out); err != nil {
		return fmt.Errorf("client: decode %s %s: %w", method, path, err)
	}
	return nil
}

func named(kind, name string) (string, error) {
	if name == "" {
		return "", invalid(kind + " name is empty")
	}
	return url.PathEscape(name), nil
}

// WhoAmI returns the caller's identity.
func (c *Client) WhoAmI(ctx context.Context) (*Identity, error) {
	var id Identity
	return &id, c.jsonCall(ctx, http.MethodGet, "/v1/whoami", nil, nil, &id)
}

// CreateUser creates a user with a password and roles.
func (c *Client) CreateUser(ctx context.Context, name, password string, roles []string) (*User, error) {
	if roles == nil {
		roles = []string{}
	}
	var out struct{ User *User }
	err := c.jsonCall(ctx, http.MethodPost, "/v1/users", nil, map[string]any{"name": name, "password": password, "roles": roles}, &out)
	return out.User, err
}

// Users lists every user.
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out struct{ Users []User }
	return out.Users, c.jsonCall(ctx, http.MethodGet, "/v1/users", nil, nil, &out)
}

// User returns one user.
func (c *Client) User(ctx context.Context, name string) (*User, error) {
	p, err := named("user", name)
	if err != nil {
		return nil, err
	}
	var out struct{ User *User }
	return out.User, c.jsonCall(ctx, http.MethodGet, "/v1/users/"+p, nil, nil, &out)
}

// SetPassword changes a user's password; current is required when users
// change their own (not for admins).
func (c *Client) SetPassword(ctx context.Context, name, password, current string) error {
	p, err := named("user", name)
	if err != nil {
		return err
	}
	body := map[string]string{"password": password}
	if current != "" {
		body["current_password"] = current
	}
	return c.jsonCall(ctx, http.MethodPut, "/v1/users/"+p+"/password", nil, body, nil)
}

// SetRoles replaces a user's roles.
func (c *Client) SetRoles(ctx context.Context, name string, roles []string) (*User, error) {
	p, err := named("user", name)
	if err != nil {
		return nil, err
	}
	if roles == nil {
		roles = []string{}
	}
	var out struct{ User *User }
	return out.User, c.jsonCall(ctx, http.MethodPut, "/v1/users/"+p+"/roles", nil, map[string]any{"roles": roles}, &out)
}

// DeleteUser deletes a user and revokes its API tokens.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	p, err := named("user", name)
	if err != nil {
		return err
	}
	return c.jsonCall(ctx, http.MethodDelete, "/v1/users/"+p, nil, nil, nil)
}

// PutRole creates or replaces a role.
func (c *Client) PutRole(ctx context.Context, name string, perms []tandem.Permission) (*tandem.Role, error) {
	p, err := named("role", name)
	if err != nil {
		return nil, err
	}
	if perms == nil {
		perms = []tandem.Permission{}
	}
	var out struct{ Role *tandem.Role }
	return out.Role, c.jsonCall(ctx, http.MethodPut, "/v1/roles/"+p, nil, map[string]any{"permissions": perms}, &out)
}

// Roles lists the built-in and stored roles.
func (c *Client) Roles(ctx context.Context) ([]tandem.Role, error) {
	var out struct{ Roles []tandem.Role }
	return out.Roles, c.jsonCall(ctx, http.MethodGet, "/v1/roles", nil, nil, &out)
}

// Role returns one role.
func (c *Client) Role(ctx context.Context, name string) (*tandem.Role, error) {
	p, err := named("role", name)
	if err != nil {
		return nil, err
	}
	var out struct{ Role *tandem.Role }
	return out.Role, c.jsonCall(ctx, http.MethodGet, "/v1/roles/"+p, nil, nil, &out)
}

// DeleteRole deletes a role no user has.
func (c *Client) DeleteRole(ctx context.Context, name string) error {
	p, err := named("role", name)
	if err != nil {
		return err
	}
	return c.jsonCall(ctx, http.MethodDelete, "/v1/roles/"+p, nil, nil, nil)
}

// CreateAPIToken creates an API token for user ("" for the caller) valid
// for ttl (0 for the server's default). The secret is in the result's
// Token, shown this once.
func (c *Client) CreateAPIToken(ctx context.Context, user, name string, ttl time.Duration) (*APIToken, error) {
	body := map[string]string{}
	if user != "" {
		body["user"] = user
	}
	if name != "" {
		body["name"] = name
	}
	if ttl > 0 {
		body["ttl"] = ttl.String()
	}
	var out struct {
		APIToken *APIToken `json:"api_token"`
	}
	return out.APIToken, c.jsonCall(ctx, http.MethodPost, "/v1/tokens", nil, body, &out)
}

// APITokens lists API tokens: the caller's own, or (admins) user's or
// everyone's (user "").
func (c *Client) APITokens(ctx context.Context, user string) ([]APIToken, error) {
	var q url.Values
	if user != "" {
		q = url.Values{"user": {user}}
	}
	var out struct {
		APITokens []APIToken `json:"api_tokens"`
	}
	return out.APITokens, c.jsonCall(ctx, http.MethodGet, "/v1/tokens", q, nil, &out)
}

// RevokeAPIToken revokes the API token id.
func (c *Client) RevokeAPIToken(ctx context.Context, id string) error {
	p, err := named("API token", id)
	if err != nil {
		return err
	}
	return c.jsonCall(ctx, http.MethodDelete, "/v1/tokens/"+p, nil, nil, nil)
}

// AuditFilter selects audit entries; zero fields do not filter.
type AuditFilter struct {
	Since, Until time.Time
	Principal    string
	Action       string
	Limit        int
	Cursor       string
}

// Audit returns one page of audit entries, oldest first.
func (c *Client) Audit(ctx context.Context, f AuditFilter, opts ...ReadOption) (*tandem.AuditPage, error) {
	q := url.Values{}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	for k, v := range map[string]string{"principal": f.Principal, "action": f.Action, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	q = readQuery(q, opts)
	var page tandem.AuditPage
	return &page, c.jsonCall(ctx, http.MethodGet, "/v1/audit", q, nil, &page)
}
