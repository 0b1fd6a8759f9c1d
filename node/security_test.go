package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/node"
	"github.com/tandemdb/tandem/pki"
)

// testAdmin makes a bootstrapping node create the admin user (with cheap
// password hashing); adminAuth is the clients' matching credentials.
var (
	testAdmin = node.SecurityOptions{
		AdminPassword: "in-process-admin",
		HashParams:    &auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	}
	adminAuth = client.WithBasicAuth("admin", "in-process-admin")
)

// TestSecureJoin runs secure nodes in one process: the first bootstraps
// the CA, a second joins with a join token and replicates over mutual TLS,
// and every bad way of joining is refused before the node starts.
func TestSecureJoin(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	d1 := t.TempDir()
	n1, err := node.Open(node.Options{ID: "n1", DataDir: d1, HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t), Bootstrap: true, Logger: quiet, Security: testAdmin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n1.Close() })
	if !strings.HasPrefix(n1.URL(), "https://") {
		t.Fatalf("secure node serves %s", n1.URL())
	}
	caFile := filepath.Join(d1, pki.CACertFile)
	c1, err := client.New([]string{n1.URL()}, client.WithCAFile(caFile), adminAuth)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error { return c1.Ready(ctx) })
	waitFor(t, func() error { _, err := c1.WhoAmI(ctx); return err }) // the admin exists

	open := func(id, token string) (*node.Node, error) {
		nd, err := node.Open(node.Options{ID: id, DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
			Join: []string{n1.URL()}, JoinToken: token, Logger: quiet})
		if err == nil {
			t.Cleanup(func() { nd.Close() })
		}
		return nd, err
	}
	newToken := func(ttl time.Duration) string {
		tok, err := c1.CreateJoinToken(ctx, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}

	good := newToken(time.Hour)
	n2, err := open("n2", good)
	if err != nil {
		t.Fatalf("join with a fresh token: %v", err)
	}
	c2, err := client.New([]string{n2.URL()}, client.WithCAFile(caFile), adminAuth)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error { return c2.Ready(ctx) })
	// Writes on the follower are forwarded to the leader over mutual TLS.
	if _, _, err := c2.CreateTable(ctx, tandem.TableSchema{Name: "kv"}); err != nil {
		t.Fatalf("write through the joined node: %v", err)
	}

	parsed, _ := pki.ParseToken(newToken(time.Hour))
	parsed.Secret[0] ^= 1
	expired := newToken(time.Second)
	time.Sleep(1100 * time.Millisecond)
	otherCA, _ := pki.Bootstrap("x", nil, time.Now())
	foreign, _ := pki.NewToken(otherCA.CA().Fingerprint())
	for _, tc := range []struct {
		name, token, want string
	}{
		{"no token", "", "holds no certificates"},
		{"reused token", good, "already used"},
		{"wrong secret", parsed.String(), "wrong secret"},
		{"expired token", expired, "expired"},
		{"token of another cluster", foreign.String(), "does not contain the cluster CA"},
		{"malformed token", "TJT1.nope", "not a join token"},
	} {
		_, err := open("n3", tc.token)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open returned %v; want an error containing %q", tc.name, err, tc.want)
		}
	}

	// Internal endpoints need a node certificate.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mustPool(t, caFile)}}}
	resp, err := hc.Get(n1.URL() + "/internal/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("internal endpoint without a node certificate: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
}

// TestRaftRefusesStrangers: the Raft port answers nothing to a plain TCP
// client or to a TLS client whose certificate is from another CA.
func TestRaftRefusesStrangers(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	raftAddr := freeAddr(t)
	n1, err := node.Open(node.Options{ID: "n1", DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: raftAddr, Bootstrap: true, Logger: quiet, Security: testAdmin})
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()

	// A raw TCP client speaking hashicorp/raft's framing (rpcType byte,
	// then msgpack) gets the connection closed, never an answer.
	conn, err := net.Dial("tcp", raftAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	conn.Write([]byte{0, 0x80, 0x80, 0x80, 0x80})
	buf := make([]byte, 64)
	if n, _ := conn.Read(buf); n > 0 && buf[0] != 0x15 {
		// A TLS alert record (type 21) is the most the server may send.
		t.Fatalf("the Raft port answered a plain TCP client with %x", buf[:n])
	}
	conn.Close()

	other, _ := pki.Bootstrap("n1", []string{"127.0.0.1"}, time.Now())
	ident, err := pki.NewIdentity(other, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ident.PeerClientConfig()
	cfg.InsecureSkipVerify, cfg.VerifyConnection = true, nil // even trusting the server blindly
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", raftAddr, cfg)
	if err == nil {
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = tc.Read(make([]byte, 1))
		tc.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client of another CA: %v; want a refused certificate", err)
	}
}

func mustPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	p, err := client.LoadCAFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUserSuppliedAPICertificate: with --tls-cert/--tls-key, API clients
// get the user's certificate while nodes (which ask for
// pki.PeerServerName) still get the node certificate, so joining and
// forwarding keep working.
func TestUserSuppliedAPICertificate(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	// The user's own CA and a server certificate from it.
	userCA, err := pki.NewCA(time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.NewKey()
	cert, err := userCA.SignNode("api", key.Public(), []string{"127.0.0.1"}, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, userCAFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key"), filepath.Join(dir, "user-ca.crt")
	keyPEM, _ := pki.KeyPEM(key)
	for f, b := range map[string][]byte{certFile: pki.CertPEM(cert), keyFile: keyPEM, userCAFile: pki.CertPEM(userCA.Cert)} {
		if err := pki.WriteFileAtomic(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	d1 := t.TempDir()
	n1, err := node.Open(node.Options{ID: "n1", DataDir: d1, HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t), Bootstrap: true, Security: testAdmin,
		TLSCertFile: certFile, TLSKeyFile: keyFile, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n1.Close() })
	user, err := client.New([]string{n1.URL()}, client.WithCAFile(userCAFile), adminAuth)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() error { return user.Ready(ctx) })
	waitFor(t, func() error { _, err := user.WhoAmI(ctx); return err }) // the admin exists
	cluster, _ := client.New([]string{n1.URL()}, client.WithCAFile(filepath.Join(d1, pki.CACertFile)), adminAuth)
	if _, err := cluster.Cluster(ctx); err == nil {
		t.Fatal("an API client trusting only the cluster CA accepted the user-supplied certificate")
	}

	tok, err := user.CreateJoinToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := node.Open(node.Options{ID: "n2", DataDir: t.TempDir(), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		Join: []string{n1.URL()}, JoinToken: tok.Token, Logger: quiet})
	if err != nil {
		t.Fatalf("join through a node serving a user certificate: %v", err)
	}
	t.Cleanup(func() { n2.Close() })
	c2, _ := client.New([]string{n2.URL()}, client.WithCAFile(filepath.Join(d1, pki.CACertFile)), adminAuth)
	waitFor(t, func() error { return c2.Ready(ctx) })
	if _, _, err := c2.CreateTable(ctx, tandem.TableSchema{Name: "kv"}); err != nil {
		t.Fatalf("write forwarded to the leader serving a user certificate: %v", err)
	}
}
