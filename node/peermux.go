package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tandemdb/tandem/api"
	"github.com/tandemdb/tandem/multiplex"
)

// peerMux keeps one multiplexed connection (GET /internal/v1/mux, package
// multiplex) to each node this one sends its frequent small calls to: a
// follower's forwarded write batches and read-index requests, which all go
// to the leader. Over HTTP/1.1 each of those was a request with its own
// write and read syscalls on both ends; under write load the leader spent
// about a sixth of its CPU serving forwarded batches that way, most of it
// in net/http and answer writes (docs/benchmarks.md). On one connection,
// the batches in flight share messages.
//
// A node that does not serve /internal/v1/mux (an older release during a
// rolling upgrade) is called over HTTP/1.1 instead, and asked again after
// noMuxRetry.
type peerMux struct {
	scheme string
	hc     *http.Client
	header http.Header // sent with the upgrade

	mu     sync.Mutex
	conns  map[string]*multiplex.Conn
	noMux  map[string]time.Time // address -> when its upgrade was refused as unknown
	closed bool
}

const noMuxRetry = time.Minute

// maxMuxBody is the largest body sent multiplexed; larger ones (a batch
// carrying a contract deploy) go over HTTP/1.1, as the Go client does, so
// that one never reaches the peer's message limit (its --max-body) and
// never holds up the small ones behind it.
const maxMuxBody = 256 << 10

// errNoMux says the peer cannot take multiplexed calls; use HTTP/1.1.
var errNoMux = errors.New("peer does not serve /internal/v1/mux")

func newPeerMux(scheme string, hc *http.Client, nodeID string) *peerMux {
	h := http.Header{}
	h.Set(api.ForwardedHeader, nodeID)
	return &peerMux{scheme: scheme, hc: hc, header: h, conns: map[string]*multiplex.Conn{}, noMux: map[string]time.Time{}}
}

// conn returns a working connection to addr, dialling one if needed. A
// failed dial is a *peerError that was not sent.
func (p *peerMux) conn(ctx context.Context, addr string) (*multiplex.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, &peerError{sent: false, err: multiplex.ErrClosed}
	}
	if c := p.conns[addr]; c != nil {
		if c.Err() == nil {
			return c, nil
		}
		delete(p.conns, addr)
	}
	if t, ok := p.noMux[addr]; ok && time.Since(t) < noMuxRetry {
		return nil, errNoMux
	}
	// Dialled under the lock: callers for the same peer need this
	// connection anyway, and a follower calls one peer (the leader).
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := multiplex.Dial(dctx, p.scheme+"://"+addr+"/internal/v1/mux", multiplex.DialOptions{
		HTTPClient: p.hc, Header: p.header,
	})
	if err != nil {
		var ue *multiplex.UpgradeError
		if errors.As(err, &ue) {
			if ue.Status == http.StatusNotFound || ue.Status == http.StatusMethodNotAllowed {
				p.noMux[addr] = time.Now()
				return nil, errNoMux
			}
			// Refused as an HTTP call would be (this node is not a
			// member the peer trusts, for one): the same error.
			return nil, peerAnswerError(addr, "/internal/v1/mux", ue.Status, ue.Body)
		}
		// The upgrade is a request of its own: nothing of the caller's
		// was sent on it.
		return nil, &peerError{sent: false, err: fmt.Errorf("node at %s: %w", addr, err)}
	}
	delete(p.noMux, addr)
	p.conns[addr] = c
	return c, nil
}

// close closes every connection; later calls fail.
func (p *peerMux) close() {
	p.mu.Lock()
	conns := p.conns
	p.conns, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range conns {
		c.CloseNow() // the peer may be gone: Close would wait for it
	}
}

// callMux is call for the frequent internal calls: through addr's
// multiplexed connection, or over HTTP/1.1 if addr has none. body is the
// encoded request (nil for none).
func (n *Node) callMux(ctx context.Context, method, addr, path string, body []byte, out any) error {
	var c *multiplex.Conn
	err := errNoMux
	if len(body) <= maxMuxBody {
		c, err = n.pmux.conn(ctx, addr)
	}
	if errors.Is(err, errNoMux) {
		var in any
		if body != nil {
			in = body
		}
		return n.call(ctx, method, addr, path, in, out)
	}
	if err != nil {
		return err
	}
	req := &multiplex.Request{Method: method, Target: path, Body: body, Header: []multiplex.Field{
		{Name: "Content-Type", Value: "application/json"},
		{Name: api.ForwardedHeader, Value: n.opts.ID},
	}}
	resp, err := c.Do(ctx, req)
	if err != nil {
		// Queued on the connection: it may have reached the peer.
		return &peerError{sent: true, err: fmt.Errorf("node at %s: %w", addr, err)}
	}
	if resp.Status/100 != 2 {
		return peerAnswerError(addr, path, resp.Status, resp.Body)
	}
	if out != nil {
		return json.Unmarshal(resp.Body, out)
	}
	return nil
}
