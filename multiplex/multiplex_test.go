package multiplex_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tandemdb/tandem/multiplex"
)

// timeout bounds every wait for something that should happen promptly; it
// only matters when a test fails.
const timeout = 5 * time.Second

// serve starts h on a real socket, closed at the end of the test.
func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// dial opens a connection to srv, closed at the end of the test.
func dial(t *testing.T, srv *httptest.Server, o multiplex.DialOptions) *multiplex.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	c, err := multiplex.Dial(ctx, srv.URL, o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx returns a context that ends after timeout, or with the test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// do sends r and fails the test on an error.
func do(t *testing.T, c *multiplex.Conn, r *multiplex.Request) *multiplex.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	resp, err := c.Do(ctx, r)
	if err != nil {
		t.Fatalf("Do %s %s: %v", r.Method, r.Target, err)
	}
	return resp
}

// values returns the values of the header fields named name, in order.
func values(fs []multiplex.Field, name string) []string {
	var vs []string
	for _, f := range fs {
		if f.Name == name {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// recv waits for a value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitDone waits for c to fail.
func waitDone(t *testing.T, c *multiplex.Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(timeout):
		t.Fatal("timed out waiting for the connection to close")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for a Logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestConcurrentRequests(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		w.Header().Set("ETag", `"`+r.URL.Path+`"`)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Target", r.RequestURI)
		w.Header().Set("X-Echo", r.Header.Get("X-Req"))
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	})
	srv := serve(t, &multiplex.Server{Handler: h})
	c := dial(t, srv, multiplex.DialOptions{})

	const n = 200
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := &multiplex.Request{
				Method: methods[i%len(methods)],
				Target: fmt.Sprintf("/items/%d?n=%d", i, i),
				Header: []multiplex.Field{{Name: "X-Req", Value: fmt.Sprint("req-", i)}},
			}
			if i%10 != 0 { // every tenth has no body
				req.Body = append([]byte{0, byte(i)}, bytes.Repeat([]byte{byte(i)}, i*7)...)
			}
			want := *req
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			resp, err := c.Do(ctx, req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if resp.ID != req.ID {
				t.Errorf("request %d: response id %d, request id %d", i, resp.ID, req.ID)
			}
			if resp.Status != http.StatusCreated {
				t.Errorf("request %d: status %d, want 201", i, resp.Status)
			}
			for _, hc := range []struct {
				name string
				want []string
			}{
				{"Etag", []string{fmt.Sprintf(`"/items/%d"`, i)}},
				{"X-Method", []string{want.Method}},
				{"X-Target", []string{want.Target}},
				{"X-Echo", []string{fmt.Sprint("req-", i)}},
				{"X-Multi", []string{"a", "b"}},
			} {
				if got := values(resp.Header, hc.name); !reflect.DeepEqual(got, hc.want) {
					t.Errorf("request %d: header %s = %q, want %q", i, hc.name, got, hc.want)
				}
			}
			if !bytes.Equal(resp.Body, want.Body) {
				t.Errorf("request %d: body of %d bytes, want %d", i, len(resp.Body), len(want.Body))
			}
		})
	}
	wg.Wait()
	if err := c.Err(); err != nil {
		t.Fatalf("connection failed: %v", err)
	}
}

func TestAuthorization(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Join(r.Header.Values("Authorization"), ","))
	})
	srv := serve(t, &multiplex.Server{Handler: h})
	for _, tc := range []struct {
		name    string
		upgrade string // the upgrade request's Authorization
		inner   string // the inner request's
		want    string
	}{
		{"inherited", "Bearer conn", "", "Bearer conn"},
		{"own wins", "Bearer conn", "Bearer inner", "Bearer inner"},
		{"none", "", "", ""},
		{"own without upgrade's", "", "Bearer inner", "Bearer inner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o multiplex.DialOptions
			if tc.upgrade != "" {
				o.Header = http.Header{"Authorization": {tc.upgrade}}
			}
			c := dial(t, srv, o)
			req := &multiplex.Request{Method: "GET", Target: "/"}
			if tc.inner != "" {
				req.Header = []multiplex.Field{{Name: "Authorization", Value: tc.inner}}
			}
			if got := string(do(t, c, req).Body); got != tc.want {
				t.Fatalf("handler saw Authorization %q, want %q", got, tc.want)
			}
		})
	}
}

// seen is what a handler sees of a request, to compare with net/http.
type seen struct {
	Method        string
	Proto         string
	Host          string
	RequestURI    string
	URL           url.URL
	ContentLength int64
	NoBody        bool
	Body          string
	RemoteAddr    string
	TLS           bool
}

// TestRequestFields compares the request a handler gets through a
// multiplexed connection with the one net/http gives it for the same
// request line, sent on a plain connection.
func TestRequestFields(t *testing.T) {
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u := *r.URL
		u.User = nil
		json.NewEncoder(w).Encode(seen{
			Method:        r.Method,
			Proto:         r.Proto,
			Host:          r.Host,
			RequestURI:    r.RequestURI,
			URL:           u,
			ContentLength: r.ContentLength,
			NoBody:        r.Body == http.NoBody,
			Body:          string(body),
			RemoteAddr:    r.RemoteAddr,
			TLS:           r.TLS != nil,
		})
	})
	mux := &multiplex.Server{Handler: record}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			mux.ServeHTTP(w, r)
			return
		}
		record.ServeHTTP(w, r)
	}))
	addr := srv.Listener.Addr().String()

	// The client's end of the multiplexed connection is the RemoteAddr
	// its requests must show.
	var (
		mu        sync.Mutex
		localAddr string
	)
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				localAddr = conn.LocalAddr().String()
				mu.Unlock()
			}
			return conn, err
		},
	}}
	c := dial(t, srv, multiplex.DialOptions{HTTPClient: hc})
	mu.Lock()
	muxAddr := localAddr
	mu.Unlock()

	for _, tc := range []struct{ method, target, body string }{
		{"GET", "/", ""},
		{"GET", "/a/b?x=1&y=2", ""},
		{"POST", "/tables/t/rows", "hello"},
		{"PUT", "/a%2Fb/c%20d?q=%zz&r", "{}"},
		{"GET", "/caf%C3%A9;p=1", ""},
		{"DELETE", "/p?", ""},
		{"GET", "//double/slash?x", ""},
		{"OPTIONS", "/x/../y/./z", ""},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			want, plainAddr := plainRequest(t, addr, tc.method, tc.target, tc.body)
			if want.RemoteAddr != plainAddr {
				t.Fatalf("net/http: RemoteAddr %q, want %q", want.RemoteAddr, plainAddr)
			}
			want.RemoteAddr = muxAddr

			resp := do(t, c, &multiplex.Request{Method: tc.method, Target: tc.target, Body: []byte(tc.body)})
			if resp.Status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			var got seen
			if err := json.Unmarshal(resp.Body, &got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("multiplexed request differs from net/http's:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// plainRequest sends one request line on a new TCP connection and returns
// what the handler saw and the connection's local address.
func plainRequest(t *testing.T, addr, method, target, body string) (seen, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	if body != "" {
		fmt.Fprintf(conn, "Content-Length: %d\r\n", len(body))
	}
	fmt.Fprintf(conn, "\r\n%s", body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("net/http: status %d: %s", resp.StatusCode, b)
	}
	var s seen
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s, conn.LocalAddr().String()
}

func TestHandlerPanic(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			w.Header().Set("X-Partial", "1")
			w.Write([]byte("partial"))
			panic("boom")
		}
		fmt.Fprint(w, r.URL.Path)
	})
	var logs syncBuffer
	srv := serve(t, &multiplex.Server{Handler: h, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := dial(t, srv, multiplex.DialOptions{})

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			target := fmt.Sprintf("/ok/%d", i)
			if i%4 == 0 {
				target = "/panic"
			}
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			resp, err := c.Do(ctx, &multiplex.Request{Method: "GET", Target: target})
			switch {
			case err != nil:
				t.Errorf("%s: %v", target, err)
			case target == "/panic":
				if resp.Status != http.StatusInternalServerError || len(resp.Header) != 0 || string(resp.Body) != "internal error" {
					t.Errorf("%s: %d %v %q, want 500 without the handler's partial answer", target, resp.Status, resp.Header, resp.Body)
				}
			default:
				if resp.Status != http.StatusOK || string(resp.Body) != target {
					t.Errorf("%s: %d %q", target, resp.Status, resp.Body)
				}
			}
		})
	}
	wg.Wait()
	if got := string(do(t, c, &multiplex.Request{Method: "GET", Target: "/after"}).Body); got != "/after" {
		t.Fatalf("after the panics: body %q", got)
	}
	if l := logs.String(); !strings.Contains(l, "handler panic") || !strings.Contains(l, "boom") {
		t.Fatalf("panic not logged: %q", l)
	}
}

// TestHandlerBadStatus: net/http panics on a status code outside
// 100-999; the handler's request must fail alone, not the connection.
func TestHandlerBadStatus(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(1000)
		}
		fmt.Fprint(w, "ok")
	})
	srv := serve(t, &multiplex.Server{Handler: h, Logger: slog.New(slog.DiscardHandler)})
	c := dial(t, srv, multiplex.DialOptions{})
	if got := do(t, c, &multiplex.Request{Method: "GET", Target: "/bad"}).Status; got != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", got)
	}
	if got := do(t, c, &multiplex.Request{Method: "GET", Target: "/good"}).Status; got != http.StatusOK {
		t.Fatalf("next request: status %d, want 200", got)
	}
}

func TestReject(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	custom := func(w http.ResponseWriter, status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	for _, tc := range []struct {
		name     string
		reject   func(http.ResponseWriter, int, string)
		wantType string
		wantBody string
	}{
		{"default", nil, "text/plain; charset=utf-8", "WebSocket upgrade"},
		{"custom", custom, "application/json", `{"error":"this endpoint takes a WebSocket upgrade`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, &multiplex.Server{Handler: ok, Reject: tc.reject})
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.wantType {
				t.Fatalf("Content-Type %q, want %q", got, tc.wantType)
			}
			if !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("body %q, want it to contain %q", body, tc.wantBody)
			}

			// A target that is not a path is answered by Reject too.
			c := dial(t, srv, multiplex.DialOptions{})
			// So are an absolute target (the host is the connection's) and
			// a method that is not an HTTP token.
			for _, bad := range []struct{ method, target string }{
				{"GET", ""}, {"GET", "nopath"}, {"GET", "*"}, {"GET", "/%zz"},
				{"GET", "http://elsewhere/x"}, {"", "/x"}, {"G T", "/x"}, {"GET\n", "/x"},
			} {
				r := do(t, c, &multiplex.Request{Method: bad.method, Target: bad.target})
				if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "bad request") {
					t.Fatalf("%q %q: %d %q, want 400", bad.method, bad.target, r.Status, r.Body)
				}
				if got := values(r.Header, "Content-Type"); len(got) != 1 || got[0] != tc.wantType {
					t.Fatalf("%q %q: Content-Type %q, want %q", bad.method, bad.target, got, tc.wantType)
				}
			}
		})
	}
}

func TestUpgradeError(t *testing.T) {
	mux := &multiplex.Server{Handler: http.NotFoundHandler()}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	_, err := multiplex.Dial(testCtx(t), srv.URL, multiplex.DialOptions{})
	var ue *multiplex.UpgradeError
	if !errors.As(err, &ue) {
		t.Fatalf("Dial without a token: %v, want an UpgradeError", err)
	}
	if ue.Status != http.StatusUnauthorized || ue.Header.Get("WWW-Authenticate") != "Bearer" || string(ue.Body) != "no token\n" {
		t.Fatalf("UpgradeError %d %v %q", ue.Status, ue.Header, ue.Body)
	}
	c := dial(t, srv, multiplex.DialOptions{Header: http.Header{"Authorization": {"Bearer good"}}})
	if got := do(t, c, &multiplex.Request{Method: "GET", Target: "/"}).Status; got != http.StatusNotFound {
		t.Fatalf("status %d, want 404", got)
	}
}

func TestCancel(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- struct{}{}
			<-release
		}
		fmt.Fprint(w, r.URL.Path)
	})
	srv := serve(t, &multiplex.Server{Handler: h})
	c := dial(t, srv, multiplex.DialOptions{})
	t.Cleanup(func() { close(release) })

	giveUpOnBlock(t, c, started)
	if got := string(do(t, c, &multiplex.Request{Method: "GET", Target: "/next"}).Body); got != "/next" {
		t.Fatalf("next request: body %q", got)
	}

	// The abandoned request's late answer is dropped: later requests get
	// their own.
	release <- struct{}{}
	for i := range 3 {
		target := fmt.Sprint("/later/", i)
		if got := string(do(t, c, &multiplex.Request{Method: "GET", Target: target}).Body); got != target {
			t.Fatalf("body %q, want %q", got, target)
		}
	}
}

func TestConnClose(t *testing.T) {
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- struct{}{}
			<-r.Context().Done()
		}
	})
	srv := serve(t, &multiplex.Server{Handler: h})
	c := dial(t, srv, multiplex.DialOptions{})

	ctx := testCtx(t)
	errc := doAsync(ctx, c, "/block")
	recv(t, started, "the handler to start")
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := recv(t, errc, "Do to fail"); !errors.Is(err, multiplex.ErrClosed) {
		t.Fatalf("pending Do: %v, want ErrClosed", err)
	}
	waitDone(t, c)
	if _, err := c.Do(ctx, &multiplex.Request{Method: "GET", Target: "/"}); !errors.Is(err, multiplex.ErrClosed) {
		t.Fatalf("Do after Close: %v, want ErrClosed", err)
	}
}

func TestServerClose(t *testing.T) {
	const n = 3
	started := make(chan struct{}, n)
	ended := make(chan struct{}, n)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
		ended <- struct{}{}
	})
	s := &multiplex.Server{Handler: h}
	srv := serve(t, s)
	c := dial(t, srv, multiplex.DialOptions{})

	ctx := testCtx(t)
	errc := make(chan error, n)
	for i := range n {
		go func() {
			_, err := c.Do(ctx, &multiplex.Request{Method: "GET", Target: fmt.Sprint("/", i)})
			errc <- err
		}()
	}
	for range n {
		recv(t, started, "the handlers to start")
	}
	s.Close()
	for range n {
		if err := recv(t, errc, "Do to fail"); err == nil {
			t.Fatal("pending Do succeeded after Server.Close")
		}
	}
	waitDone(t, c)
	if got := websocket.CloseStatus(c.Err()); got != websocket.StatusGoingAway {
		t.Fatalf("connection error %v, want close status GoingAway", c.Err())
	}
	for range n {
		recv(t, ended, "the handlers' contexts to end")
	}
	s.Close() // safe twice

	// A later connection is refused: the upgrade may succeed, but the
	// connection closes at once. (Waiting before Do: a Do racing the close
	// may fail on its write, which hides the close status.)
	c2, err := multiplex.Dial(ctx, srv.URL, multiplex.DialOptions{})
	if err != nil {
		return
	}
	defer c2.Close()
	waitDone(t, c2)
	if got := websocket.CloseStatus(c2.Err()); got != websocket.StatusGoingAway {
		t.Fatalf("connection made after Close: error %v, want close status GoingAway", c2.Err())
	}
	if _, err := c2.Do(ctx, &multiplex.Request{Method: "GET", Target: "/"}); err == nil {
		t.Fatal("Do on a connection made after Server.Close succeeded")
	}
	select {
	case <-started:
		t.Fatal("a handler ran for a connection made after Server.Close")
	default:
	}
}

// TestShutdown wires Server.Close to http.Server.Shutdown, which does not
// wait for hijacked connections.
func TestShutdown(t *testing.T) {
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
	})
	s := &multiplex.Server{Handler: h}
	srv := serve(t, s)
	srv.Config.RegisterOnShutdown(s.Close)
	c := dial(t, srv, multiplex.DialOptions{})

	ctx := testCtx(t)
	errc := doAsync(ctx, c, "/")
	recv(t, started, "the handler to start")
	if err := srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := recv(t, errc, "Do to fail"); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("pending Do: %v, want close status GoingAway", err)
	}
	waitDone(t, c)
}

// TestServerCloseBusy closes the server while its connection is at
// MaxInFlight and the reader waits for a slot: the handlers' contexts must
// still end.
func TestServerCloseBusy(t *testing.T) {
	started := make(chan string, 2)
	ended := make(chan string, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- r.URL.Path
		<-r.Context().Done()
		ended <- r.URL.Path
	})
	s := &multiplex.Server{Handler: h, MaxInFlight: 1}
	srv := serve(t, s)

	// A raw connection sends both requests in one message: when the first
	// handler runs, the server has read the second and waits for a slot.
	ctx := testCtx(t)
	ws, _, err := websocket.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	msg := multiplex.AppendRequest(nil, &multiplex.Request{ID: 1, Method: "GET", Target: "/1"})
	msg = multiplex.AppendRequest(msg, &multiplex.Request{ID: 2, Method: "GET", Target: "/2"})
	if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, started, "the first handler to start"); got != "/1" {
		t.Fatalf("handler for %s started first", got)
	}
	s.Close()
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("Read: %v, want close status GoingAway", err)
	}
	if got := recv(t, ended, "the handler's context to end"); got != "/1" {
		t.Fatalf("handler %s ended", got)
	}
}

// TestMaxInFlight sends more requests than MaxInFlight in one message on
// a raw connection, so that the server holds them all, and counts the
// handlers running at once.
func TestMaxInFlight(t *testing.T) {
	const (
		limit = 2
		n     = 10
	)
	var running, peak atomic.Int32
	started := make(chan struct{}, n)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := running.Add(1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		started <- struct{}{}
		<-release
		running.Add(-1)
		fmt.Fprint(w, r.URL.Path)
	})
	srv := serve(t, &multiplex.Server{Handler: h, MaxInFlight: limit})

	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	var msg []byte
	for i := range n {
		msg = multiplex.AppendRequest(msg, &multiplex.Request{ID: uint64(i + 1), Method: "GET", Target: fmt.Sprint("/", i+1)})
	}
	if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}

	for range limit {
		recv(t, started, "a handler to start")
	}
	// Nothing signals that the server declined to start a handler: give
	// one that ignores the limit a moment to show itself.
	select {
	case <-started:
		t.Fatalf("handler %d started while %d were running, MaxInFlight is %d", limit+1, running.Load()-1, limit)
	case <-time.After(100 * time.Millisecond):
	}
	// Release the handlers one at a time: each release lets one more start.
	for i := range n {
		release <- struct{}{}
		if i < n-limit {
			recv(t, started, "the next handler to start")
		}
	}
	if p := peak.Load(); p != limit {
		t.Fatalf("%d handlers ran at once, MaxInFlight is %d", p, limit)
	}

	// Every request is answered, once, with its own response.
	answered := map[uint64]bool{}
	for len(answered) < n {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("after %d responses: %v", len(answered), err)
		}
		for len(msg) > 0 {
			var resp multiplex.Response
			resp, msg, err = multiplex.ReadResponse(msg)
			if err != nil {
				t.Fatal(err)
			}
			if answered[resp.ID] || resp.ID < 1 || resp.ID > n {
				t.Fatalf("unexpected response id %d", resp.ID)
			}
			answered[resp.ID] = true
			if want := fmt.Sprint("/", resp.ID); resp.Status != http.StatusOK || string(resp.Body) != want {
				t.Fatalf("response %d: %d %q, want 200 %q", resp.ID, resp.Status, resp.Body, want)
			}
		}
	}
}

func TestMaxMessage(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	srv := serve(t, &multiplex.Server{Handler: h, MaxMessage: 1024})
	c := dial(t, srv, multiplex.DialOptions{})
	if got := do(t, c, &multiplex.Request{Method: "PUT", Target: "/", Body: make([]byte, 900)}); len(got.Body) != 900 {
		t.Fatalf("small request: body of %d bytes", len(got.Body))
	}
	_, err := c.Do(testCtx(t), &multiplex.Request{Method: "PUT", Target: "/", Body: make([]byte, 2048)})
	if err == nil {
		t.Fatal("Do of a message over MaxMessage succeeded")
	}
	waitDone(t, c)
	if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
		t.Fatalf("Do: %v, want close status MessageTooBig", err)
	}
}

// TestClientMaxMessage: a response over DialOptions.MaxMessage closes the
// connection.
func TestClientMaxMessage(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, len(r.URL.Path)*100))
	})
	srv := serve(t, &multiplex.Server{Handler: h})
	c := dial(t, srv, multiplex.DialOptions{MaxMessage: 1024})
	if got := do(t, c, &multiplex.Request{Method: "GET", Target: "/a"}); len(got.Body) != 200 {
		t.Fatalf("small response: body of %d bytes", len(got.Body))
	}
	_, err := c.Do(testCtx(t), &multiplex.Request{Method: "GET", Target: "/" + strings.Repeat("a", 99)})
	if err == nil {
		t.Fatal("Do of a response over MaxMessage succeeded")
	}
	waitDone(t, c)
	if !errors.Is(err, websocket.ErrMessageTooBig) {
		t.Fatalf("Do: %v, want ErrMessageTooBig", err)
	}
}

// TestLargeRequests sends requests that together exceed what the client
// puts in one message, and one larger than that alone: the server's
// MaxMessage, just above the client's bound, must never be exceeded.
func TestLargeRequests(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprint(w, len(b))
	})
	srv := serve(t, &multiplex.Server{Handler: h, MaxMessage: 1<<20 + 4<<10})
	c := dial(t, srv, multiplex.DialOptions{})
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			size := 100<<10 + i
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			resp, err := c.Do(ctx, &multiplex.Request{Method: "PUT", Target: "/", Body: make([]byte, size)})
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if string(resp.Body) != fmt.Sprint(size) {
				t.Errorf("request %d: server read %s bytes, want %d", i, resp.Body, size)
			}
		})
	}
	wg.Wait()

	srv2 := serve(t, &multiplex.Server{Handler: h})
	c2 := dial(t, srv2, multiplex.DialOptions{})
	if got := string(do(t, c2, &multiplex.Request{Method: "PUT", Target: "/", Body: make([]byte, 3<<20)}).Body); got != fmt.Sprint(3<<20) {
		t.Fatalf("a frame over the client's message bound: server read %s bytes", got)
	}
}

// TestBadMessages writes what a Conn never would on a raw WebSocket: the
// server must close the connection with the matching status.
func TestBadMessages(t *testing.T) {
	var served atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) })
	srv := serve(t, &multiplex.Server{Handler: h})
	for _, tc := range []struct {
		name       string
		typ        websocket.MessageType
		msg        []byte
		wantStatus websocket.StatusCode
		wantReason string
	}{
		{"garbage", websocket.MessageBinary, bytes.Repeat([]byte{0xff}, 20), websocket.StatusProtocolError, "id is not a varint"},
		{"id 0", websocket.MessageBinary, multiplex.AppendRequest(nil, &multiplex.Request{Method: "GET", Target: "/"}), websocket.StatusProtocolError, "request id 0"},
		{"truncated", websocket.MessageBinary, frame(uint64(1), "GET", uint64(100), []byte("/")), websocket.StatusProtocolError, "target of 100 bytes"},
		{"text", websocket.MessageText, []byte("GET / HTTP/1.1"), websocket.StatusUnsupportedData, "binary messages only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			if err := ws.Write(ctx, tc.typ, tc.msg); err != nil {
				t.Fatal(err)
			}
			_, _, err = ws.Read(ctx)
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("Read: %v, want a close", err)
			}
			if ce.Code != tc.wantStatus || !strings.Contains(ce.Reason, tc.wantReason) {
				t.Fatalf("closed with %v %q, want %v and a reason containing %q", ce.Code, ce.Reason, tc.wantStatus, tc.wantReason)
			}
		})
	}
	if n := served.Load(); n != 0 {
		t.Fatalf("%d bad requests reached the handler", n)
	}
}

// TestBadResponses has a server answer what a Server never would: the
// client must fail the connection.
func TestBadResponses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     websocket.MessageType
		msg     []byte
		wantErr string
	}{
		{"garbage", websocket.MessageBinary, []byte{0x01, 0xff}, "status is not a varint"},
		{"status 0", websocket.MessageBinary, multiplex.AppendResponse(nil, &multiplex.Response{ID: 1}), "response status 0"},
		{"text", websocket.MessageText, []byte("hello"), "text message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer ws.CloseNow()
				ctx, cancel := context.WithTimeout(r.Context(), timeout)
				defer cancel()
				if _, _, err := ws.Read(ctx); err != nil {
					return
				}
				if err := ws.Write(ctx, tc.typ, tc.msg); err != nil {
					return
				}
				ws.Read(ctx) // until the client closes
			}))
			c := dial(t, srv, multiplex.DialOptions{})
			_, err := c.Do(testCtx(t), &multiplex.Request{Method: "GET", Target: "/"})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Do: %v, want an error containing %q", err, tc.wantErr)
			}
			waitDone(t, c)
			if c.Err() == nil {
				t.Fatal("Done closed but Err is nil")
			}
		})
	}
}

// doAsync sends a GET of target on c and returns the channel that will
// receive Do's error.
// giveUpOnBlock requests /block, waits for its handler to start, then
// cancels the request: Do must return at once with context.Canceled.
func giveUpOnBlock(t *testing.T, c *multiplex.Conn, started <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := doAsync(ctx, c, "/block")
	recv(t, started, "the handler to start")
	cancel()
	if err := recv(t, errc, "Do to return after cancel"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do: %v, want context.Canceled", err)
	}
}

func doAsync(ctx context.Context, c *multiplex.Conn, target string) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, &multiplex.Request{Method: "GET", Target: target})
		errc <- err
	}()
	return errc
}

// silentPeer is a server that accepts a WebSocket connection and then
// never reads from it again, as a node that vanished without a reset.
func silentPeer(t *testing.T) *httptest.Server {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		<-release
	}))
}

// TestPing: a peer that stops answering (here: it never reads again, so
// no pong comes back, as from a node that vanished without a reset)
// fails the connection and the requests waiting on it within about two
// ping intervals; a peer that answers keeps the connection through many.
func TestPing(t *testing.T) {
	silent := silentPeer(t)
	c := dial(t, silent, multiplex.DialOptions{PingInterval: 50 * time.Millisecond})
	start := time.Now()
	_, err := c.Do(testCtx(t), &multiplex.Request{Method: "GET", Target: "/"})
	if err == nil || !strings.Contains(err.Error(), "ping") {
		t.Fatalf("Do on a silent peer: %v, want a failed ping", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the silent peer was noticed after %v", d)
	}
	waitDone(t, c)

	// An answering server: pings every 100 ms for 600 ms change nothing.
	// (With 20 ms a pong delayed by a loaded CI machine failed the
	// connection: the deadline is the interval.)
	srv := serve(t, &multiplex.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(600 * time.Millisecond)
		io.WriteString(w, "ok")
	})})
	live := dial(t, srv, multiplex.DialOptions{PingInterval: 100 * time.Millisecond})
	if r := do(t, live, &multiplex.Request{Method: "GET", Target: "/"}); r.Status != 200 || string(r.Body) != "ok" {
		t.Fatalf("through pings: %d %q", r.Status, r.Body)
	}
	if err := live.Err(); err != nil {
		t.Fatalf("a live connection failed: %v", err)
	}
}

// TestConnCloseNow: on a peer that never answers the closing handshake
// (as one that vanished), CloseNow returns at once where Close would wait
// its 5 s for the peer, and fails the waiting requests as Close does.
func TestConnCloseNow(t *testing.T) {
	silent := silentPeer(t)
	c := dial(t, silent, multiplex.DialOptions{PingInterval: -1})
	errc := doAsync(testCtx(t), c, "/")
	start := time.Now()
	if err := c.CloseNow(); err != nil {
		t.Fatalf("CloseNow: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("CloseNow took %v: it waited for the silent peer", d)
	}
	if err := recv(t, errc, "Do to fail"); !errors.Is(err, multiplex.ErrClosed) {
		t.Fatalf("pending Do: %v, want ErrClosed", err)
	}
	waitDone(t, c)
}

// TestCancelEndsHandler: a caller that gives up cancels its request on the
// server: the handler's context ends and its slot is free again. With one
// slot, the next request is served only because the canceled one ended.
func TestCancelEndsHandler(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- struct{}{}
			select {
			case <-r.Context().Done():
				ended <- r.Context().Err()
			case <-time.After(2 * timeout):
				ended <- errors.New("the handler's context did not end")
			}
		}
		fmt.Fprint(w, r.URL.Path)
	})
	srv := serve(t, &multiplex.Server{Handler: h, MaxInFlight: 1})
	c := dial(t, srv, multiplex.DialOptions{})

	giveUpOnBlock(t, c, started)
	if err := recv(t, ended, "the handler to see the cancel"); !errors.Is(err, context.Canceled) {
		t.Fatalf("handler: %v", err)
	}
	if got := string(do(t, c, &multiplex.Request{Method: "GET", Target: "/next"}).Body); got != "/next" {
		t.Fatalf("next request: body %q", got)
	}
}

// frameRecorder is a server that speaks the protocol by hand: it answers
// every request with its target, records every frame it reads, and names
// the cancel feature in its upgrade answer only if told to (an older
// server does not).
func frameRecorder(t *testing.T, cancels bool) (*httptest.Server, <-chan multiplex.Request) {
	frames := make(chan multiplex.Request, 100)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cancels && strings.Contains(r.Header.Get(multiplex.FeaturesHeader), multiplex.FeatureCancel) {
			w.Header().Set(multiplex.FeaturesHeader, multiplex.FeatureCancel)
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for {
			_, msg, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			var out []byte
			for len(msg) > 0 {
				var req multiplex.Request
				if req, msg, err = multiplex.ReadRequest(msg); err != nil {
					return
				}
				frames <- multiplex.Request{ID: req.ID, Method: req.Method, Target: req.Target}
				if req.Target == "/block" || req.IsCancel() {
					continue // never answered
				}
				out = multiplex.AppendResponse(out, &multiplex.Response{ID: req.ID, Status: 200, Body: []byte(req.Target)})
			}
			if len(out) > 0 && ws.Write(r.Context(), websocket.MessageBinary, out) != nil {
				return
			}
		}
	}))
	return srv, frames
}

// TestCancelOnlyWhenNegotiated: the client sends a cancel frame for a
// request its caller gave up on only to a server that named the feature;
// frames arrive in order, so what came before the next request shows it.
func TestCancelOnlyWhenNegotiated(t *testing.T) {
	for _, cancels := range []bool{true, false} {
		t.Run(fmt.Sprint("server cancels ", cancels), func(t *testing.T) {
			srv, frames := frameRecorder(t, cancels)
			c := dial(t, srv, multiplex.DialOptions{})
			ctx, cancel := context.WithCancel(t.Context())
			errc := doAsync(ctx, c, "/block")
			blocked := recv(t, frames, "the request")
			if blocked.Target != "/block" {
				t.Fatalf("first frame %+v", blocked)
			}
			cancel()
			recv(t, errc, "Do to return after cancel")
			if got := string(do(t, c, &multiplex.Request{Method: "GET", Target: "/after"}).Body); got != "/after" {
				t.Fatalf("body %q", got)
			}
			var between []multiplex.Request
			for f := recv(t, frames, "a frame"); f.Target != "/after"; f = recv(t, frames, "a frame") {
				between = append(between, f)
			}
			want := []multiplex.Request(nil)
			if cancels {
				want = []multiplex.Request{{ID: blocked.ID}}
			}
			if !reflect.DeepEqual(between, want) {
				t.Fatalf("frames between the request and the next: %+v, want %+v", between, want)
			}
		})
	}
}

// TestServerCancelFrames: on a connection that named the cancel feature, a
// cancel frame for an id not in flight is ignored (no answer); on one that
// did not, a frame with no method is a bad request, as it always was.
func TestServerCancelFrames(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Path) })
	srv := serve(t, &multiplex.Server{Handler: h})
	for _, cancels := range []bool{true, false} {
		t.Run(fmt.Sprint("client cancels ", cancels), func(t *testing.T) {
			ctx := testCtx(t)
			o := &websocket.DialOptions{HTTPHeader: http.Header{}}
			if cancels {
				o.HTTPHeader.Set(multiplex.FeaturesHeader, "other, "+multiplex.FeatureCancel)
			}
			ws, resp, err := websocket.Dial(ctx, srv.URL, o)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			if got := resp.Header.Get(multiplex.FeaturesHeader) == multiplex.FeatureCancel; got != cancels {
				t.Fatalf("upgrade answer names cancel: %v, want %v", got, cancels)
			}
			msg := multiplex.AppendCancel(nil, 7)
			msg = multiplex.AppendRequest(msg, &multiplex.Request{ID: 8, Method: "GET", Target: "/x"})
			if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
				t.Fatal(err)
			}
			got := map[uint64]int{}
			for got[8] == 0 {
				_, in, err := ws.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for len(in) > 0 {
					var r multiplex.Response
					if r, in, err = multiplex.ReadResponse(in); err != nil {
						t.Fatal(err)
					}
					got[r.ID] = r.Status
				}
			}
			want := map[uint64]int{8: http.StatusOK}
			if !cancels {
				want[7] = http.StatusBadRequest
				if got[7] == 0 { // answers may come in any order
					_, in, err := ws.Read(ctx)
					if err != nil {
						t.Fatal(err)
					}
					r, _, err := multiplex.ReadResponse(in)
					if err != nil {
						t.Fatal(err)
					}
					got[r.ID] = r.Status
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("answers %v, want %v", got, want)
			}
		})
	}
}
