package auth

import "context"

// Anonymous is the principal name of requests in insecure mode.
const Anonymous = "anonymous"

// Principal is an authenticated caller, for one request.
type Principal struct {
	// User is the user's name (Anonymous in insecure mode).
	User string
	// TokenID is set when the caller authenticated with an API token.
	TokenID string
	// Perms are the user's permissions as of this request.
	Perms *Perms
}

// Name is how the principal appears in logs, audit entries and contract
// calls: the user name.
func (p *Principal) Name() string {
	if p == nil {
		return Anonymous
	}
	return p.User
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of a request, or nil if it was not
// authenticated (internal routes, health checks).
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

type credentialsKey struct{}

// WithCredentials returns ctx carrying the request's raw Authorization
// header, so that a node passing the request on to the leader (cluster
// join and remove) can present the same credentials there.
func WithCredentials(ctx context.Context, authorization string) context.Context {
	return context.WithValue(ctx, credentialsKey{}, authorization)
}

// CredentialsFrom returns what WithCredentials stored, or "".
func CredentialsFrom(ctx context.Context) string {
	s, _ := ctx.Value(credentialsKey{}).(string)
	return s
}
