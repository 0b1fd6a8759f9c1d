package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds ./cmd/tandem once per test binary and returns its path.
// TANDEM_BIN overrides it with a prebuilt binary.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("TANDEM_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "tandem-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "tandem")
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/tandem")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building tandem: %v", buildErr)
	}
	return binPath
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
//
// The ports are consecutive and lie below the kernel's ephemeral range
// (32768 and up on Linux), so an outgoing connection of another test
// running in parallel cannot take one between the check here and the node
// binding it. Consecutive ports also suit `tandem dev`, which numbers its
// nodes from a base port.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	const lo, hi = 10000, 32000
	for attempt := 0; attempt < 200; attempt++ {
		base := lo + randIntn(hi-lo-n)
		var ls []net.Listener
		ok := true
		for i := 0; i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok && claimPorts(base, n) {
			ports := make([]int, n)
			for i := range ports {
				ports[i] = base + i
			}
			return ports
		}
	}
	t.Fatalf("no %d consecutive free ports in [%d,%d)", n, lo, hi)
	return nil
}

// portRand is seeded per process so parallel test binaries pick different
// ranges. handedOut holds the ports this process has returned: a node
// that was just started may not have bound its ports yet, so they look
// free to the next FreePorts.
var (
	portMu    sync.Mutex
	portRand  = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	handedOut = map[int]bool{}
)

func randIntn(n int) int {
	portMu.Lock()
	defer portMu.Unlock()
	return portRand.IntN(n)
}

// claimPorts records [base, base+n) as handed out, unless one already is.
func claimPorts(base, n int) bool {
	portMu.Lock()
	defer portMu.Unlock()
	for p := base; p < base+n; p++ {
		if handedOut[p] {
			return false
		}
	}
	for p := base; p < base+n; p++ {
		handedOut[p] = true
	}
	return true
}

// Options shape a cluster.
type Options struct {
	Nodes int // default 3
	// ExtraArgs are added to every node's serve command (e.g. snapshot
	// thresholds).
	ExtraArgs []string
	// Insecure runs the nodes with --insecure (plain HTTP and TCP, no
	// authentication). By default clusters are secure: the first node
	// creates the CA and the admin user, the others join with join
	// tokens, and the harness's clients trust the CA and authenticate as
	// the admin (tls.go, security.go).
	Insecure bool
	// Network puts every node in its own network namespace with its own
	// address (netns.go), which Partition, Isolate and Slow need. It
	// needs root, ip and nft; without them Start fails the test, naming
	// what is missing. Default: every node on 127.0.0.1.
	Network bool
}

// Cluster is a set of node processes.
type Cluster struct {
	t     testing.TB
	bin   string
	dir   string
	Nodes []*Node
	extra []string
	sec   *security // nil when Insecure
	net   *network  // nil without Options.Network
}

// Node is one tandem serve process.
type Node struct {
	ID   string
	HTTP string // host:port
	Raft string
	Dir  string
	Args []string
	// Netns and IP are the node's network namespace and address with
	// Options.Network, else empty.
	Netns string
	IP    string

	scheme string // https, or http when the cluster is insecure

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	log     *os.File
	exitErr error // how the last process exited (set when done closes)
}

// URL is the node's API base URL.
func (n *Node) URL() string { return n.scheme + "://" + n.HTTP }

// Start launches a cluster: the first node bootstraps, the others join it.
// It waits until every node is ready. Processes are killed at cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	c := &Cluster{t: t, bin: Binary(t), dir: t.TempDir(), extra: opts.ExtraArgs}
	if !opts.Insecure {
		c.sec = &security{}
	}
	if opts.Network {
		nw, err := newNetwork(t)
		if err != nil {
			t.Fatalf("harness: this test cuts real network links and cannot run here: %v", err)
		}
		c.net = nw
		// Registered first, so it runs after stopAll has killed the nodes.
		t.Cleanup(func() {
			if err := nw.close(); err != nil {
				t.Errorf("harness: removing test network %d: %v", nw.idx, err)
			}
		})
	}
	t.Cleanup(c.stopAll)
	first := c.NewNode(true)
	c.Start(first)
	c.loadCA(first)
	c.WaitReady(first, 30*time.Second)
	for i := 1; i < opts.Nodes; i++ {
		n := c.NewNode(false)
		c.Start(n)
	}
	for _, n := range c.Nodes {
		c.WaitReady(n, 30*time.Second)
	}
	c.WaitMembers(opts.Nodes, 30*time.Second)
	return c
}

// NewNode allocates the next node (not started). With bootstrap it forms a
// new cluster; otherwise it joins through every existing node, with a join
// token created now through a running node if the cluster is secure.
func (c *Cluster) NewNode(bootstrap bool) *Node {
	id := "n" + strconv.Itoa(len(c.Nodes)+1)
	n := &Node{ID: id, Dir: filepath.Join(c.dir, id)}
	if c.net != nil {
		if err := c.net.attach(n); err != nil {
			c.t.Fatalf("harness: network for %s: %v", id, err)
		}
		n.HTTP = net.JoinHostPort(n.IP, strconv.Itoa(netHTTPPort))
		n.Raft = net.JoinHostPort(n.IP, strconv.Itoa(netRaftPort))
	} else {
		ports := FreePorts(c.t, 2)
		n.HTTP = "127.0.0.1:" + strconv.Itoa(ports[0])
		n.Raft = "127.0.0.1:" + strconv.Itoa(ports[1])
	}
	n.scheme = "https"
	if c.sec == nil {
		n.scheme = "http"
	}
	n.Args = []string{"serve", "--id", n.ID, "--data", filepath.Join(n.Dir, "data"), "--http", n.HTTP, "--raft", n.Raft, "--log-level", "warn"}
	if bootstrap {
		n.Args = append(n.Args, "--bootstrap")
	}
	for _, other := range c.Nodes {
		n.Args = append(n.Args, "--join", other.URL())
	}
	n.Args = append(n.Args, c.securityArgs()...)
	if !bootstrap && c.sec != nil {
		// Not JoinToken: a chaos nemesis adds nodes from its own goroutine.
		// Without a token the node exits at start, saying why.
		if tok, err := c.TryJoinToken(time.Hour); err == nil {
			n.Args = append(n.Args, "--token", tok)
		} else {
			c.t.Logf("node %s gets no join token: %v", id, err)
		}
	}
	n.Args = append(n.Args, c.extra...)
	c.Nodes = append(c.Nodes, n)
	return n
}

// Start (re)starts a node's process on its data folder.
func (c *Cluster) Start(n *Node) {
	c.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		c.t.Fatalf("node %s is already running", n.ID)
	}
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(n.Dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== start %s %v\n", time.Now().Format(time.RFC3339Nano), n.Args)
	cmd := exec.Command(c.bin, n.Args...)
	if n.Netns != "" {
		// ip netns exec enters the namespace and execs the binary, so
		// the process ID is the node's and signals reach it directly.
		cmd = exec.Command("ip", append([]string{"netns", "exec", n.Netns, c.bin}, n.Args...)...)
	}
	cmd.Env = c.nodeEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start %s: %v", n.ID, err)
	}
	n.cmd, n.log, n.done = cmd, logf, make(chan struct{})
	done := n.done
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
}

// Exited reports whether the process last started by Start has exited on
// its own (not by Kill or Stop), and how: a crash or panic on restart shows
// up here while Running still reports true.
func (n *Node) Exited() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.done == nil {
		return false, nil
	}
	select {
	case <-n.done:
		return true, n.exitErr
	default:
		return false, nil
	}
}

// LogPath is the node's log file (every start appends to it).
func (n *Node) LogPath() string { return filepath.Join(n.Dir, "node.log") }

// ReadLog returns the node's whole log so far ("" if there is none yet).
func (n *Node) ReadLog() string {
	b, _ := os.ReadFile(n.LogPath())
	return string(b)
}

// Kill sends SIGKILL (a crash: nothing is flushed) and waits for the exit.
func (c *Cluster) Kill(n *Node) { c.signalAndWait(n, syscall.SIGKILL) }

// Stop sends SIGTERM (a clean shutdown) and waits for the exit.
func (c *Cluster) Stop(n *Node) { c.signalAndWait(n, syscall.SIGTERM) }

func (c *Cluster) signalAndWait(n *Node, sig syscall.Signal) {
	c.t.Helper()
	n.mu.Lock()
	cmd, done, logf := n.cmd, n.done, n.log
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		c.t.Errorf("node %s did not exit within 20s of %v", n.ID, sig)
	}
	logf.Close()
}

// Pause freezes a node (SIGSTOP); Resume thaws it (SIGCONT).
func (c *Cluster) Pause(n *Node)  { c.signal(n, syscall.SIGSTOP) }
func (c *Cluster) Resume(n *Node) { c.signal(n, syscall.SIGCONT) }

func (c *Cluster) signal(n *Node, sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.cmd.Process.Signal(sig)
	}
}

// Running reports whether the node's process is up.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

func (c *Cluster) stopAll() {
	for _, n := range c.Nodes {
		c.Resume(n)
		c.Kill(n)
	}
	if c.t.Failed() {
		// The folders are deleted with t.TempDir, so show what the nodes said.
		for _, n := range c.Nodes {
			c.t.Logf("last lines of %s's log:\n%s", n.ID, Tail(filepath.Join(n.Dir, "node.log"), 40))
		}
	}
}

// Status is a node's /internal/v1/status answer.
type Status struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	Leader       bool   `json:"leader"`
	AppliedIndex uint64 `json:"applied_index"`
	LedgerHash   string `json:"ledger_hash"`
}

// NodeStatus asks one node for its own status.
func (c *Cluster) NodeStatus(n *Node) (Status, error) {
	var st Status
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/internal/v1/status", nil)
	resp, err := c.AsNode(n.ID).Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// WaitReady waits until a node answers /readyz with 200.
func (c *Cluster) WaitReady(n *Node, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := c.HTTPClient().Get(n.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %s not ready after %v (last error %v); log: %s", n.ID, d, err, filepath.Join(n.Dir, "node.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Leader returns the running node that reports itself leader, waiting up to d.
func (c *Cluster) Leader(d time.Duration) *Node {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			if st, err := c.NodeStatus(n); err == nil && st.Leader {
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no leader among running nodes after %v", d)
	return nil
}

// WaitMembers waits until the cluster lists want nodes, each registered.
func (c *Cluster) WaitMembers(want int, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			resp, err := c.HTTPClient().Get(n.URL() + "/v1/cluster")
			if err != nil {
				continue
			}
			var body struct {
				Nodes []struct {
					ID       string `json:"id"`
					HTTPAddr string `json:"http_addr"`
				} `json:"nodes"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			registered := 0
			for _, m := range body.Nodes {
				if m.HTTPAddr != "" {
					registered++
				}
			}
			if registered == want && len(body.Nodes) == want {
				return
			}
			last = fmt.Sprintf("%+v", body.Nodes)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("cluster did not reach %d registered members within %v; last view %s", want, d, last)
}

// WaitConverged waits until every running node reports the same applied
// index and ledger hash, and returns them.
func (c *Cluster) WaitConverged(d time.Duration) (uint64, string) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var seen []Status
	for time.Now().Before(deadline) {
		seen = seen[:0]
		ok := true
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			st, err := c.NodeStatus(n)
			if err != nil {
				ok = false
				break
			}
			seen = append(seen, st)
		}
		if ok && len(seen) > 0 {
			same := true
			for _, st := range seen[1:] {
				same = same && st.AppliedIndex == seen[0].AppliedIndex && st.LedgerHash == seen[0].LedgerHash
			}
			if same {
				return seen[0].AppliedIndex, seen[0].LedgerHash
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("nodes did not converge within %v: %+v", d, seen)
	return 0, ""
}

// Tail returns the last n lines of a file (or why it could not be read).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
