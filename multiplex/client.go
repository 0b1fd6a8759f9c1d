package multiplex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Conn is the client end of a multiplexed connection. Do may be called
// from many goroutines at once: requests made while the connection is
// busy writing go out together in the next message.
type Conn struct {
	ws *websocket.Conn

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan *Response
	queue   []byte // frames waiting to be written
	ends    []int  // where each queued frame ends
	err     error  // why the connection failed; set once
	// cancels: the server takes cancel frames (FeatureCancel), so a
	// request whose caller gives up is canceled on the server too.
	cancels bool

	wake chan struct{} // the writer has work (capacity 1)
	done chan struct{} // closed when the connection fails
}

// DialOptions configure Dial.
type DialOptions struct {
	// HTTPClient makes the upgrade request (its transport's TLS
	// configuration applies); default http.DefaultClient.
	HTTPClient *http.Client
	// Header is sent with the upgrade request: its Authorization header
	// authenticates every request of the connection.
	Header http.Header
	// MaxMessage bounds one incoming message (default 64 MiB).
	MaxMessage int64
	// PingInterval is how often the connection is checked with a
	// WebSocket ping, which must be answered within PingInterval too
	// (default 5s; negative: never). Without it a connection to a node
	// that vanished without a reset (power loss, a cut link) would hold
	// every request sent on it until TCP gave up, many minutes later;
	// over HTTP/1.1 each timed-out request closes its connection instead.
	PingInterval time.Duration
}

// DefaultPingInterval is DialOptions.PingInterval's default.
const DefaultPingInterval = 5 * time.Second

// maxOutgoing bounds the frames written in one message. It is below every
// server's MaxMessage default; a single larger frame goes alone.
const maxOutgoing = 1 << 20

// ErrClosed is returned by Do on a connection that was closed by Close.
var ErrClosed = errors.New("multiplex: connection closed")

// Dial opens a multiplexed connection: url is the upgrade endpoint, with
// an http, https, ws or wss scheme.
func Dial(ctx context.Context, url string, o DialOptions) (*Conn, error) {
	header := o.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Set(FeaturesHeader, FeatureCancel)
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:      o.HTTPClient,
		HTTPHeader:      header,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil {
			ue := &UpgradeError{Status: resp.StatusCode, Header: resp.Header, Err: err}
			if resp.Body != nil { // coder/websocket keeps the first KiB
				ue.Body, _ = io.ReadAll(resp.Body)
			}
			return nil, ue
		}
		return nil, err
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = 64 << 20
	}
	ws.SetReadLimit(o.MaxMessage)
	c := &Conn{
		ws:      ws,
		pending: map[uint64]chan *Response{},
		cancels: hasFeature(resp.Header, FeatureCancel),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	go c.writeLoop()
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PingInterval > 0 {
		go c.pingLoop(o.PingInterval)
	}
	return c, nil
}

// pingLoop fails the connection when a ping goes unanswered.
func (c *Conn) pingLoop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-c.done:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			c.fail(fmt.Errorf("multiplex: connection lost: no answer to a ping within %v: %w", every, err))
			c.ws.CloseNow()
			return
		}
	}
}

// UpgradeError is a refused upgrade: the server answered with Status,
// Header and Body (its first KiB).
type UpgradeError struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error
}

func (e *UpgradeError) Error() string {
	return fmt.Sprintf("multiplex: upgrade refused with status %d: %v", e.Status, e.Err)
}

func (e *UpgradeError) Unwrap() error { return e.Err }

// Do sends r (its ID is assigned here) and waits for its response, ctx's
// end or the connection's failure. After an error the request may or may
// not have been served, as with an HTTP request whose connection breaks.
// When ctx ends first and the server takes cancel frames, Do sends one:
// the handler's context ends, as when an HTTP client hangs up.
func (c *Conn) Do(ctx context.Context, r *Request) (*Response, error) {
	ch := make(chan *Response, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	r.ID = c.nextID
	c.pending[r.ID] = ch
	c.queue = AppendRequest(c.queue, r)
	c.ends = append(c.ends, len(c.queue))
	c.mu.Unlock()
	c.wakeWriter()
	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
		c.mu.Lock()
		_, waiting := c.pending[r.ID] // not answered yet
		delete(c.pending, r.ID)
		cancel := waiting && c.cancels
		if cancel {
			c.queue = AppendCancel(c.queue, r.ID)
			c.ends = append(c.ends, len(c.queue))
		}
		c.mu.Unlock()
		if cancel {
			c.wakeWriter()
		}
		return nil, ctx.Err()
	case <-c.done:
		select {
		case resp := <-ch: // answered just before the failure
			return resp, nil
		default:
		}
		return nil, c.Err()
	}
}

// wakeWriter tells the writer that frames are queued.
func (c *Conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Err returns why the connection failed, or nil while it works.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the connection has failed or been closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection; requests waiting for a response fail.
// It waits (up to 5 s) for the server to acknowledge the close.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return c.ws.Close(websocket.StatusNormalClosure, "")
}

// CloseNow closes the connection at once, without waiting for the server:
// for shutting down when the server may be gone.
func (c *Conn) CloseNow() error {
	c.fail(ErrClosed)
	return c.ws.CloseNow()
}

// fail records the first error and wakes every waiter.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	c.pending = nil
	close(c.done)
}

func (c *Conn) readLoop() {
	for {
		typ, msg, err := c.ws.Read(context.Background())
		if err != nil {
			c.fail(fmt.Errorf("multiplex: connection lost: %w", err))
			c.ws.CloseNow()
			return
		}
		if typ != websocket.MessageBinary {
			c.fail(errors.New("multiplex: the server sent a text message"))
			c.ws.Close(websocket.StatusUnsupportedData, "binary messages only")
			return
		}
		for len(msg) > 0 {
			var resp Response
			resp, msg, err = ReadResponse(msg)
			if err != nil {
				c.fail(err)
				c.ws.Close(websocket.StatusProtocolError, clipReason(err.Error()))
				return
			}
			c.mu.Lock()
			ch := c.pending[resp.ID]
			delete(c.pending, resp.ID)
			c.mu.Unlock()
			if ch != nil { // nil: its caller gave up
				ch <- &resp
			}
		}
	}
}

// writeLoop writes the queued frames, all that are queued at once when
// they fit in maxOutgoing.
func (c *Conn) writeLoop() {
	var out []byte
	var ends []int
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		// Callers tend to come together (one message answers many of
		// them, and each sends its next request): let the others queue
		// theirs before writing.
		runtime.Gosched()
		c.mu.Lock()
		out, c.queue = c.queue, out[:0]
		ends, c.ends = c.ends, ends[:0]
		c.mu.Unlock()
		// Cut at the last frame end within maxOutgoing (at least one
		// frame per message); i walks ends once over all the messages.
		start, i := 0, 0
		for start < len(out) {
			end := start
			for ; i < len(ends); i++ {
				if end > start && ends[i]-start > maxOutgoing {
					break
				}
				end = ends[i]
			}
			if err := c.ws.Write(context.Background(), websocket.MessageBinary, out[start:end]); err != nil {
				c.fail(fmt.Errorf("multiplex: connection lost: %w", err))
				c.ws.CloseNow()
				return
			}
			start = end
		}
		if cap(out) > 4*maxOutgoing {
			out = nil
		}
	}
}
