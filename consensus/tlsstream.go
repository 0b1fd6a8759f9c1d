package consensus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// TLSStreamOptions configure NewTLSStream.
type TLSStreamOptions struct {
	Addr      string // required: listen address (host:port)
	Advertise string // address peers dial (default: the address listened on)
	// Server must require and verify client certificates (see
	// pki.Identity.PeerServerConfig); Client must verify the server.
	Server, Client *tls.Config
	// HandshakeTimeout bounds an incoming or outgoing TLS handshake
	// (default 10s): a client that connects and stalls is dropped.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds incoming handshakes in progress (default 64);
	// connections beyond it are closed at once.
	MaxHandshakes int
	Logger        *slog.Logger
}

// TLSStream is a raft.StreamLayer over mutual TLS. Handshakes of incoming
// connections run on their own goroutines, so one stalled client cannot
// hold up Accept; only connections whose handshake succeeded are handed
// to Raft. Close stops the listener and waits for those goroutines.
type TLSStream struct {
	opts  TLSStreamOptions
	ln    net.Listener
	adv   net.Addr
	conns chan net.Conn
	slots chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

var _ raft.StreamLayer = (*TLSStream)(nil)

// NewTLSStream listens on opts.Addr and starts accepting connections.
func NewTLSStream(opts TLSStreamOptions) (*TLSStream, error) {
	if opts.Addr == "" || opts.Server == nil || opts.Client == nil {
		return nil, errors.New("consensus: TLS stream needs Addr, Server and Client")
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.MaxHandshakes <= 0 {
		opts.MaxHandshakes = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("consensus: listen on %s: %w", opts.Addr, err)
	}
	if opts.Advertise == "" {
		opts.Advertise = ln.Addr().String()
	}
	adv, err := net.ResolveTCPAddr("tcp", opts.Advertise)
	if err == nil && (adv.IP == nil || adv.IP.IsUnspecified()) {
		err = errors.New("not an address peers can reach; set the advertised address")
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("consensus: raft address %q: %w", opts.Advertise, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &TLSStream{
		opts: opts, ln: ln, adv: adv,
		conns: make(chan net.Conn), slots: make(chan struct{}, opts.MaxHandshakes),
		ctx: ctx, cancel: cancel,
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *TLSStream) acceptLoop() {
	defer s.wg.Done()
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.opts.Logger.Warn("raft listener stopped", "err", err)
			return
		}
		select {
		case s.slots <- struct{}{}:
		default:
			s.opts.Logger.Warn("too many raft TLS handshakes in progress; dropping connection", "remote", raw.RemoteAddr())
			raw.Close()
			continue
		}
		s.wg.Add(1)
		go s.handshake(raw)
	}
}

// handshake completes the server side of the TLS handshake within the
// timeout and hands the connection to Accept.
func (s *TLSStream) handshake(raw net.Conn) {
	defer s.wg.Done()
	conn := tls.Server(raw, s.opts.Server)
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.HandshakeTimeout)
	err := conn.HandshakeContext(ctx)
	cancel()
	<-s.slots
	if err != nil {
		// Debug, not warn: anyone who can reach the port can cause these.
		s.opts.Logger.Debug("raft TLS handshake refused", "remote", raw.RemoteAddr(), "err", err)
		conn.Close()
		return
	}
	select {
	case s.conns <- conn:
	case <-s.ctx.Done():
		conn.Close()
	}
}

// Accept implements net.Listener: it returns the next connection whose
// handshake succeeded.
func (s *TLSStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener. Safe to call twice.
func (s *TLSStream) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		err = s.ln.Close()
		s.wg.Wait()
	})
	return err
}

// Addr implements net.Listener: the advertised address.
func (s *TLSStream) Addr() net.Addr { return s.adv }

// Dial implements raft.StreamLayer: a TCP connection and a TLS handshake,
// together within timeout.
func (s *TLSStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > s.opts.HandshakeTimeout {
		timeout = s.opts.HandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: s.opts.Client}
	return d.DialContext(ctx, "tcp", string(address))
}
