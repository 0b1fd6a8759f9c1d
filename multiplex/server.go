package multiplex

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Server upgrades a request to a multiplexed connection and serves the
// requests that arrive on it with Handler, each in its own goroutine as
// net/http would. Create it with a Handler; the zero values of the other
// fields are the defaults. Safe for concurrent use.
type Server struct {
	// Handler serves each request of the connection.
	Handler http.Handler
	// MaxMessage bounds one incoming message (default 4 MiB + 64 KiB: a
	// request body of the API's default limit with its frame). A larger
	// message closes the connection; clients send large bodies over plain
	// HTTP.
	MaxMessage int64
	// MaxInFlight bounds the requests of one connection served at once
	// (default 1024); beyond it the server stops reading the connection.
	MaxInFlight int
	// Reject answers an upgrade request that is not one (default
	// http.Error).
	Reject func(w http.ResponseWriter, status int, msg string)
	// Logger reports handler panics (default slog.Default()).
	Logger *slog.Logger

	mu     sync.Mutex
	conns  map[*websocket.Conn]context.CancelFunc
	closed bool
}

// maxOutMessage is the size past which the writer stops adding responses
// to a message.
const maxOutMessage = 256 << 10

// ServeHTTP upgrades r and serves the connection until it closes. r must
// already be authenticated: its Authorization header is given to every
// request of the connection that has none.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.reject(w, http.StatusBadRequest, "this endpoint takes a WebSocket upgrade (Upgrade: websocket); see docs/api.md \"Multiplexed connections\"")
		return
	}
	cancels := hasFeature(r.Header, FeatureCancel)
	if cancels {
		w.Header().Set(FeaturesHeader, FeatureCancel)
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept has answered
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if !s.track(ws, cancel) {
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer s.untrack(ws)
	maxIn := s.MaxInFlight
	if maxIn <= 0 {
		maxIn = 1024
	}
	maxMsg := s.MaxMessage
	if maxMsg <= 0 {
		maxMsg = 4<<20 + 64<<10
	}
	ws.SetReadLimit(maxMsg)
	c := &serverConn{
		s: s, ws: ws, ctx: ctx,
		authz:  r.Header.Get("Authorization"),
		remote: r.RemoteAddr, host: r.Host, tls: r.TLS,
		slots: make(chan struct{}, maxIn),
		out:   make(chan *Response, maxIn),
		work:  make(chan job),
	}
	if cancels {
		c.running = map[uint64]job{}
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
		cancel() // a failed write ends the connection
		ws.CloseNow()
	}()
	c.readLoop()
	// In-flight requests see their context end, as with a client that
	// disconnects from net/http; their answers have nowhere to go.
	cancel()
	c.inflight.Wait()
	<-writerDone
}

// Close closes every connection (http.Server.RegisterOnShutdown: hijacked
// connections are not the http.Server's to close). Connections upgraded
// later are refused.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for ws, cancel := range conns {
		go func() {
			ws.Close(websocket.StatusGoingAway, "server shutting down")
			// The reader may be waiting for a slot, not reading: end the
			// connection's context so that it and the handlers see the close.
			cancel()
		}()
	}
}

func (s *Server) track(ws *websocket.Conn, cancel context.CancelFunc) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[*websocket.Conn]context.CancelFunc{}
	}
	s.conns[ws] = cancel
	return true
}

func (s *Server) untrack(ws *websocket.Conn) {
	s.mu.Lock()
	delete(s.conns, ws)
	s.mu.Unlock()
}

func (s *Server) reject(w http.ResponseWriter, status int, msg string) {
	if s.Reject != nil {
		s.Reject(w, status, msg)
		return
	}
	http.Error(w, msg, status)
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// serverConn is one upgraded connection.
type serverConn struct {
	s   *Server
	ws  *websocket.Conn
	ctx context.Context // ends with the connection

	// From the upgrade request, for every request of the connection.
	authz, remote, host string
	tls                 *tls.ConnectionState

	slots    chan struct{} // one per request in flight
	work     chan job      // to idle workers
	out      chan *Response
	inflight sync.WaitGroup

	// running holds the requests being served, by id, when the client
	// sends cancel frames (FeatureCancel); nil otherwise.
	runningMu sync.Mutex
	running   map[uint64]job
}

// job is one request to serve, with its context: the connection's, or
// one of its own that a cancel frame ends. It travels by value: a pointer
// would cost an allocation per request on every connection.
type job struct {
	req    Request
	ctx    context.Context
	cancel context.CancelCauseFunc // nil without FeatureCancel
}

// errCanceled is the cause of a request context ended by a cancel frame.
var errCanceled = errors.New("multiplex: request canceled by the client")

// readLoop reads messages until the connection fails or closes, and
// starts a goroutine per request.
func (c *serverConn) readLoop() {
	for {
		// A context without Done: coder/websocket arms a timer per call
		// for one that has it. Closing the connection ends the read.
		typ, msg, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		if typ != websocket.MessageBinary {
			c.ws.Close(websocket.StatusUnsupportedData, "multiplex: binary messages only")
			return
		}
		for len(msg) > 0 {
			var req Request
			req, msg, err = ReadRequest(msg)
			if err != nil {
				c.ws.Close(websocket.StatusProtocolError, clipReason(err.Error()))
				return
			}
			if c.running != nil && req.IsCancel() {
				c.cancel(req.ID)
				continue
			}
			select {
			case c.slots <- struct{}{}:
			case <-c.ctx.Done():
				return
			}
			j := c.start(req)
			c.inflight.Add(1)
			select {
			case c.work <- j: // an idle worker takes it
			default:
				go c.worker(j)
			}
		}
	}
}

// start gives req its context, registered for cancel frames if the
// connection has them. It runs in the read loop, so a cancel frame read
// after req finds it.
func (c *serverConn) start(req Request) job {
	if c.running == nil {
		return job{req: req, ctx: c.ctx}
	}
	ctx, cancel := context.WithCancelCause(c.ctx)
	j := job{req: req, ctx: ctx, cancel: cancel}
	c.runningMu.Lock()
	c.running[req.ID] = j // a client reusing an id in flight cancels the latest
	c.runningMu.Unlock()
	return j
}

// cancel ends the context of the request with id, if it is still served.
func (c *serverConn) cancel(id uint64) {
	c.runningMu.Lock()
	j, ok := c.running[id]
	c.runningMu.Unlock()
	if ok {
		j.cancel(errCanceled)
	}
}

// finish unregisters j and reports whether the client canceled it.
func (c *serverConn) finish(j *job) (canceled bool) {
	if j.cancel == nil {
		return false
	}
	c.runningMu.Lock()
	if c.running[j.req.ID].ctx == j.ctx { // not a later request that reused the id
		delete(c.running, j.req.ID)
	}
	c.runningMu.Unlock()
	canceled = context.Cause(j.ctx) == errCanceled
	j.cancel(nil)
	return canceled
}

// clipReason fits a close reason in a control frame (123 bytes).
func clipReason(s string) string {
	if len(s) > 123 {
		return s[:123]
	}
	return s
}

// workerIdle is how long a worker waits for another request before it
// exits.
const workerIdle = 10 * time.Second

// worker serves j, then the requests handed to it while it waits. Workers
// outlive their request so their grown stacks are reused: a goroutine per
// request spent 3.5% of a node's CPU growing stacks under a write load.
func (c *serverConn) worker(j job) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		c.serve(&j)
		idle.Reset(workerIdle)
		select {
		case j = <-c.work:
		case <-idle.C:
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// serve runs one request through the handler and queues its response.
func (c *serverConn) serve(j *job) {
	defer c.inflight.Done()
	resp := c.run(j.ctx, &j.req)
	if c.finish(j) || resp == nil {
		// Canceled: the client has forgotten the id and wants no answer.
		// Or aborted: the connection is closing.
		<-c.slots
		return
	}
	c.out <- resp // never blocks: out holds as many as there are slots
}

func (c *serverConn) run(ctx context.Context, fr *Request) (resp *Response) {
	w := &responseWriter{header: make(http.Header, 4)}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				// The handler wants the client to see a broken
				// connection, as net/http does on HTTP/1.1: close it
				// (every request in flight on it fails on the client).
				c.ws.CloseNow()
				resp = nil
				return
			}
			// net/http would log the panic and drop the connection; here
			// the connection carries other requests, so only this one fails.
			c.s.logger().Error("multiplex: handler panic", "method", fr.Method, "target", fr.Target, "panic", v)
			resp = &Response{ID: fr.ID, Status: http.StatusInternalServerError, Body: []byte("internal error")}
		}
	}()
	// As net/http parses a request line ("//a/b" is a path, not a host),
	// but only in origin form: the host is the connection's.
	u, err := url.ParseRequestURI(fr.Target)
	if err != nil || !isToken(fr.Method) || u.Scheme != "" || u.Host != "" || u.Path == "" || u.Path[0] != '/' {
		rec := &responseWriter{header: make(http.Header, 1)}
		msg := fmt.Sprintf("multiplex: bad request %q %q: want a method and a target starting with /", fr.Method, fr.Target)
		c.s.reject(rec, http.StatusBadRequest, msg)
		return rec.response(fr.ID)
	}
	r := &http.Request{
		Method: fr.Method, URL: u, RequestURI: fr.Target,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, len(fr.Header)+1),
		Body:   http.NoBody, ContentLength: int64(len(fr.Body)),
		Host: c.host, RemoteAddr: c.remote, TLS: c.tls,
	}
	if len(fr.Body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(fr.Body))
	}
	r = r.WithContext(ctx)
	for _, f := range fr.Header {
		if !strings.EqualFold(f.Name, "Host") { // the connection's, as above
			r.Header.Add(f.Name, f.Value)
		}
	}
	if c.authz != "" && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", c.authz)
	}
	c.s.Handler.ServeHTTP(w, r)
	return w.response(fr.ID)
}

// isToken reports whether s is an HTTP token (RFC 9110), as a method must
// be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}

// writeLoop sends responses, as many in one message as are ready.
func (c *serverConn) writeLoop() {
	var buf []byte
	for {
		var r *Response
		select {
		case r = <-c.out:
		case <-c.ctx.Done():
			return
		}
		buf = AppendResponse(buf[:0], r)
		<-c.slots
		if len(c.out) == 0 {
			// Requests tend to finish together (one Raft commit answers a
			// batch): let the others queue theirs before writing.
			runtime.Gosched()
		}
	more:
		for len(buf) < maxOutMessage {
			select {
			case r = <-c.out:
				buf = AppendResponse(buf, r)
				<-c.slots
			default:
				break more
			}
		}
		if err := c.ws.Write(context.Background(), websocket.MessageBinary, buf); err != nil {
			return
		}
		if cap(buf) > 4*maxOutMessage {
			buf = nil // do not keep a huge response's buffer
		}
	}
}

// responseWriter collects a response in memory.
type responseWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		// As net/http does; a frame cannot carry it (ReadResponse).
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// Flush is a no-op: the response goes out whole when the handler returns.
func (w *responseWriter) Flush() {}

func (w *responseWriter) response(id uint64) *Response {
	r := &Response{ID: id, Status: w.status, Body: w.body}
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	n := 0
	for _, vs := range w.header {
		n += len(vs)
	}
	r.Header = make([]Field, 0, n)
	for k, vs := range w.header {
		for _, v := range vs {
			r.Header = append(r.Header, Field{Name: k, Value: v})
		}
	}
	return r
}
