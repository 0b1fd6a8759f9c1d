package harness

import (
	"strings"
)

// Partition cuts the network between groups of nodes: a node of one group
// exchanges no packet, in either direction, with a node of another group.
// A node in no group keeps every link (with two groups, it bridges them:
// a non-transitive partition). Clients keep reaching every node. Each call
// replaces the previous partition; Heal restores every link. It needs
// Options.Network.
//
// Open TCP connections across the cut are not reset: their packets are
// dropped, as a real partition would, and they resume after Heal if they
// have not timed out.
func (c *Cluster) Partition(groups ...[]*Node) {
	c.t.Helper()
	c.requireNetwork("Partition")
	blocked := map[[2]string]bool{}
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					if a != b {
						blocked[pairOf(a.ID, b.ID)] = true
					}
				}
			}
		}
	}
	if err := c.net.setBlocked(blocked); err != nil {
		c.t.Fatalf("harness: partition %s: %v", describeGroups(groups), err)
	}
}

// Isolate cuts n off from every other node of the cluster.
func (c *Cluster) Isolate(n *Node) {
	c.t.Helper()
	var others []*Node
	for _, o := range c.Nodes {
		if o != n {
			others = append(others, o)
		}
	}
	c.Partition([]*Node{n}, others)
}

// Heal restores every link cut by Partition or Isolate or made lossy by
// Lossy.
func (c *Cluster) Heal() {
	c.t.Helper()
	c.requireNetwork("Heal")
	err := c.net.setBlocked(map[[2]string]bool{})
	for _, n := range c.Nodes {
		if e := c.net.setLoss(n, 0); e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		c.t.Fatalf("harness: heal: %v", err)
	}
}

// Lossy makes n drop the given fraction (0 to 1) of the packets it
// exchanges with the other nodes, in each direction: a flaky link that
// loses heartbeats and forces TCP retransmissions. Packets to and from
// the clients are not dropped. Lossy(n, 0) restores the link.
func (c *Cluster) Lossy(n *Node, loss float64) {
	c.t.Helper()
	c.requireNetwork("Lossy")
	if err := c.net.setLoss(n, loss); err != nil {
		c.t.Fatalf("harness: lossy %s: %v", n.ID, err)
	}
}

// Cut reports whether a and b are separated by the current partition.
func (c *Cluster) Cut(a, b *Node) bool {
	if c.net == nil {
		return false
	}
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	return c.net.blocked[pairOf(a.ID, b.ID)]
}

func (c *Cluster) requireNetwork(op string) {
	c.t.Helper()
	if c.net == nil {
		c.t.Fatalf("harness: %s needs a cluster started with Options.Network", op)
	}
}

func describeGroups(groups [][]*Node) string {
	var gs []string
	for _, g := range groups {
		var ids []string
		for _, n := range g {
			ids = append(ids, n.ID)
		}
		gs = append(gs, strings.Join(ids, ","))
	}
	return strings.Join(gs, " | ")
}
