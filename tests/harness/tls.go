package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/pki"
)

// security is what the harness holds of a secure cluster's PKI.
type security struct {
	caFile string
	pool   *x509.CertPool
	// client trusts the CA and presents no certificate.
	client *http.Client
	bundle *pki.Bundle // the first node's, with the CA key

	// asNode holds, per node ID, a client presenting a node certificate
	// for that ID, which the harness signs with the CA key: it asks each
	// node for /internal/v1/status as the node itself, since only members
	// may call internal endpoints.
	mu     sync.Mutex
	asNode map[string]*http.Client
}

// loadCA waits for the bootstrapping node to write its CA and builds the
// harness's clients from it.
func (c *Cluster) loadCA(first *Node) {
	c.t.Helper()
	if c.sec == nil {
		return
	}
	dataDir := filepath.Join(first.Dir, "data")
	deadline := time.Now().Add(30 * time.Second)
	var (
		b   *pki.Bundle
		err error
	)
	for {
		if b, err = pki.Load(dataDir); err == nil {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %s wrote no CA within 30s: %v; log: %s", first.ID, err, first.LogPath())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A copy outlives the node's folder, which a test may wipe.
	c.sec.caFile = filepath.Join(c.dir, pki.CACertFile)
	if err := os.WriteFile(c.sec.caFile, pki.CertPEM(b.CAs[0]), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.sec.pool = x509.NewCertPool()
	c.sec.pool.AddCert(b.CAs[0])
	c.sec.bundle = b
	c.sec.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.sec.pool}}}
	c.sec.asNode = map[string]*http.Client{}
}

// nodeTLS is a client TLS configuration presenting a node certificate for
// id, signed by the harness with the cluster's CA key: a test can act as a
// node (an operator holding the CA key could do the same).
func (c *Cluster) nodeTLS(id string) *tls.Config {
	c.t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		c.t.Fatal(err)
	}
	cert, err := c.sec.bundle.CA().SignNode(id, key.Public(), nil, time.Now(), 0)
	if err != nil {
		c.t.Fatal(err)
	}
	ident, err := pki.NewIdentity(&pki.Bundle{CAs: c.sec.bundle.CAs, NodeCert: cert, NodeKey: key}, nil, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return ident.PeerClientConfig()
}

// NodeClientOptions are client.New options that present a node
// certificate for id, for calls only nodes may make (POST /v1/cluster/join,
// /internal/v1/*). Nil if the cluster is insecure.
func (c *Cluster) NodeClientOptions(id string) []client.Option {
	if c.sec == nil {
		return nil
	}
	return []client.Option{client.WithTLSConfig(c.nodeTLS(id))}
}

// Secure reports whether the cluster runs with TLS.
func (c *Cluster) Secure() bool { return c.sec != nil }

// CAFile is the path of the cluster's CA certificate (PEM), "" if insecure.
func (c *Cluster) CAFile() string {
	if c.sec == nil {
		return ""
	}
	return c.sec.caFile
}

// HTTPClient is an http.Client that trusts the cluster's CA (and presents
// no client certificate) and adds the admin's credentials to every
// request that has none.
func (c *Cluster) HTTPClient() *http.Client {
	rt := http.DefaultTransport
	if c.sec != nil && c.sec.client != nil && c.sec.client.Transport != nil {
		rt = c.sec.client.Transport
	}
	return &http.Client{Transport: adminTransport{rt}}
}

// AnonymousClient is an http.Client that trusts the cluster's CA and sends
// no credentials of its own (for tests of authentication), or
// http.DefaultClient if the cluster is insecure.
func (c *Cluster) AnonymousClient() *http.Client {
	if c.sec == nil || c.sec.client == nil {
		return http.DefaultClient
	}
	return c.sec.client
}

// AsNode is an http.Client presenting a node certificate for id (signed
// by the harness with the cluster's CA key), or http.DefaultClient if the
// cluster is insecure. The harness calls a node's /internal/v1/status as
// that node itself.
func (c *Cluster) AsNode(id string) *http.Client {
	if c.sec == nil || c.sec.bundle == nil {
		return http.DefaultClient
	}
	c.sec.mu.Lock()
	defer c.sec.mu.Unlock()
	hc := c.sec.asNode[id]
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: c.nodeTLS(id)}}
		c.sec.asNode[id] = hc
	}
	return hc
}

// ClientOptions are the client.New options that reach this cluster as its
// admin: trust in its CA (none if it is insecure) and the admin's
// credentials.
func (c *Cluster) ClientOptions() []client.Option {
	opts := []client.Option{client.WithBasicAuth(AdminUser, AdminPassword)}
	if c.sec == nil {
		return opts
	}
	return append(opts, client.WithRootCAs(c.sec.pool))
}

// JoinToken creates a join token through a running node, failing the test
// if none can within 30s.
func (c *Cluster) JoinToken(ttl time.Duration) string {
	c.t.Helper()
	tok, err := c.TryJoinToken(ttl)
	if err != nil {
		c.t.Fatal(err)
	}
	return tok
}

// TryJoinToken creates a join token through a running node, trying for up
// to 30s. Unlike JoinToken it may be called from any goroutine.
func (c *Cluster) TryJoinToken(ttl time.Duration) (string, error) {
	var addrs []string
	for _, n := range c.Nodes {
		if n.Running() {
			addrs = append(addrs, n.URL())
		}
	}
	if len(addrs) == 0 {
		return "", errors.New("harness: no running node to create a join token")
	}
	cl, err := client.New(addrs, c.ClientOptions()...)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		tok, err := cl.CreateJoinToken(ctx, ttl)
		if err == nil {
			return tok.Token, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("harness: create join token: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
