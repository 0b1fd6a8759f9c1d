package node

import (
	"context"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/api"
	"github.com/tandemdb/tandem/auth"
	"github.com/tandemdb/tandem/contract"
)

// SecurityOptions configure authentication (docs/security.md). The zero
// value is secure with the defaults.
type SecurityOptions struct {
	// AdminPassword is the password of the admin user that a node started
	// with Bootstrap creates when the cluster has no users. Empty: no
	// admin is created.
	AdminPassword string
	// OnAdminCreated, if set, is called once that admin user exists.
	OnAdminCreated func()
	// UserLoginFailures and AddrLoginFailures are the failed logins
	// allowed per minute per user name and per client address (defaults
	// 10 and 30).
	UserLoginFailures, AddrLoginFailures int
	// HashParams overrides the argon2id parameters for new passwords
	// (tests use cheap ones).
	HashParams *auth.Params
}

// newSecurity builds the API's security from the store, or returns nil in
// insecure mode.
func (n *Node) newSecurity() (*api.Security, error) {
	o := n.opts.Security
	if n.opts.Insecure { // no authentication either: every request is an anonymous admin
		return nil, nil
	}
	a, err := auth.New(auth.Options{
		State:        n.store,
		UserFailures: auth.Limit{Burst: o.UserLoginFailures, Per: time.Minute},
		AddrFailures: auth.Limit{Burst: o.AddrLoginFailures, Per: time.Minute},
	})
	if err != nil {
		return nil, err
	}
	n.audit = api.NewAuditLog(api.AuditLogOptions{Proposer: proposerAdapter{n.proposer}, Logger: n.log})
	n.audit.Start()
	return &api.Security{Auth: a, State: n.store, Audit: n.audit, HashParams: o.HashParams}, nil
}

// contractRights returns a caller's permissions for a contract deployed
// with caller rights (contract.Options.Rights), compiled from this node's
// replicated users and roles as they are now: a write call runs on the
// leader, which derives them from the caller's name the same way the node
// that authenticated the request did (a token's caller is its owner).
// Insecure mode: the anonymous admin may do everything. An unknown caller
// (a user deleted since) may do nothing.
func (n *Node) contractRights(caller string) contract.Rights {
	if n.opts.Insecure {
		return auth.ContractRights{Perms: auth.AdminPerms()}
	}
	u, ok := n.store.User(caller)
	if !ok {
		return auth.ContractRights{Perms: auth.Compile()}
	}
	return auth.ContractRights{Perms: auth.UserPerms(n.store, u)}
}

// auditContractDenial records in the audit log an operation that a
// caller-rights contract function tried and the caller's rights refused
// (contract.Options.OnDenied): the request itself was allowed, so without
// this the attempt would leave no trace. It goes through the same bounded
// queue as other denials; nothing is recorded in insecure mode.
func (n *Node) auditContractDenial(req tandem.ContractCall, err error) {
	if n.audit == nil {
		return
	}
	n.audit.Record(tandem.AuditEntry{
		Time: time.Now().UnixNano(), Node: n.opts.ID, Principal: req.Caller,
		Action: "contract_call", Target: req.Contract + "." + req.Function,
		Outcome: tandem.AuditDenied, Detail: tandem.ErrorMessage(err),
	})
}

// bootstrapAdmin creates the admin user once the node leads a cluster
// that has no users. It runs on the bootstrapping node only; the create
// command fails harmlessly if a user of that name exists.
func (n *Node) bootstrapAdmin() {
	defer n.wg.Done()
	o := n.opts.Security
	for {
		if n.Ready() == nil && n.raft.IsLeader() {
			break
		}
		if !sleepCtx(n.ctx, 100*time.Millisecond) {
			return
		}
	}
	if len(n.store.Users()) > 0 {
		return
	}
	p := auth.DefaultParams()
	if o.HashParams != nil {
		p = *o.HashParams
	}
	hash, err := auth.HashPassword(o.AdminPassword, p, nil)
	if err != nil {
		n.log.Error("bootstrap: hash the admin password", "err", err)
		return
	}
	cmd := tandem.Command{
		Type: tandem.CmdCreateUser,
		User: &tandem.User{Name: "admin", PasswordHash: hash, Roles: []string{"admin"}},
		Audit: []tandem.AuditEntry{{Time: time.Now().UnixNano(), Node: n.opts.ID, Principal: "bootstrap",
			Action: "create_user", Target: "admin", Outcome: tandem.AuditOK}},
	}
	for {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		res, err := n.proposer.Propose(ctx, cmd)
		cancel()
		if err == nil {
			err = res.Err
		}
		if err == nil || tandem.ErrorCode(err) == tandem.CodeConflict {
			if err == nil {
				n.log.Info("bootstrap: created the admin user")
				if o.OnAdminCreated != nil {
					o.OnAdminCreated()
				}
			}
			return
		}
		n.log.Warn("bootstrap: create the admin user; will retry", "err", err)
		if !sleepCtx(n.ctx, time.Second) {
			return
		}
	}
}
