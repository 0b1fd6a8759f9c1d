package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/url"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/multiplex"
)

// Reader is the local store as the API reads it.
type Reader interface {
	Table(name string) (*tandem.TableSchema, error)
	Tables() []tandem.TableSchema
	Get(table, key string) (tandem.RecordData, error)
	Query(q *tandem.Query) (*tandem.QueryResult, error)
	AppliedIndex() uint64
}

// Proposer submits commands for replication (see package proposer).
type Proposer interface {
	// Propose returns the command's result; err is set when the outcome is
	// unknown or the command was not proposed.
	Propose(ctx context.Context, cmd tandem.Command) (tandem.Result, error)
	// ProposeLocal handles a batch forwarded by follower from (its node
	// ID, "" if unknown): it must not be forwarded again. Each result's
	// Err carries either a rejection or an unknown outcome.
	ProposeLocal(ctx context.Context, from string, cmds []tandem.Command) ([]tandem.Result, error)
}

// Cluster is the node's view of the cluster.
type Cluster interface {
	// ReadIndex returns the index a linearizable read must wait for,
	// asking the leader if this node is not the leader.
	ReadIndex(ctx context.Context) (uint64, error)
	// LeaderReadIndex answers a follower's read index request; leader only.
	LeaderReadIndex(ctx context.Context) (uint64, error)
	// WaitApplied blocks until this node has applied index.
	WaitApplied(ctx context.Context, index uint64) error
	// Self is this node's own status.
	Self() tandem.NodeStatus
	// Status gathers every member's status.
	Status(ctx context.Context) (leader string, nodes []tandem.NodeStatus, err error)
	// Join adds a voter, passing the request to the leader unless it was
	// already forwarded by another node.
	Join(ctx context.Context, n tandem.NodeInfo, forwarded bool) error
	// Remove removes a member, likewise.
	Remove(ctx context.Context, id string, forwarded bool) error
	// Ready returns nil when the node has a leader and has caught up.
	Ready() error
	// LocalReadable returns nil once the node may serve reads from its own
	// state (local and min_index): after a start, only when it has caught
	// up with the cluster.
	LocalReadable() error
}

// Options configure the API server.
type Options struct {
	Reader   Reader   // required
	Proposer Proposer // required
	Cluster  Cluster  // required
	// Contracts serves /v1/contracts and /v1/events; without it they
	// answer 503.
	Contracts Contracts
	// MaxBody bounds request bodies (default 4 MiB).
	MaxBody int64
	// WriteTimeout is the default time a write waits for its commit, and
	// ReadTimeout the time a read waits for its consistency barrier
	// (defaults 10s and 5s); clients may ask for less or more (up to 60s)
	// with ?timeout=.
	WriteTimeout time.Duration
	ReadTimeout  time.Duration
	// Metrics, if set, is served at /metrics.
	Metrics http.Handler
	// Pprof serves Go's profiler at /debug/pprof/ (off by default: it
	// exposes internals and costs CPU when used).
	Pprof  bool
	Logger *slog.Logger
	// Security turns on authentication and authorization (security.go).
	// Nil is insecure mode: every request is an anonymous admin.
	Security *Security
	// PKI serves the cluster PKI endpoints (pki.go); nil with Insecure.
	PKI PKI
	// Insecure opens the node-only endpoints (/internal/v1/*, join) to
	// any caller. Without it they need a verified node certificate.
	Insecure bool
}

// Server serves the API. Create it with New; it is an http.Handler.
type Server struct {
	opts Options
	mux  serveMux
	// policies maps each route pattern to its access rule (security.go).
	policies map[string]policy
	// multiplexed serves /v1/mux: the API's requests over one connection.
	multiplexed *multiplex.Server
}

// New returns the API handler.
func New(opts Options) *Server {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 4 << 20
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, policies: map[string]policy{}}
	s.mux = serveMux{http.NewServeMux(), s}
	s.multiplexed = &multiplex.Server{
		Handler:    http.HandlerFunc(s.ServeHTTP),
		MaxMessage: opts.MaxBody + 64<<10,
		Reject: func(w http.ResponseWriter, status int, msg string) {
			writeError(w, tandem.Errorf(tandem.CodeInvalid, "%s", msg))
		},
		Logger: opts.Logger,
	}
	s.routes()
	return s
}

// Close ends the multiplexed connections (/v1/mux), which http.Server's
// Shutdown does not track: register it with RegisterOnShutdown.
func (s *Server) Close() { s.multiplexed.Close() }

// routes registers every endpoint with its access rule (security.go,
// docs/security.md "Who may call what").
func (s *Server) routes() {
	h := s.route
	h("GET /healthz", open, s.healthz)
	h("GET /readyz", open, s.readyz)
	if s.opts.Metrics != nil {
		// Any authenticated user: operational numbers, no data. A scraper
		// gets a user without roles and an API token.
		h("GET /metrics", user, s.opts.Metrics.ServeHTTP)
	}

	if s.opts.Pprof {
		h("GET /debug/pprof/", admin, pprof.Index)
		h("GET /debug/pprof/profile", admin, pprof.Profile)
		h("GET /debug/pprof/trace", admin, pprof.Trace)
		h("GET /debug/pprof/symbol", admin, pprof.Symbol)
	}

	// Many API requests over one WebSocket connection (package
	// multiplex): each is authenticated and authorized on its own, with
	// the upgrade request's credentials unless it carries its own.
	h("GET /v1/mux", user, s.multiplexed.ServeHTTP)

	h("GET /v1/cluster", user, s.clusterStatus)
	// Join comes from the joining node itself, authenticated by its node
	// certificate (checkJoiner), or from a member passing it on.
	h("POST /v1/cluster/join", internal, s.clusterJoin)
	s.pkiRoutes()
	h("DELETE /v1/cluster/nodes/{id}", admin, s.clusterRemove)

	h("GET /v1/tables", user, s.listTables)                                      // lists the tables the caller has a permission on
	h("GET /v1/tables/{table}", user, s.getTable)                                // any permission on the table
	h("PUT /v1/tables/{table}", perm(tandem.ActTableAdmin, "table"), s.putTable) // create or change the schema
	h("DELETE /v1/tables/{table}", perm(tandem.ActTableAdmin, "table"), s.dropTable)

	// Record routes check table and attribute permissions themselves
	// (authz.go): which ones depends on the body and query.
	h("POST /v1/tables/{table}/records", user, s.insertRecord)
	h("GET /v1/tables/{table}/records", user, s.queryRecords)
	h("GET /v1/tables/{table}/records/{key}", user, s.getRecord)
	h("PUT /v1/tables/{table}/records/{key}", user, s.putRecord)
	h("PATCH /v1/tables/{table}/records/{key}", user, s.patchRecord)
	h("DELETE /v1/tables/{table}/records/{key}", user, s.deleteRecord)

	h("POST /v1/tx", user, s.postTx)

	h("GET /v1/whoami", user, s.whoami)
	h("POST /v1/users", admin, s.createUser)
	h("GET /v1/users", admin, s.listUsers)
	h("GET /v1/users/{name}", user, s.getUser)              // self or admin
	h("PUT /v1/users/{name}/password", user, s.setPassword) // self (with current_password) or admin
	h("PUT /v1/users/{name}/roles", admin, s.setUserRoles)
	h("DELETE /v1/users/{name}", admin, s.deleteUser)
	h("GET /v1/roles", admin, s.listRoles)
	h("GET /v1/roles/{name}", admin, s.getRole)
	h("PUT /v1/roles/{name}", admin, s.putRole)
	h("DELETE /v1/roles/{name}", admin, s.deleteRole)
	h("POST /v1/tokens", user, s.createToken)        // for oneself; for another user: admin
	h("GET /v1/tokens", user, s.listTokens)          // one's own; admin: all or ?user=
	h("DELETE /v1/tokens/{id}", user, s.revokeToken) // one's own or admin
	h("GET /v1/audit", admin, s.getAudit)

	// Contracts: deploy and roll back need contract.deploy, calls
	// contract.call on the contract; listing and reading show what the
	// caller may deploy or call (contracts.go). A contract runs with its
	// own rights: the call permission is the gate, and Caller() lets the
	// contract apply per-user rules (docs/contracts.md).
	h("GET /v1/contracts", user, s.listContracts)
	h("PUT /v1/contracts/{name}", perm(tandem.ActContractDeploy, "name"), s.deployContract)
	h("GET /v1/contracts/{name}", user, s.getContract)
	h("POST /v1/contracts/{name}/rollback", perm(tandem.ActContractDeploy, "name"), s.rollbackContract)
	h("POST /v1/contracts/{name}/{function}", perm(tandem.ActContractCall, "name"), s.callContract)
	h("GET /v1/events", user, s.listEvents) // events of the contracts the caller may deploy or call

	// Node to node: authenticated by node certificates (mutual TLS),
	// never by user credentials.
	h("POST /internal/v1/propose", internal, s.nodeOnly(s.internalPropose))
	h("POST /internal/v1/call", internal, s.nodeOnly(s.internalCall)) // one call: kept for followers of an older version
	h("POST /internal/v1/calls", internal, s.nodeOnly(s.internalCalls))
	h("GET /internal/v1/readindex", internal, s.nodeOnly(s.internalReadIndex))
	// A member's multiplexed connection for its frequent internal calls
	// (forwarded batches, read indexes); each request on it is checked as
	// over HTTP: internal routes by the connection's node certificate.
	h("GET /internal/v1/mux", internal, s.nodeOnly(s.multiplexed.ServeHTTP))
	h("GET /internal/v1/status", internal, s.nodeOnly(s.internalStatus))
}

// ServeHTTP implements http.Handler. It recovers from handler panics and
// rewrites the mux's own plain-text 404 and 405 answers as JSON errors.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// r.URL.Query() silently drops pairs it cannot decode (a bad %-escape, a
	// ';'): a query filter written that way would vanish and the query
	// would return records the client did not ask for.
	if r.URL.RawQuery != "" {
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			writeError(w, tandem.Errorf(tandem.CodeInvalid, "malformed query string: %v", err))
			return
		}
	}
	jw := &jsonErrorWriter{ResponseWriter: w, s: s, r: r}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.opts.Logger.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
			if !jw.wroteHeader {
				writeError(w, tandem.Errorf(tandem.CodeInternal, "internal error"))
			}
		}
	}()
	s.mux.ServeHTTP(jw, r)
}

// jsonErrorWriter replaces the plain-text bodies net/http's mux writes for
// unknown routes and wrong methods with Tandem's JSON errors, given to
// authenticated callers only: others get the authentication error, as on
// a route that exists, so the 404s do not map the API for strangers.
type jsonErrorWriter struct {
	http.ResponseWriter
	s           *Server
	r           *http.Request
	wroteHeader bool
	swallow     bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) &&
		w.Header().Get("Content-Type") != "application/json" {
		w.swallow = true
		if w.s.authenticate(w.ResponseWriter, w.r, user) == nil {
			return // answered 401, 403 or 429
		}
		msg := "no such endpoint; see docs/api.md"
		c := tandem.CodeNotFound
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed here; allowed: " + w.Header().Get("Allow")
			c = "method_not_allowed"
		}
		h := w.Header()
		h.Del("X-Content-Type-Options")
		h.Set("Content-Type", "application/json")
		w.ResponseWriter.WriteHeader(code)
		json.NewEncoder(w.ResponseWriter).Encode(errorBody{Error: tandem.Error{Code: c, Message: msg}})
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *jsonErrorWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
