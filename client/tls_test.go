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
	"sync"
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

// TestHTTP1OverTLS: the client speaks HTTP/1.1 to a node that also offers
// HTTP/2 (as Tandem's API does over TLS), with concurrent calls on several
// connections rather than multiplexed on one.
func TestHTTP1OverTLS(t *testing.T) {
	var mu sync.Mutex
	protos, conns := map[string]int{}, map[string]bool{}
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Proto]++
		conns[r.RemoteAddr] = true
		mu.Unlock()
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "PEM")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := client.New([]string{srv.URL}, client.WithRootCAs(pool))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := c.CACert(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	<-arrived
	<-arrived // both calls in flight at once
	close(release)
	wg.Wait()
	if protos["HTTP/1.1"] != 2 || len(conns) != 2 {
		t.Fatalf("requests by protocol %v on %d connections; want 2 HTTP/1.1 requests on 2 connections", protos, len(conns))
	}
}
