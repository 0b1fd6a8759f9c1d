package api

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
	"github.com/tandemdb/tandem/pki"
)

// Security enables authentication and authorization. With a nil Security
// in Options the server runs in insecure mode: every request is an
// anonymous admin (for local development only; cmd/tandem warns).
type Security struct {
	Auth  *auth.Authenticator // required
	State SecurityState       // required
	// Audit receives audit entries (required).
	Audit *AuditLog
	// HashParams are the argon2id parameters for new passwords (default
	// auth.DefaultParams()).
	HashParams *auth.Params
	// Now is the clock for token expiry and audit times (default time.Now).
	Now func() time.Time
}

// SecurityState is the replicated security state as the API reads it
// (the store).
type SecurityState interface {
	auth.State
	Users() []tandem.User
	Roles() []tandem.Role
	APITokens() []tandem.APIToken
	Audit(q tandem.AuditQuery) (*tandem.AuditPage, error)
}

// access says who may call a route. Every route is registered with one
// (route); a pattern registered without one (s.mux directly) is
// admin-only, so a forgotten classification fails closed.
type access int

const (
	accessAdmin    access = iota // cluster.admin
	accessOpen                   // no authentication: health checks
	accessInternal               // node to node: authenticated by node certificates (transport layer), never by users
	accessUser                   // any authenticated principal; the handler checks resource permissions
	accessResource               // action on the resource named by a path value
)

// policy is a route's access rule.
type policy struct {
	access access
	action tandem.Action // accessResource
	param  string        // accessResource: path value naming the table or contract
}

var (
	open     = policy{access: accessOpen}
	internal = policy{access: accessInternal}
	user     = policy{access: accessUser}
	admin    = policy{access: accessAdmin}
)

func perm(action tandem.Action, param string) policy {
	return policy{access: accessResource, action: action, param: param}
}

// route registers h for pattern under pol.
func (s *Server) route(pattern string, pol policy, h http.HandlerFunc) {
	s.policies[pattern] = pol
	if pol.access == accessResource {
		inner := h
		h = func(w http.ResponseWriter, r *http.Request) {
			res := r.PathValue(pol.param)
			if !s.principal(r).Perms.Allows(pol.action, res) {
				writeError(w, s.denied(r, auth.Forbidden(pol.action, res)))
				return
			}
			inner(w, r)
		}
	}
	s.mux.handle(pattern, pol, h)
}

// serveMux is the API's router. Every handler on it is authenticated
// first: with its route's rule (Server.route), or as admin-only when added
// straight with HandleFunc or Handle, so a forgotten classification fails
// closed. Authentication runs inside the matched route, so the mux
// matches each request once: matching it a second time beforehand to find
// its rule cost 4% of a node's CPU under a write load (mostly unescaping
// the path).
type serveMux struct {
	*http.ServeMux
	s *Server
}

func (m serveMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.handle(pattern, admin, h)
}

func (m serveMux) Handle(pattern string, h http.Handler) { m.handle(pattern, admin, h.ServeHTTP) }

func (m serveMux) handle(pattern string, pol policy, h http.HandlerFunc) {
	m.ServeMux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if r = m.s.authenticate(w, r, pol); r != nil {
			h(w, r)
		}
	})
}

// authenticate runs before a route's handler, with the route's rule: it
// returns the request to serve (with its principal in the context) or
// writes the 401/403/429 answer and returns nil.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, pol policy) *http.Request {
	if pol.access == accessOpen || pol.access == accessInternal {
		return r
	}
	sec := s.opts.Security
	if sec == nil {
		return r.WithContext(auth.NewContext(r.Context(), &auth.Principal{User: auth.Anonymous, Perms: auth.AdminPerms()}))
	}
	header := r.Header.Get("Authorization")
	p, err := sec.Auth.Authenticate(r.Context(), header, clientHost(r))
	if err != nil {
		var f *auth.Failure
		if errors.As(err, &f) && f.Counted {
			s.audit(r, cmp.Or(f.User, "-"), "login", r.URL.Path, tandem.AuditUnauthenticated, tandem.ErrorMessage(f.Err))
		}
		writeError(w, err)
		return nil
	}
	if pol.access == accessAdmin && !p.Perms.Admin() {
		r = r.WithContext(auth.NewContext(r.Context(), p))
		writeError(w, s.denied(r, auth.Forbidden(tandem.ActClusterAdmin, "")))
		return nil
	}
	ctx := auth.NewContext(r.Context(), p)
	ctx = auth.WithCredentials(ctx, header) // for join and remove passed on to the leader
	return r.WithContext(ctx)
}

// principal returns the request's principal; one with no permissions if
// there is none (a bug: every non-open route is authenticated).
func (s *Server) principal(r *http.Request) *auth.Principal {
	if p := auth.FromContext(r.Context()); p != nil {
		return p
	}
	return &auth.Principal{User: auth.Anonymous, Perms: auth.Compile()}
}

// callerOf names the caller of a request: the authenticated user, or
// "anonymous" (insecure mode). Contracts take their caller identity from
// here.
func callerOf(r *http.Request) string { return auth.FromContext(r.Context()).Name() }

// denied records a permission denial in the audit log and returns err.
func (s *Server) denied(r *http.Request, err error) error {
	s.audit(r, s.principal(r).Name(), r.Pattern, r.URL.Path, tandem.AuditDenied, tandem.ErrorMessage(err))
	return err
}

// auditEntry describes an event of request r.
func (s *Server) auditEntry(r *http.Request, principal, action, target, outcome, detail string) tandem.AuditEntry {
	now := time.Now
	if s.opts.Security != nil && s.opts.Security.Now != nil {
		now = s.opts.Security.Now
	}
	return tandem.AuditEntry{
		Time: now().UnixNano(), Node: s.opts.Cluster.Self().ID, Principal: clip(principal),
		Address: clip(clientHost(r)), Action: clip(action), Target: clip(target), Outcome: outcome, Detail: clip(detail),
	}
}

// maxAuditField bounds each text field of an audit entry: principals and
// targets come from unauthenticated requests (a user name in a Basic
// header, a 64 KiB path), and must not make each failed login a large
// replicated write.
const maxAuditField = 256

func clip(s string) string {
	if len(s) <= maxAuditField {
		return s
	}
	return strings.ToValidUTF8(s[:maxAuditField], "") + "..."
}

// audit queues an entry (failures and denials: asynchronous, dropped when
// the queue is full). In insecure mode nothing is recorded.
func (s *Server) audit(r *http.Request, principal, action, target, outcome, detail string) {
	if s.opts.Security == nil || s.opts.Security.Audit == nil {
		return
	}
	s.opts.Security.Audit.Record(s.auditEntry(r, principal, action, target, outcome, detail))
}

// changeAudit returns the audit entries to attach to a command that
// changes security state or contracts: the store writes them in the same
// batch as the change, so no change goes unrecorded. Nil in insecure mode.
func (s *Server) changeAudit(r *http.Request, action, target string) []tandem.AuditEntry {
	if s.opts.Security == nil {
		return nil
	}
	return []tandem.AuditEntry{s.auditEntry(r, auditPrincipal(r), action, target, tandem.AuditOK, "")}
}

// auditPrincipal names who made a change: the authenticated user, or for
// the node-to-node routes (join), "node:<id>" from the verified node
// certificate.
func auditPrincipal(r *http.Request) string {
	if auth.FromContext(r.Context()) == nil {
		if id, ok := pki.PeerNodeID(r.TLS); ok {
			return "node:" + id
		}
	}
	return callerOf(r)
}

// auditCommitted records a change that could not carry its audit entry
// (cluster membership: binary commands and Raft configuration changes) by
// proposing it right after the change succeeded. A failure is logged: the
// change itself has happened.
func (s *Server) auditCommitted(r *http.Request, action, target string) {
	entries := s.changeAudit(r, action, target)
	if entries == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.opts.WriteTimeout)
	defer cancel()
	if err := s.opts.Security.Audit.Commit(ctx, entries); err != nil {
		s.opts.Logger.Error("audit: could not record a committed change", "action", action, "target", target, "err", err)
	}
}

// clientHost is the request's TCP peer address without the port. Proxy
// headers are not trusted: rate limits and audit entries must not be
// spoofable.
func clientHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// securityHeaders adds the headers that go with security errors.
func securityHeaders(w http.ResponseWriter, err error) {
	switch tandem.ErrorCode(err) {
	case tandem.CodeUnauthenticated:
		w.Header().Set("WWW-Authenticate", `Basic realm="tandem", charset="UTF-8"`)
	case tandem.CodeRateLimited:
		var rl *auth.RateLimited
		if errors.As(err, &rl) {
			w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Seconds()+0.999)))
		}
	}
}
