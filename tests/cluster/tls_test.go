package cluster_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/pki"
	"github.com/tandemdb/tandem/tests/harness"
)

// withToken returns a new node's arguments with its join token replaced
// by token ("" for none) and its --join addresses replaced by via.
func withToken(n *harness.Node, token string, via ...*harness.Node) []string {
	var args []string
	for i := 0; i < len(n.Args); i++ {
		switch n.Args[i] {
		case "--token", "--join":
			i++ // drop the flag's value too
			continue
		}
		args = append(args, n.Args[i])
	}
	for _, v := range via {
		args = append(args, "--join", v.URL())
	}
	if token != "" {
		args = append(args, "--token", token)
	}
	return args
}

// waitExit waits for a node's process to exit on its own and returns its log.
func waitExit(t *testing.T, n *harness.Node, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if exited, _ := n.Exited(); exited {
			return n.ReadLog()
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s still runs after %v; log:\n%s", n.ID, d, harness.Tail(n.LogPath(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestJoinRefused: a node cannot join without a token, with a wrong,
// expired or already used token (also when it asks another node than the
// one the token was used through), or with a token of another cluster. It
// exits at once, saying why, and the cluster is unchanged.
func TestJoinRefused(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 2})
	n1, n2 := c.Nodes[0], c.Nodes[1]

	used := c.JoinToken(time.Hour)
	n3 := c.NewNode(false)
	n3.Args = withToken(n3, used, n1)
	c.Start(n3)
	c.WaitReady(n3, 30*time.Second)
	c.WaitMembers(3, 30*time.Second)

	wrong, err := pki.ParseToken(c.JoinToken(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wrong.Secret[3] ^= 0xff
	expired := c.JoinToken(time.Second)
	time.Sleep(1100 * time.Millisecond)
	otherCA, err := pki.Bootstrap("x", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := pki.NewToken(otherCA.CA().Fingerprint())

	for _, tc := range []struct {
		name, token string
		via         *harness.Node
		want        string
	}{
		{"no token", "", n1, "holds no certificates"},
		{"wrong secret", wrong.String(), n1, "wrong secret"},
		{"expired token", expired, n2, "expired"},
		{"reused token, through another node", used, n2, "already used"},
		{"token of another cluster", foreign.String(), n1, "does not contain the cluster CA"},
	} {
		n := c.NewNode(false)
		n.Args = withToken(n, tc.token, tc.via)
		c.Start(n)
		if log := waitExit(t, n, 30*time.Second); !strings.Contains(log, tc.want) {
			t.Errorf("%s: node log does not say %q:\n%s", tc.name, tc.want, harness.Tail(n.LogPath(), 5))
		}
	}
	c.WaitMembers(3, 10*time.Second)
}

// TestForeignCertificateRefused: a node whose certificate is from another
// CA starts (it has certificates) but can neither join through the API
// nor reach Raft: it never becomes a member.
func TestForeignCertificateRefused(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 1})
	n := c.NewNode(false)
	n.Args = withToken(n, "", c.Nodes[0])
	dataDir := filepath.Join(n.Dir, "data")
	b, err := pki.Bootstrap(n.ID, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Save(dataDir, b); err != nil {
		t.Fatal(err)
	}
	c.Start(n)
	time.Sleep(3 * time.Second)
	c.WaitMembers(1, 5*time.Second)
	if log := harness.Tail(n.LogPath(), 20); !strings.Contains(log, "join failed") || !strings.Contains(log, "certificate") {
		t.Fatalf("the stranger's log should show refused joins:\n%s", log)
	}
}

// TestRaftPortRefusesStrangers: the Raft port of a real node answers a
// plain TCP client with at most a TLS alert, and refuses a TLS client whose
// certificate is from another CA.
func TestRaftPortRefusesStrangers(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 1})
	raftAddr := c.Nodes[0].Raft

	conn, err := net.DialTimeout("tcp", raftAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	// hashicorp/raft's framing: an rpcType byte (0 = AppendEntries), then
	// a msgpack request.
	conn.Write([]byte{0, 0x81, 0xa4, 't', 'e', 'r', 'm', 0x05})
	buf := make([]byte, 256)
	if n, _ := conn.Read(buf); n > 0 && buf[0] != 0x15 {
		t.Fatalf("the Raft port answered a plain TCP client with %x", buf[:n])
	}
	conn.Close()

	other, err := pki.Bootstrap("n1", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{other.NodeCert.Raw}, PrivateKey: other.NodeKey}
	// Even trusting whatever the server presents, the client is refused.
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", raftAddr,
		&tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err == nil {
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = tc.Read(buf)
		tc.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("TLS client of another CA: %v; want its certificate refused", err)
	}
}

// TestNodeOnlyEndpoints: /internal/v1/* refuse a client without a node
// certificate (401) and a node that is not a member (403);
// /v1/cluster/join refuses a client without a node certificate (401) and a
// node joining as another node (403); a client certificate of another CA
// fails the handshake.
func TestNodeOnlyEndpoints(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 1})
	n := c.Nodes[0]
	ctx := t.Context()
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/internal/v1/status"},
		{http.MethodGet, "/internal/v1/readindex"},
		{http.MethodPost, "/internal/v1/propose"},
	} {
		code, err := httpStatus(ctx, c.HTTPClient(), r.method, n.URL()+r.path)
		if err != nil || code != http.StatusUnauthorized {
			t.Errorf("%s %s without a node certificate: %d %v; want 401", r.method, r.path, code, err)
		}
	}
	// A valid node certificate of a node that is not a member (say, one
	// that was removed): 403. The node itself: 200.
	if code, err := httpStatus(ctx, c.AsNode("n7"), http.MethodGet, n.URL()+"/internal/v1/status"); err != nil || code != http.StatusForbidden {
		t.Errorf("internal endpoint with a non-member's certificate: %d %v; want 403", code, err)
	}
	if code, err := httpStatus(ctx, c.AsNode(n.ID), http.MethodGet, n.URL()+"/internal/v1/status"); err != nil || code != http.StatusOK {
		t.Errorf("internal endpoint with a member's certificate: %d %v; want 200", code, err)
	}
	join := func(as []client.Option) error {
		cl := clusterClient(t, c, as...)
		return cl.Join(ctx, clusterNodeInfo(n))
	}
	wantAPIError(t, join(nil), http.StatusUnauthorized)
	wantAPIError(t, join(c.NodeClientOptions("n7")), http.StatusForbidden)
	if err := join(c.NodeClientOptions(n.ID)); err != nil {
		t.Fatalf("a node re-joining as itself: %v", err)
	}

	other, err := pki.Bootstrap("n1", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := client.LoadCAFile(c.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	foreign := &tls.Certificate{Certificate: [][]byte{other.NodeCert.Raw}, PrivateKey: other.NodeKey}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool,
		// Sent although the server asks for certificates of its own CA
		// (with Certificates, Go would send none, and get a 401).
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return foreign, nil },
	}}}
	if code, err := httpStatus(ctx, hc, http.MethodGet, n.URL()+"/internal/v1/status"); err == nil {
		t.Fatalf("a client certificate of another CA got %d; want the handshake refused", code)
	}
}

// TestHTTPSWithExportedCA: the API serves HTTPS under the cluster CA; GET
// /v1/cluster/ca and `tandem ca --fingerprint` export the CA, which then
// verifies the API; a client that does not trust it is refused, and a
// plain HTTP request gets an error, not data.
func TestHTTPSWithExportedCA(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 1})
	n := c.Nodes[0]
	ctx := t.Context()
	want, err := os.ReadFile(c.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	cas, err := pki.ParseCerts(want)
	if err != nil {
		t.Fatal(err)
	}
	fp := pki.Fingerprint(cas[0])

	// The CLI, pinning the fingerprint (as from a join token), writes the CA.
	out := filepath.Join(t.TempDir(), "ca.pem")
	cmd := exec.Command(harness.Binary(t), "ca", "--addr", n.URL(), "--fingerprint", fp, "--out", out)
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), fp) {
		t.Fatalf("tandem ca: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("tandem ca wrote %q (%v); want ca.crt", got, err)
	}
	cmd = exec.Command(harness.Binary(t), "ca", "--addr", n.URL(), "--fingerprint", strings.Repeat("ab", 32))
	if b, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("tandem ca pinned to a wrong fingerprint succeeded:\n%s", b)
	}

	// The exported CA verifies the API, through the Go client.
	cl, err := client.New([]string{n.HTTP}, client.WithCAFile(out), client.WithBasicAuth(harness.AdminUser, harness.AdminPassword))
	if err != nil {
		t.Fatal(err)
	}
	if pemBytes, err := cl.CACert(ctx); err != nil || !bytes.Equal(pemBytes, want) {
		t.Fatalf("GET /v1/cluster/ca: %v", err)
	}
	if _, err := cl.Cluster(ctx); err != nil {
		t.Fatalf("https with the exported CA: %v", err)
	}
	// Without it: the system roots do not know the cluster CA.
	plain, _ := client.New([]string{n.URL()})
	if _, err := plain.Cluster(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("https without the CA: %v; want an unknown authority", err)
	}
	// Plain HTTP to the HTTPS port gets no data.
	if code, err := httpStatus(ctx, http.DefaultClient, http.MethodGet, "http://"+n.HTTP+"/v1/cluster"); err == nil && code == http.StatusOK {
		t.Fatal("plain HTTP to the HTTPS port was answered with 200")
	}
}

// TestInsecureServesPlainHTTP: --insecure serves plain HTTP, warns in its
// log, and has no CA to export.
func TestInsecureServesPlainHTTP(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 1, Insecure: true})
	n := c.Nodes[0]
	if !strings.HasPrefix(n.URL(), "http://") || c.CAFile() != "" {
		t.Fatalf("insecure cluster at %s with CA %q", n.URL(), c.CAFile())
	}
	cl := clusterClient(t, c)
	if _, err := cl.Cluster(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := cl.CACert(t.Context())
	wantAPIError(t, err, http.StatusNotFound)
	if log := harness.Tail(n.LogPath(), 50); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "INSECURE") {
		t.Fatalf("the log does not warn that the node is insecure:\n%s", log)
	}
}

// TestSlowClientsCutOff: a client that sends its request headers a byte at
// a time (slowloris) is cut off by the API's header timeout, and a client
// that opens a connection to the Raft port and never completes the TLS
// handshake is cut off by its handshake timeout; both within 10s and some
// slack, on a real node.
func TestSlowClientsCutOff(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 1})
	n := c.Nodes[0]
	pool, err := client.LoadCAFile(c.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	const limit = 10*time.Second + 5*time.Second
	results := make(chan string, 2)

	go func() { // slowloris over TLS on the API
		start := time.Now()
		conn, err := tls.Dial("tcp", n.HTTP, &tls.Config{RootCAs: pool})
		if err != nil {
			results <- "api: " + err.Error()
			return
		}
		defer conn.Close()
		msg := []byte("GET /v1/cluster HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 200))
		for _, b := range msg {
			if _, err := conn.Write([]byte{b}); err != nil {
				break // cut off
			}
			if time.Since(start) > limit {
				results <- "api: still connected after " + limit.String()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		conn.SetReadDeadline(time.Now().Add(limit))
		if _, err := conn.Read(make([]byte, 1)); err == nil || time.Since(start) > limit {
			results <- "api: not cut off within " + limit.String()
			return
		}
		results <- ""
	}()
	go func() { // a connection that never starts its TLS handshake
		start := time.Now()
		conn, err := net.Dial("tcp", n.Raft)
		if err != nil {
			results <- "raft: " + err.Error()
			return
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(limit + 5*time.Second))
		_, err = conn.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() || time.Since(start) > limit {
			results <- "raft: idle connection not closed within " + limit.String()
			return
		}
		results <- ""
	}()
	for range 2 {
		if msg := <-results; msg != "" {
			t.Error(msg)
		}
	}
	// The node still serves others.
	if _, err := clusterClient(t, c).Cluster(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func clusterNodeInfo(n *harness.Node) tandem.NodeInfo {
	return tandem.NodeInfo{ID: n.ID, HTTPAddr: n.HTTP, RaftAddr: n.Raft}
}

// TestTokenCLI: `tandem token create | list | revoke` through the CLI; a
// revoked token is refused ("unknown") to a joining node.
func TestTokenCLI(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 1})
	n1 := c.Nodes[0]
	tandemCLI := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(harness.Binary(t), args...)
		cmd.Env = append(os.Environ(), "TANDEM_CA="+c.CAFile(), "TANDEM_ADDR="+n1.HTTP,
			"TANDEM_USER="+harness.AdminUser, "TANDEM_PASSWORD="+harness.AdminPassword)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tandem %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	tok := tandemCLI("token", "create", "--ttl", "10m")
	parsed, err := pki.ParseToken(tok)
	if err != nil {
		t.Fatalf("token create printed %q: %v", tok, err)
	}
	if list := tandemCLI("token", "list"); !strings.Contains(list, parsed.ID) || strings.Contains(list, pki.HashSecret(parsed.Secret)) {
		t.Fatalf("token list:\n%s", list)
	}
	tandemCLI("token", "revoke", parsed.ID)
	if list := tandemCLI("token", "list"); strings.Contains(list, parsed.ID) {
		t.Fatalf("revoked token still listed:\n%s", list)
	}
	n := c.NewNode(false)
	n.Args = withToken(n, tok, n1)
	c.Start(n)
	if log := waitExit(t, n, 30*time.Second); !strings.Contains(log, "unknown join token") {
		t.Fatalf("a revoked token: node log does not say so:\n%s", harness.Tail(n.LogPath(), 5))
	}
}

// TestRemovedNodeCannotRejoin: a removed node keeps a certificate the CA
// vouches for, but joining again as itself is refused (403) until it
// enrolls with a new join token; its internal calls are refused too.
func TestRemovedNodeCannotRejoin(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 2})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	ctx := t.Context()
	cl := clusterClient(t, c)
	if err := cl.Node(0).RemoveNode(ctx, n2.ID); err != nil {
		t.Fatal(err)
	}
	asN2 := clusterClient(t, c, c.NodeClientOptions(n2.ID)...)
	waitFor(t, 10*time.Second, "n1 refuses n2's internal calls", func() string {
		code, err := httpStatus(ctx, c.AsNode(n2.ID), http.MethodGet, n1.URL()+"/internal/v1/status")
		if err != nil || code != http.StatusForbidden {
			return fmt.Sprintf("status %d %v", code, err)
		}
		return ""
	})
	err := asN2.Node(0).Join(ctx, clusterNodeInfo(n2))
	wantAPIError(t, err, http.StatusForbidden)
	if ms, err := members(ctx, cl.Node(0)); err != nil || len(ms) != 1 {
		t.Fatalf("members after the refused re-join: %v %v", ms, err)
	}
}
