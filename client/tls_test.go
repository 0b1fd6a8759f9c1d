package client_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemdb/tandem/client"
)

// TestTLSOptions: a CA file makes bare addresses https and verifies the
// server with it; without it the same server is refused; bad options fail
// in New.
func TestTLSOptions(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		io.WriteString(w, "PEM")
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	host := strings.TrimPrefix(srv.URL, "https://")
	ctx := context.Background()

	c, err := client.New([]string{host}, client.WithCAFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Addrs()[0]; got != srv.URL {
		t.Fatalf("bare address with a CA became %s; want %s", got, srv.URL)
	}
	if b, err := c.CACert(ctx); err != nil || string(b) != "PEM" {
		t.Fatalf("https with the CA file: %q %v", b, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	if c, _ := client.New([]string{srv.URL}, client.WithRootCAs(pool)); c != nil {
		if _, err := c.CACert(ctx); err != nil {
			t.Fatalf("https with WithRootCAs: %v", err)
		}
	}
	if c, _ := client.New([]string{host}); c.Addrs()[0] != "http://"+host {
		t.Fatalf("bare address without TLS options became %s", c.Addrs()[0])
	}
	if c, _ := client.New([]string{srv.URL}); c != nil {
		if _, err := c.CACert(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("https without the CA: %v; want an unknown authority", err)
		}
	}
	for name, opts := range map[string][]client.Option{
		"missing CA file":  {client.WithCAFile(filepath.Join(t.TempDir(), "nope"))},
		"CA file and pool": {client.WithCAFile(caFile), client.WithRootCAs(pool)},
	} {
		if _, err := client.New([]string{host}, opts...); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
