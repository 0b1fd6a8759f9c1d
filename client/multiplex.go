package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tandemdb/tandem/multiplex"
)

// WithMultiplex sends the client's requests over conns multiplexed
// connections per node (GET /v1/mux, docs/api.md "Multiplexed
// connections") instead of one HTTP/1.1 connection per request in flight.
// Requests made at the same time share a WebSocket message, so a busy
// client costs the nodes and itself far fewer syscalls: on this project's
// benchmark machine, more throughput per core (docs/benchmarks.md).
// Requests and answers are the same as over HTTP; bodies over 256 KiB
// (contract modules) still go over HTTP, and so does every request to a
// node that does not serve /v1/mux (an older release, or a proxy that
// passes no WebSocket upgrade: it answers the upgrade 404, 405 or 501),
// which the client tries again a minute later. Call Close when done.
func WithMultiplex(conns int) Option {
	return func(o *options) { o.multiplex = max(conns, 1) }
}

// maxMultiplexBody is the largest request body sent over a multiplexed
// connection: a larger one would hold up the requests behind it.
const maxMultiplexBody = 256 << 10

// muxPool holds the multiplexed connections to every node, dialled on
// first use and again after one fails.
type muxPool struct {
	hc    *http.Client
	authz string
	per   int // connections per node

	mu    sync.Mutex
	conns map[string][]*multiplex.Conn // by base URL
	noMux map[string]time.Time         // base URL -> when to try /v1/mux again
	next  uint64
}

// errNoMux says a node does not serve /v1/mux: send over HTTP instead.
var errNoMux = errors.New("client: node does not serve /v1/mux")

// noMuxRetry is how long the client sends plain HTTP to a node that
// refused the upgrade before it tries /v1/mux again (the node may have
// been upgraded meanwhile).
const noMuxRetry = time.Minute

// get returns a working connection to base, dialling one if needed.
func (p *muxPool) get(ctx context.Context, base string) (*multiplex.Conn, error) {
	p.mu.Lock()
	if until, ok := p.noMux[base]; ok {
		if time.Now().Before(until) {
			p.mu.Unlock()
			return nil, errNoMux
		}
		delete(p.noMux, base)
	}
	cs := p.conns[base]
	if cs == nil {
		cs = make([]*multiplex.Conn, p.per)
		p.conns[base] = cs
	}
	p.next++
	i := int(p.next % uint64(p.per))
	c := cs[i]
	p.mu.Unlock()
	if c != nil && c.Err() == nil {
		return c, nil
	}
	h := http.Header{"User-Agent": {"tandem-client"}}
	if p.authz != "" {
		h.Set("Authorization", p.authz)
	}
	nc, err := multiplex.Dial(ctx, base+"/v1/mux", multiplex.DialOptions{HTTPClient: p.hc, Header: h})
	if err != nil {
		var ue *multiplex.UpgradeError
		if errors.As(err, &ue) {
			switch ue.Status {
			case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
				p.mu.Lock()
				if p.noMux == nil {
					p.noMux = map[string]time.Time{}
				}
				p.noMux[base] = time.Now().Add(noMuxRetry)
				p.mu.Unlock()
				return nil, errNoMux
			}
			// Bad credentials, say: the server's own error.
			return nil, errorFromReply(&reply{status: ue.Status, header: ue.Header, body: ue.Body})
		}
		// A refused connection wraps a *net.OpError "dial": nothing was
		// sent, so retryUndelivered may try the next node.
		return nil, fmt.Errorf("client: %s/v1/mux: %w", base, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.conns[base][i]; old != nil && old != c && old.Err() == nil {
		// Another caller dialled first: use theirs.
		go nc.Close()
		return old, nil
	}
	p.conns[base][i] = nc
	return nc, nil
}

func (p *muxPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cs := range p.conns {
		for _, c := range cs {
			if c != nil {
				c.CloseNow() // a node that is down would hold Close for 5 s
			}
		}
	}
	p.conns = map[string][]*multiplex.Conn{}
}

// sendMux is send over a multiplexed connection.
func (c *Client) sendMux(ctx context.Context, base string, cl *call) (*reply, error) {
	conn, err := c.mux.get(ctx, base)
	if err != nil {
		return nil, err
	}
	target := cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	req := &multiplex.Request{Method: cl.method, Target: target}
	if cl.body != nil {
		req.Body = cl.body
		req.Header = append(req.Header, multiplex.Field{Name: "Content-Type", Value: "application/json"})
	}
	for _, h := range cl.header {
		req.Header = append(req.Header, multiplex.Field{Name: h.key, Value: h.value})
	}
	resp, err := conn.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s%s: %w", cl.method, base, target, err)
	}
	hdr := make(http.Header, len(resp.Header))
	for _, f := range resp.Header {
		hdr.Add(f.Name, f.Value)
	}
	body := resp.Body
	if resp.Status/100 != 2 && len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	return &reply{status: resp.Status, header: hdr, body: body}, nil
}
