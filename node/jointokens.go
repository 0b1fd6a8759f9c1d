package node

import (
	"context"
	"net/http"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/api"
	"github.com/tandemdb/tandem/pki"
)

var _ api.PKI = (*Node)(nil)

// CACert implements api.PKI.
func (n *Node) CACert() []byte { return n.ident.CAPEM() }

// MayJoin implements api.PKI.
func (n *Node) MayJoin(id string) bool {
	return n.IsMember(id) || !n.store.Removed(id)
}

// IsMember implements api.PKI. It reads Raft's latest configuration
// (an atomic load in hashicorp/raft, cheap enough for every forwarded
// batch), which includes a voter from the moment the leader appends its
// addition: a joining node is never refused by a stale view.
func (n *Node) IsMember(id string) bool {
	servers, err := n.raft.Servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

// CreateJoinToken implements api.PKI: a fresh ID and secret, of which
// only the hash is replicated. Any node can create one; the proposer takes
// the command to the leader.
func (n *Node) CreateJoinToken(ctx context.Context, ttl time.Duration) (tandem.CreatedJoinToken, error) {
	tok, err := pki.NewToken(n.ident.CA().Fingerprint())
	if err != nil {
		return tandem.CreatedJoinToken{}, err
	}
	expires := time.Now().Add(ttl).UnixNano()
	err = n.propose(ctx, tandem.Command{Type: tandem.CmdCreateJoinToken, JoinToken: &tandem.JoinToken{
		ID: tok.ID, SecretHash: pki.HashSecret(tok.Secret), Expires: expires,
	}})
	if err != nil {
		return tandem.CreatedJoinToken{}, err
	}
	n.log.Info("created a join token", "token_id", tok.ID, "expires", time.Unix(0, expires))
	return tandem.CreatedJoinToken{ID: tok.ID, Token: tok.String(), Expires: expires}, nil
}

// JoinTokens implements api.PKI, reading at a linearizable index.
func (n *Node) JoinTokens(ctx context.Context) ([]tandem.JoinToken, error) {
	idx, err := n.ReadIndex(ctx)
	if err == nil {
		err = n.waiter.Wait(ctx, idx)
	}
	if err != nil {
		return nil, err
	}
	return n.store.JoinTokens()
}

// DeleteJoinToken implements api.PKI.
func (n *Node) DeleteJoinToken(ctx context.Context, id string) error {
	if id == "" {
		return tandem.Errorf(tandem.CodeInvalid, "empty join token ID")
	}
	return n.propose(ctx, tandem.Command{Type: tandem.CmdDeleteJoinToken, Name: id})
}

// Enroll implements api.PKI. The leader checks the token's secret,
// consumes the token with a replicated command (so that it is refused
// everywhere from then on, and two nodes racing with one token cannot both
// win) and only then signs the certificate request. The addresses in the
// request become the certificate's SANs; the request's own names are
// ignored.
func (n *Node) Enroll(ctx context.Context, req tandem.EnrollRequest, forwarded bool) (tandem.EnrollResponse, error) {
	var out tandem.EnrollResponse
	tok, err := pki.ParseToken(req.Token)
	if err != nil {
		return out, tandem.WrapError(tandem.CodeUnauthenticated, err, "%v", err)
	}
	ca := n.ident.CA()
	if tok.Fingerprint != ca.Fingerprint() {
		return out, tandem.Errorf(tandem.CodeUnauthenticated, "the join token is for another cluster (its CA fingerprint is not this cluster's)")
	}
	if _, err := pki.ParseCSR([]byte(req.CSR)); err != nil {
		return out, tandem.WrapError(tandem.CodeInvalid, err, "csr: %v", err)
	}
	if !n.raft.IsLeader() {
		if forwarded {
			return out, tandem.Errorf(tandem.CodeUnavailable, "node %s is not the leader; retry", n.opts.ID)
		}
		addr, err := n.leaderHTTP(ctx)
		if err != nil {
			return out, err
		}
		return out, n.call(ctx, http.MethodPost, addr, "/v1/cluster/enroll", req, &out)
	}
	if ca.Key == nil {
		return out, tandem.Errorf(tandem.CodeUnavailable, "the leader %s does not hold the CA key and cannot sign certificates", n.opts.ID)
	}
	stored, err := n.store.JoinToken(tok.ID)
	if tandem.ErrorCode(err) == tandem.CodeNotFound {
		return out, tandem.Errorf(tandem.CodeUnauthenticated, "unknown join token %s (never created, or revoked)", tok.ID)
	} else if err != nil {
		return out, err
	}
	switch {
	case !pki.CheckSecret(stored.SecretHash, tok.Secret):
		n.log.Warn("join refused: wrong token secret", "token_id", tok.ID, "node", req.Node.ID)
		return out, tandem.Errorf(tandem.CodeUnauthenticated, "wrong secret for join token %s", tok.ID)
	case stored.UsedBy != "":
		return out, tandem.Errorf(tandem.CodeUnauthenticated, "join token %s was already used", tok.ID)
	case stored.Expires <= time.Now().UnixNano():
		return out, tandem.Errorf(tandem.CodeUnauthenticated, "join token %s has expired", tok.ID)
	}
	for _, info := range n.store.Nodes() {
		if info.ID == req.Node.ID {
			return out, tandem.Errorf(tandem.CodeConflict, "node %s is already a member; remove it first to join a new node under that ID", req.Node.ID)
		}
	}
	if err := n.propose(ctx, tandem.Command{Type: tandem.CmdUseJoinToken, JoinToken: &tandem.JoinToken{ID: tok.ID, UsedBy: req.Node.ID}}); err != nil {
		return out, err
	}
	cert, err := ca.SignCSR([]byte(req.CSR), req.Node.ID, certHosts(req.Node.HTTPAddr, req.Node.RaftAddr), time.Now(), 0)
	if err != nil {
		return out, err
	}
	caKey, err := pki.KeyPEM(ca.Key)
	if err != nil {
		return out, err
	}
	n.log.Info("enrolled a node", "node", req.Node.ID, "token_id", tok.ID)
	return tandem.EnrollResponse{Certificate: string(pki.CertPEM(cert)), CA: string(n.ident.CAPEM()), CAKey: string(caKey)}, nil
}

// propose proposes one command and returns its rejection or failure.
func (n *Node) propose(ctx context.Context, cmd tandem.Command) error {
	res, err := n.proposer.Propose(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	return err
}
