package pki_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/pki"
)

func bootstrap(t *testing.T, id string) *pki.Bundle {
	t.Helper()
	b, err := pki.Bootstrap(id, []string{"127.0.0.1", "localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSaveLoadKeepsKeysPrivate(t *testing.T) {
	dir := t.TempDir()
	b := bootstrap(t, "n1")
	if err := pki.Save(dir, b); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{pki.CAKeyFile: 0o600, pki.NodeKeyFile: 0o600, pki.CACertFile: 0o644, pki.NodeCertFile: 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}
	got, err := pki.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := pki.NodeID(got.NodeCert); !ok || id != "n1" {
		t.Fatalf("node ID %q %v", id, ok)
	}
	if got.CAKey == nil || got.CA().Fingerprint() != b.CA().Fingerprint() {
		t.Fatal("CA key or certificate not kept")
	}
	// A node certificate of another CA in the same folder is refused.
	other := bootstrap(t, "n1")
	os.WriteFile(filepath.Join(dir, pki.NodeCertFile), pki.CertPEM(other.NodeCert), 0o644)
	if _, err := pki.Load(dir); err == nil {
		t.Fatal("Load accepted a node certificate of another CA")
	}
}

func TestSignCSR(t *testing.T) {
	b := bootstrap(t, "n1")
	key, _ := pki.NewKey()
	csr, err := pki.NewCSR("n2", key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := b.CA().SignCSR(csr, "n2", []string{"10.0.0.2", "db2.example"}, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := pki.NodeID(cert); id != "n2" {
		t.Fatalf("node ID %q", id)
	}
	if len(cert.IPAddresses) != 1 || cert.DNSNames[0] != "db2.example" {
		t.Fatalf("SANs %v %v", cert.IPAddresses, cert.DNSNames)
	}
	if err := cert.CheckSignatureFrom(b.CAs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CA().SignCSR([]byte("junk"), "n2", nil, time.Now(), 0); err == nil {
		t.Fatal("signed junk")
	}
	noKey := &pki.CA{Cert: b.CAs[0]}
	if _, err := noKey.SignCSR(csr, "n2", nil, time.Now(), 0); err == nil {
		t.Fatal("signed without the CA key")
	}
}

func TestTokenRoundTrip(t *testing.T) {
	b := bootstrap(t, "n1")
	tok, err := pki.NewToken(b.CA().Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	got, err := pki.ParseToken(tok.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tok.ID || string(got.Secret) != string(tok.Secret) || got.Fingerprint != tok.Fingerprint {
		t.Fatalf("round trip: %+v != %+v", got, tok)
	}
	if !pki.CheckSecret(pki.HashSecret(tok.Secret), got.Secret) {
		t.Fatal("secret does not check")
	}
	if pki.CheckSecret(pki.HashSecret(tok.Secret), []byte("guess")) {
		t.Fatal("wrong secret checks")
	}
	for _, bad := range []string{"", "TJT1", "TJT1.x.y.z", strings.Replace(tok.String(), "TJT1", "TJT2", 1), tok.String() + ".extra"} {
		if _, err := pki.ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) succeeded", bad)
		}
	}
}

func TestRenew(t *testing.T) {
	b := bootstrap(t, "n1")
	now := time.Now()
	clock := func() time.Time { return now }
	id, err := pki.NewIdentity(b, nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	if nb, err := id.Renew(nil, false); err != nil || nb != nil {
		t.Fatalf("fresh certificate renewed: %v %v", nb, err)
	}
	now = b.NodeCert.NotAfter.Add(-24 * time.Hour)
	nb, err := id.Renew([]string{"127.0.0.1"}, false)
	if err != nil || nb == nil {
		t.Fatalf("old certificate not renewed: %v", err)
	}
	if !nb.NodeCert.NotAfter.After(b.NodeCert.NotAfter) {
		t.Fatal("renewed certificate does not last longer")
	}
	id.SetNodeCert(nb.NodeCert, nb.NodeKey)
	if id.NodeCert() != nb.NodeCert {
		t.Fatal("SetNodeCert did not take")
	}
}

// handshake runs a TLS handshake between the two configurations over a
// pipe and returns the client's and the server's error.
func handshake(t *testing.T, client, server *tls.Config) (cerr, serr error) {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		srv := tls.Server(s, server)
		err := srv.HandshakeContext(ctx)
		if err == nil {
			// TLS 1.3 clients finish before the server checks their
			// certificate: read so that a refusal reaches the client.
			srv.Write([]byte{1})
		}
		s.Close()
		done <- err
	}()
	cl := tls.Client(c, client)
	cerr = cl.HandshakeContext(ctx)
	if cerr == nil {
		_, cerr = cl.Read(make([]byte, 1))
	}
	c.Close()
	return cerr, <-done
}

func TestPeerMutualTLS(t *testing.T) {
	a := bootstrap(t, "n1")
	idA, _ := pki.NewIdentity(a, nil, nil)
	// n2 under the same CA.
	key, _ := pki.NewKey()
	cert, _ := a.CA().SignNode("n2", key.Public(), nil, time.Now(), 0)
	idB, _ := pki.NewIdentity(&pki.Bundle{CAs: a.CAs, NodeCert: cert, NodeKey: key}, nil, nil)
	// n9 under another CA.
	idX, _ := pki.NewIdentity(bootstrap(t, "n9"), nil, nil)

	if cerr, serr := handshake(t, idB.PeerClientConfig(), idA.PeerServerConfig()); cerr != nil || serr != nil {
		t.Fatalf("same CA: client %v, server %v", cerr, serr)
	}
	if _, serr := handshake(t, idX.PeerClientConfig(), idA.PeerServerConfig()); serr == nil {
		t.Fatal("server accepted a client of another CA")
	}
	if cerr, _ := handshake(t, idA.PeerClientConfig(), idX.PeerServerConfig()); cerr == nil {
		t.Fatal("client accepted a server of another CA")
	}
	noCert := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
	if _, serr := handshake(t, noCert, idA.PeerServerConfig()); serr == nil {
		t.Fatal("server accepted a client without a certificate")
	}
}

func TestPinnedClientConfig(t *testing.T) {
	a := bootstrap(t, "n1")
	idA, _ := pki.NewIdentity(a, nil, nil)
	if cerr, serr := handshake(t, pki.PinnedClientConfig(a.CA().Fingerprint(), nil), idA.APIServerConfig()); cerr != nil || serr != nil {
		t.Fatalf("pinned to the right CA: client %v, server %v", cerr, serr)
	}
	other := bootstrap(t, "n1")
	cerr, _ := handshake(t, pki.PinnedClientConfig(other.CA().Fingerprint(), nil), idA.APIServerConfig())
	if !errors.Is(cerr, pki.ErrNotPinned) {
		t.Fatalf("pinned to another CA: %v, want ErrNotPinned", cerr)
	}
}

func TestReissue(t *testing.T) {
	dir := t.TempDir()
	b := bootstrap(t, "n1")
	if err := pki.Save(dir, b); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, pki.NodeCertFile))
	os.Remove(filepath.Join(dir, pki.NodeKeyFile))
	if pki.HasBundle(dir) || !pki.HasCAKey(dir) {
		t.Fatal("bundle files")
	}
	nb, err := pki.Reissue(dir, "n1", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := pki.Load(dir)
	if err != nil || !got.NodeCert.Equal(nb.NodeCert) || got.NodeCert.Equal(b.NodeCert) {
		t.Fatalf("reissued bundle not saved: %v", err)
	}
}

func TestCovers(t *testing.T) {
	b := bootstrap(t, "n1") // 127.0.0.1 and localhost
	for hosts, want := range map[string]bool{"127.0.0.1": true, "localhost": true, "127.0.0.1,localhost": true, "10.0.0.9": false, "db.example": false} {
		if got := pki.Covers(b.NodeCert, strings.Split(hosts, ",")); got != want {
			t.Errorf("Covers(%s) = %v, want %v", hosts, got, want)
		}
	}
}
