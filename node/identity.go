package node

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/api"
	"github.com/tandemdb/tandem/consensus"
	"github.com/tandemdb/tandem/pki"
)

// Enrollment and renewal timing.
const (
	enrollPatience = 2 * time.Minute // retrying unreachable --join addresses
	renewEvery     = time.Hour       // how often the certificate's age is checked
)

// insecureWarning is logged at start with Insecure.
const insecureWarning = "INSECURE MODE (--insecure): the API serves plain HTTP and Raft runs over plain TCP without certificates; " +
	"anyone who can reach this node's ports can read and change its data and join the cluster. Use it only for local development."

// openSecurity gives the node its TLS identity: loaded from the data
// folder, created with a new CA when bootstrapping, or obtained with a
// join token. With Insecure it only warns.
func (n *Node) openSecurity() error {
	if n.opts.Insecure {
		n.scheme = "http"
		n.log.Warn(insecureWarning)
		return nil
	}
	n.scheme = "https"
	dir := n.opts.DataDir
	var (
		b   *pki.Bundle
		err error
	)
	switch {
	case pki.HasBundle(dir):
		b, err = pki.Load(dir)
		if err != nil && pki.HasCAKey(dir) {
			// A crash while a renewal replaced node.key and node.crt can
			// leave them unmatched; the CA key mends that.
			n.log.Warn("the node certificate is unusable; issuing a new one from the CA key", "err", err)
			b, err = pki.Reissue(dir, n.opts.ID, n.hosts(), time.Now())
		}
	case pki.HasCAKey(dir): // node.crt deleted to renew it now
		if b, err = pki.Reissue(dir, n.opts.ID, n.hosts(), time.Now()); err == nil {
			n.log.Info("issued this node a new certificate", "not_after", b.NodeCert.NotAfter)
		}
	case hasRaftFiles(dir):
		err = fmt.Errorf("node: %s has Raft state but no certificates: it was run with --insecure; keep running it so, or start a new node in an empty folder", dir)
	case n.opts.Bootstrap:
		if b, err = pki.Bootstrap(n.opts.ID, n.hosts(), time.Now()); err == nil {
			err = pki.Save(dir, b)
		}
		if err == nil {
			n.log.Info("created the cluster CA", "ca", filepath.Join(dir, pki.CACertFile), "fingerprint", b.CA().Fingerprint())
		}
	case n.opts.JoinToken != "":
		b, err = n.enroll()
	default:
		err = fmt.Errorf("node: %s holds no certificates: start the first node with --bootstrap, the others with --join URL --token TOKEN (from `tandem token create`), or use --insecure for local development", dir)
	}
	if err != nil {
		return err
	}
	var apiCert *tls.Certificate
	if n.opts.TLSCertFile != "" || n.opts.TLSKeyFile != "" {
		if n.opts.TLSCertFile == "" || n.opts.TLSKeyFile == "" {
			return errors.New("node: --tls-cert and --tls-key go together")
		}
		if apiCert, err = pki.LoadKeyPair(n.opts.TLSCertFile, n.opts.TLSKeyFile); err != nil {
			return err
		}
	}
	if n.ident, err = pki.NewIdentity(b, apiCert, nil); err != nil {
		return err
	}
	if id := n.ident.NodeID(); id != n.opts.ID {
		return fmt.Errorf("node: the certificate in %s is node %s's, not %s's", dir, id, n.opts.ID)
	}
	return n.renew()
}

// hasRaftFiles reports whether dir/raft holds anything.
func hasRaftFiles(dir string) bool {
	entries, err := os.ReadDir(filepath.Join(dir, "raft"))
	return err == nil && len(entries) > 0
}

// hosts are this node's host names and IPs for its certificate (see
// certHosts), and the machine's host name if it listens on a wildcard
// address.
func (n *Node) hosts() []string {
	addrs := []string{n.opts.HTTPAddr, n.opts.AdvertiseHTTP, n.opts.RaftAddr}
	hosts := certHosts(addrs...)
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil {
			if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
				if name, err := os.Hostname(); err == nil {
					return pki.HostsOf(append(hosts, name)...)
				}
			}
		}
	}
	return hosts
}

// certHosts are the hosts of addrs, plus "localhost" if one is a loopback
// IP (so that https://localhost:PORT verifies too).
func certHosts(addrs ...string) []string {
	hosts := pki.HostsOf(addrs...)
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return pki.HostsOf(append(hosts, "localhost")...)
		}
	}
	return hosts
}

// URL is the API's base URL: https://, or http:// with Insecure.
func (n *Node) URL() string { return n.scheme + "://" + n.HTTPAddr() }

// peerTLS is the client configuration for calls to other nodes; nil with
// Insecure.
func (n *Node) peerTLS() *tls.Config {
	if n.ident == nil {
		return nil
	}
	return n.ident.PeerClientConfig()
}

// apiPKI is what the API serves the PKI endpoints from; nil with
// Insecure (the API then answers them with "not found").
func (n *Node) apiPKI() api.PKI {
	if n.ident == nil {
		return nil
	}
	return n
}

// serveHTTP serves the API on the listener, over TLS unless Insecure.
func (n *Node) serveHTTP() error {
	if n.ident == nil {
		return n.http.Serve(n.listener)
	}
	n.http.TLSConfig = n.ident.APIServerConfig()
	return n.http.ServeTLS(n.listener, "", "")
}

// openRaft opens the Raft member, over a mutual TLS stream layer unless
// Insecure.
func (n *Node) openRaft(opts consensus.Options) (*consensus.Raft, error) {
	if n.ident == nil {
		return consensus.Open(opts)
	}
	stream, err := consensus.NewTLSStream(consensus.TLSStreamOptions{
		Addr:   opts.RaftAddr,
		Server: n.ident.PeerServerConfig(),
		Client: n.ident.PeerClientConfig(),
		Logger: n.log.With("component", "raft-tls"),
	})
	if err != nil {
		return nil, err
	}
	opts.Stream = stream
	r, err := consensus.Open(opts)
	if err != nil {
		stream.Close()
		return nil, err
	}
	return r, nil
}

// enroll obtains this node's certificate with its join token: over TLS
// pinned to the CA fingerprint in the token, it sends the token and a
// certificate request to each --join address in turn until one answers.
// A refusal (bad, used or expired token; a server of another CA) ends it
// at once; unreachable addresses are retried for enrollPatience.
func (n *Node) enroll() (*pki.Bundle, error) {
	tok, err := pki.ParseToken(n.opts.JoinToken)
	if err != nil {
		return nil, fmt.Errorf("node: --token: %w", err)
	}
	if len(n.opts.Join) == 0 {
		return nil, errors.New("node: --token needs --join with the address of a cluster member")
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(n.opts.ID, key)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig:     pki.PinnedClientConfig(tok.Fingerprint, nil),
		TLSHandshakeTimeout: 10 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}}
	defer hc.CloseIdleConnections()
	req := tandem.EnrollRequest{Token: n.opts.JoinToken, CSR: string(csr), Node: n.Info()}
	deadline := time.Now().Add(enrollPatience)
	for {
		for _, addr := range n.opts.Join {
			var resp tandem.EnrollResponse
			ctx, cancel := context.WithTimeout(n.ctx, 40*time.Second)
			err := n.callWith(ctx, hc, http.MethodPost, hostOf(addr), "/v1/cluster/enroll", req, &resp)
			cancel()
			if err == nil {
				b, err := enrolled(resp, key, tok.Fingerprint)
				if err == nil {
					err = pki.Save(n.opts.DataDir, b)
				}
				if err != nil {
					return nil, fmt.Errorf("node: enroll via %s: %w", addr, err)
				}
				n.log.Info("enrolled: received a node certificate", "via", addr, "ca_fingerprint", tok.Fingerprint, "holds_ca_key", b.CAKey != nil)
				return b, nil
			}
			if errors.Is(err, pki.ErrNotPinned) {
				return nil, fmt.Errorf("node: enroll via %s: %w", addr, err)
			}
			if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
				return nil, fmt.Errorf("node: %s serves plain HTTP: that cluster runs with --insecure, and a node joins it with --insecure and no token", addr)
			}
			switch tandem.ErrorCode(err) {
			case tandem.CodeUnauthenticated, tandem.CodeForbidden, tandem.CodeInvalid, tandem.CodeConflict, tandem.CodeNotFound:
				return nil, fmt.Errorf("node: the cluster refused the join token (via %s): %w", addr, err)
			}
			n.log.Warn("enroll failed; will retry", "via", addr, "err", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("node: could not enroll through %v within %v", n.opts.Join, enrollPatience)
		}
		if !sleepCtx(n.ctx, time.Second) {
			return nil, errors.New("node: stopped while enrolling")
		}
	}
}

// enrolled checks an enroll answer and turns it into a bundle.
func enrolled(resp tandem.EnrollResponse, key crypto.Signer, fingerprint string) (*pki.Bundle, error) {
	certs, err := pki.ParseCerts([]byte(resp.Certificate))
	if err != nil {
		return nil, err
	}
	cas, err := pki.ParseCerts([]byte(resp.CA))
	if err != nil {
		return nil, err
	}
	if pki.Fingerprint(cas[0]) != fingerprint {
		return nil, pki.ErrNotPinned
	}
	b := &pki.Bundle{CAs: cas, NodeCert: certs[0], NodeKey: key}
	if resp.CAKey != "" {
		if b.CAKey, err = pki.ParseKey([]byte(resp.CAKey)); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// renew replaces the node certificate when a third of its lifetime is
// left or it does not name the node's current hosts (its addresses
// changed), if this node holds the CA key: saved first, then served.
func (n *Node) renew() error {
	hosts := n.hosts()
	b, err := n.ident.Renew(hosts, !pki.Covers(n.ident.NodeCert(), hosts))
	if err != nil || b == nil {
		return err
	}
	if err := pki.Save(n.opts.DataDir, b); err != nil {
		return fmt.Errorf("node: save renewed certificate: %w", err)
	}
	n.ident.SetNodeCert(b.NodeCert, b.NodeKey)
	n.log.Info("renewed the node certificate", "not_after", b.NodeCert.NotAfter)
	return nil
}

// renewLoop checks the node certificate's age every renewEvery.
func (n *Node) renewLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(renewEvery)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
			if err := n.renew(); err != nil {
				n.log.Error("certificate renewal failed; will retry", "err", err, "not_after", n.ident.NodeCert().NotAfter)
			}
		}
	}
}
