package harness

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// reaches reports whether a TCP connection from inside from's namespace
// to to's Raft port is established within d (a few ms when the link is
// up; a cut link never connects, so a short d only saves time there).
func reaches(from, to *Node, d time.Duration) bool {
	cmd := exec.Command("ip", "netns", "exec", from.Netns, "timeout", fmt.Sprintf("%.1f", d.Seconds()),
		"bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", to.IP, netRaftPort))
	return cmd.Run() == nil
}

// clientReaches reports whether the test process gets an answer from n.
func clientReaches(c *Cluster, n *Node) bool {
	cl := http.Client{Timeout: time.Second, Transport: c.AnonymousClient().Transport}
	resp, err := cl.Get(n.URL() + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// requireLinks checks every ordered pair of nodes against want (keyed
// "n1>n2"; a pair not listed must connect) and that the clients reach
// every node.
func requireLinks(t *testing.T, c *Cluster, cut ...string) {
	t.Helper()
	isCut := map[string]bool{}
	for _, p := range cut {
		isCut[p] = true
	}
	for _, a := range c.Nodes {
		if !clientReaches(c, a) {
			t.Errorf("the test process cannot reach %s", a.ID)
		}
		for _, b := range c.Nodes {
			if a == b {
				continue
			}
			want := !isCut[a.ID+">"+b.ID]
			// Generous when a connection is expected, so that a slow
			// process start on a loaded machine is not taken for a cut.
			d := 3 * time.Second
			if !want {
				d = 500 * time.Millisecond
			}
			if got := reaches(a, b, d); got != want {
				t.Errorf("%s -> %s connects: %v, want %v", a.ID, b.ID, got, want)
			}
		}
	}
}

// TestNetworkFaults cuts real links between node namespaces and checks,
// with TCP connections from inside the namespaces, that exactly the cut
// pairs are separated, both ways, while the clients reach every node.
func TestNetworkFaults(t *testing.T) {
	c := Start(t, Options{Nodes: 3, Network: true})
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	requireLinks(t, c)

	c.Isolate(n1)
	requireLinks(t, c, "n1>n2", "n2>n1", "n1>n3", "n3>n1")

	// n3 is in no group: it bridges the two sides.
	c.Partition([]*Node{n1}, []*Node{n2})
	requireLinks(t, c, "n1>n2", "n2>n1")

	c.Heal()
	requireLinks(t, c)

	// Half the packets between n3 and its peers are lost: a connection
	// still gets through after retransmissions, but some attempts fail.
	c.Lossy(n3, 0.5)
	if !clientReaches(c, n3) {
		t.Error("the clients' packets to a lossy node are dropped")
	}
	failed := 0
	for range 8 {
		if !reaches(n3, n1, 500*time.Millisecond) {
			failed++
		}
	}
	if failed == 0 {
		t.Error("8 connections from n3 with 50% loss all got through within 0.5s")
	}
	c.Heal()
	requireLinks(t, c)
}

// leftovers lists the namespaces and root links of network idx.
func leftovers(idx int) []string {
	var out []string
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("%s%d-", netnsPrefix, idx)) {
			out = append(out, e.Name())
		}
	}
	if _, err := net.InterfaceByName(fmt.Sprintf("%s%d", linkPrefix, idx)); err == nil {
		out = append(out, fmt.Sprintf("%s%d", linkPrefix, idx))
	}
	return out
}

// TestNetworkCleanup checks that a cluster leaves no namespace, link or
// process behind.
func TestNetworkCleanup(t *testing.T) {
	var c *Cluster
	pids := map[int]string{} // pid -> the node's data folder
	// The subtest leaves its nodes running, one cut off, one lossy and
	// one paused: the harness's cleanup alone must remove everything (it
	// runs the same way after a failure).
	t.Run("cluster", func(t *testing.T) {
		c = Start(t, Options{Nodes: 3, Network: true})
		c.Isolate(c.Nodes[0])
		c.Lossy(c.Nodes[1], 0.1)
		c.Pause(c.Nodes[2])
		for _, n := range c.Nodes {
			pids[n.cmd.Process.Pid] = n.Dir
		}
	})
	if left := leftovers(c.net.idx); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	for pid, dir := range pids {
		// The same command line, not just the pid, which may be reused.
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmdline), dir) {
			t.Errorf("node process %d still exists: %q", pid, cmdline)
		}
	}
}

// TestNetworkLeftovers checks that the namespaces and processes of a test
// binary that died without cleaning up are removed, and that a network
// whose owner is alive is not touched.
func TestNetworkLeftovers(t *testing.T) {
	if err := NetworkSupport(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	claim := func() (int, *os.File) {
		for {
			idx := randIntn(maxNetworks)
			if lock, ok, err := tryLock(idx); err != nil {
				t.Fatal(err)
			} else if ok && len(leftovers(idx)) == 0 {
				return idx, lock
			} else if ok {
				lock.Close()
			}
		}
	}
	dead, deadLock := claim()
	alive, aliveLock := claim()
	defer aliveLock.Close()
	for _, idx := range []int{dead, alive} {
		nw := &network{idx: idx, subnet: [3]byte{10, byte(200 + idx/256), byte(idx % 256)},
			hub: fmt.Sprintf("%s%d-hub", netnsPrefix, idx), uplink: fmt.Sprintf("%s%d", linkPrefix, idx)}
		if err := nw.createHub(); err != nil {
			t.Fatal(err)
		}
		defer nw.teardown()
	}
	// A process left running in the dead network's namespace.
	ns := fmt.Sprintf("%s%d-n1", netnsPrefix, dead)
	if err := ip("netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("ip", "netns", "exec", ns, "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()
	deadLock.Close() // its owner "dies"

	if err := removeLeftovers(); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(dead); len(left) > 0 {
		t.Errorf("leftovers of a dead owner not removed: %v", left)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		sleeper.Process.Kill()
		t.Error("the process in a leftover namespace was not killed")
	}
	if left := leftovers(alive); len(left) != 2 {
		t.Errorf("the network of a live owner was touched: %v left of 2", left)
	}
}
