package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tandemdb/tandem/bench"
	"github.com/tandemdb/tandem/client"
)

// cluster is a running three-member store under test.
type cluster interface {
	// target returns a load target and a function that releases it.
	// Balanced targets let every client use every member (for failover);
	// otherwise client i talks to member i modulo 3.
	// extra are client options for a Tandem target (ignored by etcd).
	target(balanced bool, extra ...client.Option) (bench.Target, func(), error)
	// pids returns the server processes running now, member by member (0
	// for a member that is down or unknown).
	pids() []int
	// names returns the members' names.
	names() []string
	// leader returns the index of the member that leads now.
	leader(ctx context.Context) (int, error)
	// kill sends SIGKILL to member i and waits for it to exit.
	kill(i int) error
	// restart starts member i again on its data and waits until the whole
	// cluster is healthy.
	restart(ctx context.Context, i int) error
	// close stops every member.
	close()
}

// errNoProcess is returned by kill and restart on clusters this program
// did not start.
var errNoProcess = fmt.Errorf("compare: the cluster's processes are not ours to kill")

// member is one server process that this program started.
type member struct {
	name string
	bin  string
	args []string
	env  []string // added to the environment (nil: this program's)
	log  string   // file that collects its output
	// healthy reports whether the member serves requests.
	healthy func(ctx context.Context) bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (m *member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("compare: %s is already running", m.name)
	}
	f, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== %s start %v\n", time.Now().Format(time.RFC3339Nano), m.args)
	cmd := exec.Command(m.bin, m.args...)
	if m.env != nil {
		cmd.Env = append(os.Environ(), m.env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Do not outlive this program if it dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("compare: start %s: %w", m.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	m.cmd, m.done = cmd, done
	return nil
}

// signal sends sig and waits for the exit (SIGKILL after 20s).
func (m *member) signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (m *member) pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// procCluster is a cluster of processes this program started.
type procCluster struct {
	members []*member
}

func (c *procCluster) pids() []int {
	p := make([]int, len(c.members))
	for i, m := range c.members {
		p[i] = m.pid()
	}
	return p
}

func (c *procCluster) names() []string {
	n := make([]string, len(c.members))
	for i, m := range c.members {
		n[i] = m.name
	}
	return n
}

func (c *procCluster) kill(i int) error {
	c.members[i].signal(syscall.SIGKILL)
	return nil
}

func (c *procCluster) restart(ctx context.Context, i int) error {
	if err := c.members[i].start(); err != nil {
		return err
	}
	return c.waitHealthy(ctx, 60*time.Second)
}

func (c *procCluster) close() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Go(func() { m.signal(syscall.SIGTERM) })
	}
	wg.Wait()
}

// waitHealthy waits until every running member is healthy.
func (c *procCluster) waitHealthy(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for i := 0; ; i++ {
		ok := true
		for _, m := range c.members {
			if m.pid() != 0 && !m.healthy(ctx) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			var sick []string
			for _, m := range c.members {
				if m.pid() == 0 || !m.healthy(context.Background()) {
					sick = append(sick, fmt.Sprintf("%s (last lines of %s:\n%s)", m.name, m.log, tail(m.log, 15)))
				}
			}
			return fmt.Errorf("compare: cluster not healthy after %v: %s", d, strings.Join(sick, "; "))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of a file, or why it could not be read.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	from := max(0, len(lines)-n)
	// A Go panic's message is above its stack: start there.
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-200; i-- {
		if strings.HasPrefix(lines[i], "panic: ") {
			from = min(from, i)
			break
		}
	}
	return strings.Join(lines[from:], "\n")
}

// httpOK reports whether GET url answers 200 within a second.
func httpOK(ctx context.Context, url string) bool {
	return httpOKWith(ctx, http.DefaultClient, url)
}

// httpOKWith is httpOK through hc.
func httpOKWith(ctx context.Context, hc *http.Client, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
