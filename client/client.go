package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tandemdb/tandem/multiplex"
)

// Client calls the HTTP API of a Tandem cluster. It is safe for concurrent
// use; clients returned by Node share its connections.
type Client struct {
	addrs   []string // base URLs, without a trailing slash
	hc      *http.Client
	timeout time.Duration
	pinned  int            // index into addrs, or -1 to take turns
	next    *atomic.Uint64 // round-robin position, shared with Node clients
	authz   string         // Authorization header value, "" for none (security.go)
	mux     *muxPool       // nil unless WithMultiplex (multiplex.go)
}

// Option configures a Client made by New.
type Option func(*options)

type options struct {
	httpClient *http.Client
	timeout    time.Duration
	authz      string
	tls        tlsOptions // client/tls.go
	multiplex  int        // connections per node; 0: plain HTTP
}

// WithHTTPClient makes the client send its requests with hc. By default it
// uses its own http.Client whose transport keeps up to 1024 idle
// connections per node.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) { o.httpClient = hc }
}

// WithTimeout bounds every call, retries included. By default there is no
// bound other than the caller's context. Writes wait for their commit on the
// server for up to 10s (see CommitTimeout), so a bound below that turns slow
// commits into client-side timeouts whose outcome is unknown.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// New returns a client for the nodes at addrs, each a base URL such as
// "https://127.0.0.1:7001"; a bare "host:port" means https if a TLS option
// (WithCAFile, WithRootCAs, WithTLSConfig) is given and http otherwise.
// It does no I/O other than reading a CA file.
func New(addrs []string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if len(addrs) == 0 {
		return nil, errors.New("client: no node addresses")
	}
	if o.timeout < 0 {
		return nil, fmt.Errorf("client: negative timeout %v", o.timeout)
	}
	c := &Client{
		addrs:   make([]string, len(addrs)),
		hc:      o.httpClient,
		timeout: o.timeout,
		pinned:  -1,
		next:    new(atomic.Uint64),
		authz:   o.authz,
	}
	tlsCfg, err := o.tls.config()
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	for i, a := range addrs {
		base, err := parseAddr(a, scheme)
		if err != nil {
			return nil, err
		}
		c.addrs[i] = base
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: newTransport(tlsCfg)}
	}
	if o.multiplex > 0 {
		c.mux = &muxPool{hc: c.hc, authz: c.authz, per: o.multiplex, conns: map[string][]*multiplex.Conn{}}
	}
	return c, nil
}

// Close closes the client's multiplexed connections (WithMultiplex) and
// its idle HTTP connections. Calls in flight on a multiplexed connection
// fail. Clients returned by Node share the connections: close only one.
func (c *Client) Close() error {
	if c.mux != nil {
		c.mux.close()
	}
	c.hc.CloseIdleConnections()
	return nil
}

func parseAddr(addr, scheme string) (string, error) {
	s := strings.TrimSpace(addr)
	if !strings.Contains(s, "://") {
		s = scheme + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("client: bad node address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("client: bad node address %q: scheme must be http or https", addr)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("client: bad node address %q: want a base URL such as http://127.0.0.1:7001", addr)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// newTransport is http.DefaultTransport tuned for many concurrent callers:
// without a large MaxIdleConnsPerHost (default 2), a busy client closes and
// redials connections on almost every call.
//
// It speaks HTTP/1.1 over a pool of connections, also over TLS, where
// DefaultTransport would negotiate HTTP/2 and put every concurrent call
// to a node on one connection. Against a node on this machine that cost
// 15-50% of the throughput at 64 concurrent callers, with stalls of over
// a second (docs/benchmarks.md, "The Go client over TLS").
func newTransport(tlsCfg *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsCfg
	// With TLSClientConfig set, this alone keeps the transport on HTTP/1.1.
	t.ForceAttemptHTTP2 = false
	t.MaxIdleConns = 0 // no overall limit
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}

// Addrs returns the nodes' base URLs in the order given to New.
func (c *Client) Addrs() []string { return append([]string(nil), c.addrs...) }

// Node returns a client that sends every call to node i (an index into the
// addresses given to New) and never retries elsewhere. It shares c's
// connections. It panics if i is out of range.
func (c *Client) Node(i int) *Client {
	if i < 0 || i >= len(c.addrs) {
		panic(fmt.Sprintf("client: Node(%d) with %d addresses", i, len(c.addrs)))
	}
	p := *c
	p.pinned = i
	return &p
}

// call is one API request.
type call struct {
	method string
	path   string     // already escaped, starting with "/"
	query  url.Values // nil for none
	header []headerField
	body   []byte // nil for none
	retry  retryRule
}

type headerField struct{ key, value string }

// retryRule says when a failed attempt may be repeated on the next node.
type retryRule int

const (
	// retryUndelivered: only when the connection could not be dialled, so
	// the request surely never reached a server. Safe for any request.
	retryUndelivered retryRule = iota
	// retryTransport: on any transport failure. For reads only.
	retryTransport
	// retryNever: the call is about one node (health checks).
	retryNever
)

func (r retryRule) allows(err error) bool {
	switch r {
	case retryTransport:
		return true
	case retryUndelivered:
		var op *net.OpError
		return errors.As(err, &op) && op.Op == "dial"
	}
	return false
}

// reply is a response read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// do sends cl to one node, moving on to the next address when cl.retry
// allows, and turns a non-2xx reply into an *Error.
func (c *Client) do(ctx context.Context, cl *call) (*reply, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	n := len(c.addrs)
	first, tries := c.pinned, 1
	if first < 0 {
		first = int((c.next.Add(1) - 1) % uint64(n))
		if cl.retry != retryNever {
			tries = n
		}
	}
	var err error
	for i := range tries {
		var rep *reply
		rep, err = c.send(ctx, c.addrs[(first+i)%n], cl)
		if err == nil {
			if rep.status/100 != 2 {
				return nil, errorFromReply(rep)
			}
			return rep, nil
		}
		if ctx.Err() != nil || !cl.retry.allows(err) {
			break
		}
	}
	return nil, err
}

func (c *Client) send(ctx context.Context, base string, cl *call) (*reply, error) {
	if c.mux != nil && len(cl.body) <= maxMultiplexBody {
		rep, err := c.sendMux(ctx, base, cl)
		if !errors.Is(err, errNoMux) {
			return rep, err
		}
		// A node (or a proxy in front of it) without /v1/mux: HTTP.
	}
	u := base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tandem-client")
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.authz != "" {
		req.Header.Set("Authorization", c.authz)
	}
	for _, h := range cl.header {
		req.Header.Set(h.key, h.value)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	r := io.Reader(resp.Body)
	if resp.StatusCode/100 != 2 {
		r = io.LimitReader(r, maxErrorBody)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: reading the response: %w", cl.method, u, err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// index returns the Tandem-Index header, or 0.
func (r *reply) index() uint64 {
	n, _ := strconv.ParseUint(r.header.Get("Tandem-Index"), 10, 64)
	return n
}

// etag returns the version in an ETag header such as `"12"`, or 0.
func (r *reply) etag() uint64 {
	v := strings.TrimPrefix(r.header.Get("ETag"), "W/")
	n, _ := strconv.ParseUint(strings.Trim(v, `"`), 10, 64)
	return n
}
