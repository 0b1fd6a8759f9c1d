package consensus_test

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tandemdb/tandem/consensus"
	"github.com/tandemdb/tandem/pki"
)

func identity(t *testing.T, b *pki.Bundle) *pki.Identity {
	t.Helper()
	id, err := pki.NewIdentity(b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func stream(t *testing.T, id *pki.Identity, timeout time.Duration) *consensus.TLSStream {
	t.Helper()
	s, err := consensus.NewTLSStream(consensus.TLSStreamOptions{
		Addr: "127.0.0.1:0", Server: id.PeerServerConfig(), Client: id.PeerClientConfig(),
		HandshakeTimeout: timeout, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTLSStream: two members of one CA exchange bytes; a client that
// stalls before its handshake is dropped after the timeout without holding
// up the others; Close is safe twice and ends Accept.
func TestTLSStream(t *testing.T) {
	ca, err := pki.Bootstrap("n1", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.NewKey()
	cert, _ := ca.CA().SignNode("n2", key.Public(), nil, time.Now(), 0)
	a := stream(t, identity(t, ca), 300*time.Millisecond)
	b := stream(t, identity(t, &pki.Bundle{CAs: ca.CAs, NodeCert: cert, NodeKey: key}), time.Second)

	// A stalled client first: it must not block the real peer.
	stalled, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := a.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	conn, err := b.Dial(raft.ServerAddress(a.Addr().String()), time.Second)
	if err != nil {
		t.Fatalf("dial a member: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("read %q, %v", buf, err)
		}
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the member's connection was not accepted")
	}

	stalled.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := stalled.Read(make([]byte, 1)); err == nil {
		t.Fatal("the stalled client got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the stalled client was not dropped within 5s")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("dropped after %v; the handshake timeout is 300ms", time.Since(start))
	}

	// A node of another CA cannot dial in.
	other, _ := pki.Bootstrap("n9", nil, time.Now())
	x := stream(t, identity(t, other), time.Second)
	if c, err := x.Dial(raft.ServerAddress(a.Addr().String()), time.Second); err == nil {
		c.Close()
		t.Fatal("a node of another CA completed a handshake")
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := a.Accept(); err == nil {
		t.Fatal("Accept after Close")
	}
}
