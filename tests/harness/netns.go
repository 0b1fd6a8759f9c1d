package harness

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A network gives every node of one cluster its own network namespace and
// IP address, so that faults can cut real links between nodes while the
// test process (the clients) still reaches every node.
//
// Layout, for network number idx with subnet 10.A.B.0/24:
//
//	root namespace   tdmt<idx>: 10.A.B.1, the test process's link
//	                     |  (veth)
//	tandem<idx>-hub  bridge br0, ports up0 and n1, n2, ...
//	                     |  (veth per node)
//	tandem<idx>-n1   eth0: 10.A.B.2, the node's process, nftables rules
//
// The bridge lives in its own namespace because the root namespace's
// firewall may filter bridged traffic (Docker sets FORWARD to DROP and
// br_netfilter sends bridged packets through it). Partitions are nftables
// rules inside the node namespaces that drop packets to and from the
// peers' addresses, in both directions; the clients' address 10.A.B.1 is
// never blocked.
//
// The number idx is claimed with an flock on lockDir/<idx>.lock held for
// the life of the test process, so parallel test binaries never share a
// subnet or a name, and leftovers of a crashed run (namespaces and links
// whose lock no live process holds) are recognised and removed.
type network struct {
	idx    int
	subnet [3]byte // 10.A.B
	hub    string
	uplink string
	lock   *os.File

	mu      sync.Mutex
	nodes   []*Node             // nodes attached, in attach order
	blocked map[[2]string]bool  // node ID pairs (smaller first) that cannot talk
	loss    map[string]int      // node ID -> packets dropped per 1000
	rules   map[string][]string // node ID -> the peer IPs its rules drop now
}

const (
	// netnsPrefix starts every namespace the harness creates; linkPrefix
	// every link it creates in the root namespace (interface names have
	// at most 15 characters).
	netnsPrefix = "tandem"
	linkPrefix  = "tdmt"
	lockDir     = "/run/tandem-netns"
	// maxNetworks bounds idx: subnets 10.200.0.0/24 to 10.249.255.0/24.
	maxNetworks = 50 * 256
	// Every node listens on its own address, so the ports are fixed.
	netHTTPPort = 7001
	netRaftPort = 8001
)

var leftoversOnce sync.Once

// NetworkSupport reports why this machine cannot run clusters in network
// namespaces, or nil if it seems able to: it must be root and have ip
// (iproute2) and nft (nftables). Creating the namespaces can still fail
// (a container without CAP_SYS_ADMIN, say); Start then fails the test
// with ip's own message.
func NetworkSupport() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("root (running as uid %d)", os.Geteuid()))
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			pkg := map[string]string{"ip": "iproute2", "nft": "nftables"}[tool]
			missing = append(missing, fmt.Sprintf("the %s command (Debian package %s)", tool, pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("network namespaces need %s", strings.Join(missing, ", "))
	}
	return nil
}

// newNetwork claims a free network number, creates its hub and uplink,
// and removes leftovers of earlier crashed runs first.
func newNetwork(t testing.TB) (*network, error) {
	if err := NetworkSupport(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, err
	}
	leftoversOnce.Do(func() {
		if err := removeLeftovers(); err != nil {
			t.Logf("harness: removing leftovers of earlier runs: %v", err)
		}
	})
	taken := localSubnets()
	for attempt := 0; attempt < 100; attempt++ {
		idx := randIntn(maxNetworks)
		nw := &network{
			idx:     idx,
			subnet:  [3]byte{10, byte(200 + idx/256), byte(idx % 256)},
			hub:     fmt.Sprintf("%s%d-hub", netnsPrefix, idx),
			uplink:  fmt.Sprintf("%s%d", linkPrefix, idx),
			blocked: map[[2]string]bool{},
			loss:    map[string]int{},
			rules:   map[string][]string{},
		}
		if taken[nw.subnet] {
			continue
		}
		lock, ok, err := tryLock(idx)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // another test process owns it
		}
		nw.lock = lock
		// Anything left under this number is from a dead process.
		nw.teardown()
		if err := nw.createHub(); err != nil {
			nw.teardown()
			nw.lock.Close()
			return nil, fmt.Errorf("creating the test network: %w", err)
		}
		return nw, nil
	}
	return nil, errors.New("no free test network number after 100 attempts")
}

// tryLock takes the lock of network idx without waiting.
func tryLock(idx int) (*os.File, bool, error) {
	f, err := os.OpenFile(filepath.Join(lockDir, strconv.Itoa(idx)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	// Lock files are never removed: removing one while another process
	// opens it would let two processes hold "the" lock.
	return f, true, nil
}

// localSubnets lists the /24s of this machine's IPv4 addresses, which a
// test network must not shadow.
func localSubnets() map[[3]byte]bool {
	out := map[[3]byte]bool{}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip4 := ipn.IP.To4(); ip4 != nil {
				out[[3]byte{ip4[0], ip4[1], ip4[2]}] = true
			}
		}
	}
	return out
}

var (
	leftoverNetns = regexp.MustCompile(`^` + netnsPrefix + `([0-9]+)-`)
	leftoverLink  = regexp.MustCompile(`^` + linkPrefix + `([0-9]+)$`)
)

// removeLeftovers tears down every test network whose owner died without
// cleaning up (a crashed or killed test binary).
func removeLeftovers() error {
	idxs := map[int]bool{}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if m := leftoverNetns.FindStringSubmatch(e.Name()); m != nil {
				i, _ := strconv.Atoi(m[1])
				idxs[i] = true
			}
		}
	}
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if m := leftoverLink.FindStringSubmatch(ifc.Name); m != nil {
			i, _ := strconv.Atoi(m[1])
			idxs[i] = true
		}
	}
	var errs []error
	for idx := range idxs {
		lock, ok, err := tryLock(idx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue // alive: another test process's network
		}
		nw := &network{idx: idx, hub: fmt.Sprintf("%s%d-hub", netnsPrefix, idx), uplink: fmt.Sprintf("%s%d", linkPrefix, idx)}
		errs = append(errs, nw.teardown())
		lock.Close()
	}
	return errors.Join(errs...)
}

// ip runs the ip command and returns its error with its output.
func ip(args ...string) error { return run("ip", nil, args...) }

func run(name string, stdin []byte, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (nw *network) addr(host int) string {
	return fmt.Sprintf("%d.%d.%d.%d", nw.subnet[0], nw.subnet[1], nw.subnet[2], host)
}

func (nw *network) createHub() error {
	steps := [][]string{
		{"netns", "add", nw.hub},
		{"-n", nw.hub, "link", "set", "lo", "up"},
		{"-n", nw.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", nw.hub, "link", "set", "br0", "up"},
		{"link", "add", nw.uplink, "type", "veth", "peer", "name", "up0", "netns", nw.hub},
		{"-n", nw.hub, "link", "set", "up0", "master", "br0", "up"},
		{"addr", "add", nw.addr(1) + "/24", "dev", nw.uplink},
		{"link", "set", nw.uplink, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// nodeNetns is the namespace of the node with the given ID.
func (nw *network) nodeNetns(id string) string {
	return fmt.Sprintf("%s%d-%s", netnsPrefix, nw.idx, id)
}

// attach creates a namespace for n with the next free address, links it
// to the hub, and installs the (empty) partition rules.
func (nw *network) attach(n *Node) error {
	nw.mu.Lock()
	host := len(nw.nodes) + 2
	nw.mu.Unlock()
	if host > 254 {
		return fmt.Errorf("test network %d is full", nw.idx)
	}
	ns := nw.nodeNetns(n.ID)
	port := n.ID // the hub side of the node's link
	steps := [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", nw.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", nw.hub, "link", "set", port, "master", "br0", "up"},
		{"-n", ns, "addr", "add", nw.addr(host) + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	// The rules drop packets to and from the addresses in @blocked; a
	// partition only changes the set's elements.
	rules := `table inet tandem {
	set blocked { type ipv4_addr; }
	chain in { type filter hook input priority 0; policy accept; ip saddr @blocked drop; }
	chain out { type filter hook output priority 0; policy accept; ip daddr @blocked drop; }
	chain lossin { type filter hook input priority 1; policy accept; }
	chain lossout { type filter hook output priority 1; policy accept; }
}
`
	if err := run("ip", []byte(rules), "netns", "exec", ns, "nft", "-f", "-"); err != nil {
		return err
	}
	n.Netns, n.IP = ns, nw.addr(host)
	nw.mu.Lock()
	nw.nodes = append(nw.nodes, n)
	nw.mu.Unlock()
	return nil
}

// setBlocked replaces the set of cut node pairs and rewrites the rules of
// every node whose blocked peers changed.
func (nw *network) setBlocked(blocked map[[2]string]bool) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.blocked = blocked
	var errs []error
	for _, n := range nw.nodes {
		var peers []string
		for _, o := range nw.nodes {
			if o != n && blocked[pairOf(n.ID, o.ID)] {
				peers = append(peers, o.IP)
			}
		}
		if slices.Equal(peers, nw.rules[n.ID]) {
			continue
		}
		script := "flush set inet tandem blocked\n"
		if len(peers) > 0 {
			script += "add element inet tandem blocked { " + strings.Join(peers, ", ") + " }\n"
		}
		if err := run("ip", []byte(script), "netns", "exec", n.Netns, "nft", "-f", "-"); err != nil {
			errs = append(errs, err)
			continue
		}
		nw.rules[n.ID] = peers
	}
	return errors.Join(errs...)
}

// setLoss makes n's namespace drop the given fraction (0 to 1, in
// thousandths) of the packets it exchanges with other nodes, each way;
// packets to and from the clients are spared. tc netem would also delay
// packets, but kernels without sch_netem (this project's CI machines)
// cannot, so loss is done with nftables' random numbers.
func (nw *network) setLoss(n *Node, loss float64) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	perMille := int(loss*1000 + 0.5)
	if nw.loss[n.ID] == perMille {
		return nil
	}
	script := "flush chain inet tandem lossin\nflush chain inet tandem lossout\n"
	if perMille > 0 {
		script += fmt.Sprintf("add rule inet tandem lossin ip saddr != %s numgen random mod 1000 < %d drop\n", nw.addr(1), perMille)
		script += fmt.Sprintf("add rule inet tandem lossout ip daddr != %s numgen random mod 1000 < %d drop\n", nw.addr(1), perMille)
	}
	if err := run("ip", []byte(script), "netns", "exec", n.Netns, "nft", "-f", "-"); err != nil {
		return err
	}
	nw.loss[n.ID] = perMille
	return nil
}

func pairOf(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// teardown kills every process left in the network's namespaces and
// deletes them and the uplink. It is safe on a half-built or already
// removed network.
func (nw *network) teardown() error {
	var names []string
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		prefix := fmt.Sprintf("%s%d-", netnsPrefix, nw.idx)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				names = append(names, e.Name())
			}
		}
	}
	var errs []error
	for _, ns := range names {
		killNetnsProcesses(ns)
	}
	// The uplink is the only name in the root namespace. Deleting it
	// removes both ends at once, whereas the kernel frees a deleted
	// namespace, and the links inside it, asynchronously: the uplink
	// would linger for a moment after its hub namespace is deleted.
	if _, err := net.InterfaceByName(nw.uplink); err == nil {
		if err := ip("link", "del", nw.uplink); err != nil {
			if _, gone := net.InterfaceByName(nw.uplink); gone == nil {
				errs = append(errs, err)
			}
		}
	}
	for _, ns := range names {
		if err := ip("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killNetnsProcesses SIGKILLs every process inside a namespace (only
// tandem nodes the harness started there) and waits briefly for them to go.
func killNetnsProcesses(ns string) {
	for attempt := 0; attempt < 50; attempt++ {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if err != nil {
			return
		}
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGCONT)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// close tears the network down and releases its number.
func (nw *network) close() error {
	err := nw.teardown()
	nw.lock.Close()
	return err
}
