package api

import (
	"context"
	"net/http"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/pki"
)

// PKI is the node's cluster PKI as the API uses it: join tokens,
// enrollment of joining nodes, and the CA certificate.
type PKI interface {
	// CreateJoinToken creates and replicates a join token valid for ttl.
	CreateJoinToken(ctx context.Context, ttl time.Duration) (tandem.CreatedJoinToken, error)
	// JoinTokens lists the replicated join tokens.
	JoinTokens(ctx context.Context) ([]tandem.JoinToken, error)
	// DeleteJoinToken revokes a join token.
	DeleteJoinToken(ctx context.Context, id string) error
	// Enroll checks and consumes a join token and signs the joining node's
	// certificate request, passing the request to the leader unless it was
	// already forwarded.
	Enroll(ctx context.Context, req tandem.EnrollRequest, forwarded bool) (tandem.EnrollResponse, error)
	// CACert is the cluster CA certificate (PEM).
	CACert() []byte
	// IsMember reports whether node id is in the cluster's configuration:
	// a removed node keeps a valid certificate, but not its rights.
	IsMember(id string) bool
	// MayJoin reports whether node id may ask to join as itself: false for
	// a node that was removed and has not enrolled with a token since.
	MayJoin(id string) bool
}

// Token lifetimes accepted by POST /v1/cluster/tokens.
const (
	DefaultJoinTokenTTL = time.Hour
	MaxJoinTokenTTL     = 7 * 24 * time.Hour
)

// pkiRoutes registers the PKI endpoints (docs/api.md, "Cluster
// security"). The token endpoints are for cluster admins; enroll is
// authenticated by the join token it carries, and the CA certificate is
// public.
func (s *Server) pkiRoutes() {
	if s.opts.PKI == nil {
		h := func(w http.ResponseWriter, r *http.Request) {
			writeError(w, tandem.Errorf(tandem.CodeNotFound, "this node runs with --insecure: there is no cluster CA and no join token"))
		}
		for _, p := range []string{"GET /v1/cluster/ca", "POST /v1/cluster/tokens", "GET /v1/cluster/tokens", "DELETE /v1/cluster/tokens/{id}", "POST /v1/cluster/enroll"} {
			s.route(p, open, h)
		}
		return
	}
	s.route("GET /v1/cluster/ca", open, s.clusterCA)
	s.route("POST /v1/cluster/tokens", admin, s.createJoinToken)
	s.route("GET /v1/cluster/tokens", admin, s.listJoinTokens)
	s.route("DELETE /v1/cluster/tokens/{id}", admin, s.deleteJoinToken)
	s.route("POST /v1/cluster/enroll", open, s.clusterEnroll)
}

func (s *Server) clusterCA(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.WriteHeader(http.StatusOK)
	w.Write(s.opts.PKI.CACert())
}

func (s *Server) createJoinToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TTL string `json:"ttl"`
	}
	ttl := DefaultJoinTokenTTL
	if r.ContentLength != 0 {
		if err := s.decodeStrict(w, r, "token request", &req); err != nil {
			writeError(w, err)
			return
		}
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > MaxJoinTokenTTL {
			writeError(w, tandem.Errorf(tandem.CodeInvalid, "ttl %q must be a Go duration between 1s and %v, such as 1h", req.TTL, MaxJoinTokenTTL))
			return
		}
		ttl = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.WriteTimeout)
	defer cancel()
	tok, err := s.opts.PKI.CreateJoinToken(ctx, ttl)
	if err != nil {
		writeError(w, err)
		return
	}
	s.auditCommitted(r, "create_join_token", tok.ID)
	writeJSON(w, http.StatusCreated, tok)
}

func (s *Server) listJoinTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.opts.PKI.JoinTokens(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	for i := range toks {
		toks[i].SecretHash = "" // of no use to a reader, and not to be spread
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
}

func (s *Server) deleteJoinToken(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.WriteTimeout)
	defer cancel()
	if err := s.opts.PKI.DeleteJoinToken(ctx, r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	s.auditCommitted(r, "delete_join_token", r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) clusterEnroll(w http.ResponseWriter, r *http.Request) {
	var req tandem.EnrollRequest
	if err := s.decodeStrict(w, r, "enroll request", &req); err != nil {
		writeError(w, err)
		return
	}
	if err := validateNodeInfo(&req.Node); err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	resp, err := s.opts.PKI.Enroll(ctx, req, s.fromNode(r) && r.Header.Get(ForwardedHeader) != "")
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// fromNode reports whether r comes from a member of the cluster: over
// TLS with a verified node certificate of a current member, or from
// anyone when the node is insecure.
func (s *Server) fromNode(r *http.Request) bool {
	return s.checkNode(r) == nil
}

// checkNode returns why r does not come from a member of the cluster, or
// nil if it does (or the node is insecure).
func (s *Server) checkNode(r *http.Request) error {
	if s.opts.Insecure {
		return nil
	}
	id, ok := pki.PeerNodeID(r.TLS)
	if !ok {
		return nodeCertError(r)
	}
	if s.opts.PKI == nil || !s.opts.PKI.IsMember(id) {
		return tandem.Errorf(tandem.CodeForbidden, "%s is for cluster members only; node %s is not a member", r.URL.Path, id)
	}
	return nil
}

// nodeOnly restricts a handler to other members of the cluster (a
// verified node certificate of a member) unless the node is insecure.
func (s *Server) nodeOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkNode(r); err != nil {
			writeError(w, err)
			return
		}
		h(w, r)
	}
}

// checkJoiner allows POST /v1/cluster/join from the joining node itself
// (its certificate names id; it is not a member yet) or from a member
// passing it on; a client without a node certificate cannot add voters.
func (s *Server) checkJoiner(r *http.Request, id string) error {
	if s.opts.Insecure {
		return nil
	}
	peer, ok := pki.PeerNodeID(r.TLS)
	if !ok {
		return nodeCertError(r)
	}
	if peer == id {
		if s.opts.PKI == nil || !s.opts.PKI.MayJoin(id) {
			return tandem.Errorf(tandem.CodeForbidden, "node %s was removed from the cluster; to join again it needs a new join token and an empty data folder", id)
		}
		return nil
	}
	if r.Header.Get(ForwardedHeader) == "" {
		return tandem.Errorf(tandem.CodeForbidden, "node %s cannot join the cluster as node %s", peer, id)
	}
	return s.checkNode(r) // only a member passes joins on
}

func nodeCertError(r *http.Request) error {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return tandem.Errorf(tandem.CodeForbidden, "%s is for cluster nodes only; the client certificate is not a node certificate", r.URL.Path)
	}
	return tandem.Errorf(tandem.CodeUnauthenticated, "%s is for cluster nodes only: it needs a node certificate of the cluster CA", r.URL.Path)
}
