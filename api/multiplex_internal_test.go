package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem/multiplex"
)

// Requests over /v1/mux are authenticated and authorized one by one, with
// the upgrade's credentials unless they bring their own, and get the same
// answers as over HTTP.
func TestMultiplexedRequestsAreAuthorizedEach(t *testing.T) {
	s := newSecureServer(t)
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Without credentials the upgrade itself is refused, with Tandem's
	// JSON error.
	_, err := multiplex.Dial(ctx, srv.URL+"/v1/mux", multiplex.DialOptions{})
	var ue *multiplex.UpgradeError
	if !errors.As(err, &ue) || ue.Status != http.StatusUnauthorized || !strings.Contains(string(ue.Body), `"unauthenticated"`) {
		t.Fatalf("upgrade without credentials: %v", err)
	}

	c, err := multiplex.Dial(ctx, srv.URL+"/v1/mux", multiplex.DialOptions{Header: http.Header{"Authorization": {basicAuth("ann", "password")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name, method, target, authz string
		status                      int
		body                        string
	}{
		{"the upgrade's user", "GET", "/v1/whoami", "", 200, `"user":"ann"`},
		{"its own credentials win", "GET", "/v1/whoami", basicAuth("root", "password"), 200, `"user":"root"`},
		{"its own bad credentials fail", "GET", "/v1/whoami", basicAuth("root", "wrong"), 401, `"unauthenticated"`},
		{"an admin route, as a reader", "GET", "/v1/users", "", 403, `"forbidden"`},
		{"an admin route, as an admin", "GET", "/v1/users", basicAuth("root", "password"), 200, `"users"`},
		{"no such route", "GET", "/v1/nothing", "", 404, `"not_found"`},
		{"wrong method", "PATCH", "/v1/whoami", "", 405, `"method_not_allowed"`},
		{"mux inside mux", "GET", "/v1/mux", "", 400, `WebSocket upgrade`},
		{"bad query string", "GET", "/v1/whoami?a=%zz", "", 400, `malformed query string`},
	} {
		req := &multiplex.Request{Method: tc.method, Target: tc.target}
		if tc.authz != "" {
			req.Header = []multiplex.Field{{Name: "Authorization", Value: tc.authz}}
		}
		resp, err := c.Do(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.Status != tc.status || !strings.Contains(string(resp.Body), tc.body) {
			t.Errorf("%s: %d %s; want %d containing %s", tc.name, resp.Status, resp.Body, tc.status, tc.body)
		}
	}

	// Over plain HTTP the endpoint explains itself.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/mux", nil)
	req.Header.Set("Authorization", basicAuth("ann", "password"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /v1/mux without an upgrade: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// Unknown routes and wrong methods answer strangers with the
// authentication error, as routes that exist do.
func TestUnknownRouteNeedsAuthentication(t *testing.T) {
	s := newSecureServer(t)
	for _, tc := range []struct {
		method, path, authz string
		code                int
	}{
		{"GET", "/v1/nothing", "", 401},
		{"PATCH", "/v1/whoami", "", 401},
		{"GET", "/v1/nothing", basicAuth("ann", "password"), 404},
		{"PATCH", "/v1/whoami", basicAuth("ann", "password"), 405},
	} {
		w := serve(s, tc.method, tc.path, tc.authz)
		if w.Code != tc.code || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %q: %d %s", tc.method, tc.path, tc.authz, w.Code, w.Body)
		}
	}
}

// waitingCluster is a node that never reaches the index a read waits for;
// each wait reports how it ended.
type waitingCluster struct {
	fakeCluster
	waits chan error
}

func (waitingCluster) LocalReadable() error { return nil }
func (c waitingCluster) WaitApplied(ctx context.Context, _ uint64) error {
	c.waits <- nil // started
	<-ctx.Done()
	c.waits <- ctx.Err()
	return ctx.Err()
}

// A read waiting for min_index over /v1/mux stops on the node as soon as
// its caller gives up (the client's cancel frame), not at its own 60 s
// timeout.
func TestMultiplexedWaitEndsWithItsCaller(t *testing.T) {
	waits := make(chan error, 2)
	s := New(Options{Cluster: waitingCluster{waits: waits}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := multiplex.Dial(ctx, srv.URL+"/v1/mux", multiplex.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	reqCtx, giveUp := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(reqCtx, &multiplex.Request{Method: "GET", Target: "/v1/tables?min_index=100&timeout=60s"})
		done <- err
	}()
	if err := <-waits; err != nil {
		t.Fatal(err)
	}
	giveUp()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do: %v", err)
	}
	select {
	case err := <-waits:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the wait ended with %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("the node still waits after its caller gave up")
	}
}
