package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/pki"
)

// devCluster runs the node processes of `tandem dev`.
type devCluster struct {
	exe    string
	layout *devLayout
	out    io.Writer
	hc     *http.Client // trusts the cluster CA once it is known
	pool   *x509.CertPool
	procs  []*devProc
	outMu  sync.Mutex // exit notices come from several goroutines
	creds  *devAuth
}

type devProc struct {
	node devNode
	cmd  *exec.Cmd
	done chan struct{}
}

func newDevCluster(exe string, l *devLayout, out io.Writer, creds *devAuth) *devCluster {
	return &devCluster{exe: exe, layout: l, out: out, creds: creds, hc: &http.Client{Timeout: 5 * time.Second}}
}

func (d *devCluster) url(n devNode) string {
	if d.layout.Insecure {
		return "http://" + n.HTTP
	}
	return "https://" + n.HTTP
}

// caFile is the first node's CA certificate, which every node shares.
func (d *devCluster) caFile() string {
	return filepath.Join(d.layout.Nodes[0].Dir, pki.CACertFile)
}

// start brings the cluster up. Nodes that can start on their own (the
// first, and every node that already has its certificate) start at once,
// so that a cluster coming back has its quorum; a new node waits until
// the first is ready and joins with a join token created through it.
func (d *devCluster) start(ctx context.Context) error {
	var waiting []devNode
	for i, n := range d.layout.Nodes {
		if i > 0 && !d.layout.Insecure && !pki.HasBundle(n.Dir) {
			waiting = append(waiting, n)
			continue
		}
		if err := d.startNode(i, ""); err != nil {
			return err
		}
	}
	if !d.layout.Insecure {
		if err := d.loadCA(ctx); err != nil {
			return err
		}
	}
	if len(waiting) > 0 {
		if err := d.waitReady(ctx, d.procs[0]); err != nil {
			return err
		}
		c, err := client.New([]string{d.url(d.layout.Nodes[0])}, client.WithRootCAs(d.pool), client.WithTimeout(30*time.Second),
			client.WithBasicAuth("admin", d.creds.password))
		if err != nil {
			return err
		}
		if err := waitAdmin(ctx, c); err != nil {
			return err
		}
		for _, n := range waiting {
			tok, err := c.CreateJoinToken(ctx, 10*time.Minute)
			if err != nil {
				return fmt.Errorf("create a join token for node %s: %w", n.ID, err)
			}
			if err := d.startNode(indexOf(d.layout, n.ID), tok.Token); err != nil {
				return err
			}
		}
	}
	for _, p := range d.procs {
		if err := d.waitReady(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func indexOf(l *devLayout, id string) int {
	for i, n := range l.Nodes {
		if n.ID == id {
			return i
		}
	}
	return -1
}

// startNode starts node i of the layout, with a join token if given.
func (d *devCluster) startNode(i int, token string) error {
	n := d.layout.Nodes[i]
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(n.Dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := []string{"serve", "--id", n.ID, "--data", n.Dir, "--http", n.HTTP, "--raft", n.Raft}
	if d.layout.Insecure {
		args = append(args, "--insecure")
	}
	if i == 0 {
		args = append(args, "--bootstrap")
	} else {
		for _, other := range d.layout.Nodes {
			if other.ID != n.ID {
				args = append(args, "--join", d.url(other))
			}
		}
	}
	c := exec.Command(d.exe, args...)
	c.Stdout, c.Stderr = logf, logf
	c.Env = d.creds.env()
	if token != "" {
		// Not on the command line, where other users could read it.
		c.Env = append(c.Env, "TANDEM_JOIN_TOKEN="+token)
	}
	if err := c.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start node %s: %w", n.ID, err)
	}
	p := &devProc{node: n, cmd: c, done: make(chan struct{})}
	d.procs = append(d.procs, p)
	go func() {
		err := c.Wait()
		logf.Close()
		close(p.done)
		d.outMu.Lock()
		defer d.outMu.Unlock()
		if err != nil && !isSignalExit(err) {
			fmt.Fprintf(d.out, "node %s exited: %v (see %s)\n", p.node.ID, err, filepath.Join(p.node.Dir, "node.log"))
		}
	}()
	return nil
}

// loadCA waits for the first node's CA certificate and trusts it.
func (d *devCluster) loadCA(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(d.caFile())
		if err == nil {
			if certs, perr := pki.ParseCerts(b); perr == nil {
				d.pool = x509.NewCertPool()
				for _, c := range certs {
					d.pool.AddCert(c)
				}
				d.hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.pool}}}
				return nil
			}
		}
		if err := d.exited(d.procs[0]); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s wrote no CA certificate (%s) within 30s", d.layout.Nodes[0].ID, d.caFile())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exited returns an error with the end of the node's log if it has exited.
func (d *devCluster) exited(p *devProc) error {
	select {
	case <-p.done:
		logPath := filepath.Join(p.node.Dir, "node.log")
		return fmt.Errorf("node %s stopped while starting; the end of %s:\n%s", p.node.ID, logPath, logTail(logPath, 20))
	default:
		return nil
	}
}

// waitReady waits until a node answers /readyz. A node that exits first
// fails the start at once, with the end of its log.
func (d *devCluster) waitReady(ctx context.Context, p *devProc) error {
	deadline := time.Now().Add(60 * time.Second)
	logPath := filepath.Join(p.node.Dir, "node.log")
	for {
		resp, err := d.hc.Get(d.url(p.node) + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := d.exited(p); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s is not ready after 60s; the end of %s:\n%s", p.node.ID, logPath, logTail(logPath, 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM to every node and waits, killing stragglers after 15
// seconds.
func (d *devCluster) stop() {
	for _, p := range d.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for _, p := range d.procs {
		select {
		case <-p.done:
		case <-deadline:
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// waitAdmin waits until the bootstrap node has created the admin user,
// which it does just after it becomes ready: join tokens need an admin.
func waitAdmin(ctx context.Context, c *client.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.WhoAmI(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the admin user was not created within 30s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
