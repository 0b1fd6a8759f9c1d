package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// members returns the IDs and addresses a node lists in GET /v1/cluster.
func members(ctx context.Context, cl *client.Client) ([]string, error) {
	st, err := cl.Cluster(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range st.Nodes {
		out = append(out, n.ID+"="+n.HTTPAddr+"/"+n.RaftAddr)
	}
	slices.Sort(out)
	return out, nil
}

// TestMembership removes a follower through another follower, checks that
// every remaining node stops listing it and that writes go on, and that
// joining an existing member again changes nothing.
func TestMembership(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3})
	cl := clusterClient(t, c)
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{Name: "kv"})

	leader := c.Leader(10 * time.Second)
	fs := followers(c, leader)
	gone, via := fs[0], fs[1]
	viaCl := cl.Node(nodeIndex(t, c, via))

	// Joining an existing member again, with the same addresses, through
	// any node: 200 and no change.
	before, err := members(ctx, cl.Node(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 3 {
		t.Fatalf("members before: %v", before)
	}
	// Only a node may ask to join, as itself: the client presents the
	// node certificate of the node it joins (tls_test.go covers refusals).
	for i, n := range c.Nodes {
		for _, target := range []*harness.Node{leader, via} {
			as := clusterClient(t, c, c.NodeClientOptions(target.ID)...)
			if err := as.Node(i).Join(ctx, tandem.NodeInfo{ID: target.ID, HTTPAddr: target.HTTP, RaftAddr: target.Raft}); err != nil {
				t.Fatalf("join %s again through %s: %v", target.ID, n.ID, err)
			}
		}
	}
	// Another ID on a member's addresses is refused.
	impostor := clusterClient(t, c, c.NodeClientOptions("impostor")...)
	err = impostor.Node(nodeIndex(t, c, via)).Join(ctx, tandem.NodeInfo{ID: "impostor", HTTPAddr: via.HTTP, RaftAddr: via.Raft})
	wantAPIError(t, err, http.StatusConflict)
	for i := range c.Nodes {
		after, err := members(ctx, cl.Node(i))
		if err != nil || !slices.Equal(after, before) {
			t.Fatalf("%s lists %v after the repeated joins (%v); want %v", c.Nodes[i].ID, after, err, before)
		}
	}

	// Remove a follower through the other follower.
	if err := viaCl.RemoveNode(ctx, gone.ID); err != nil {
		t.Fatalf("remove %s through %s: %v", gone.ID, via.ID, err)
	}
	remaining := []*harness.Node{leader, via}
	waitFor(t, 10*time.Second, "remaining nodes stop listing "+gone.ID, func() string {
		for _, n := range remaining {
			ms, err := members(ctx, cl.Node(nodeIndex(t, c, n)))
			if err != nil {
				return err.Error()
			}
			if len(ms) != 2 || slices.ContainsFunc(ms, func(m string) bool { return strings.HasPrefix(m, gone.ID+"=") }) {
				return fmt.Sprintf("%s lists %v", n.ID, ms)
			}
		}
		return ""
	})
	// The removed node is still running, with --join on its command line:
	// it must not add itself back.
	time.Sleep(2 * time.Second)
	for _, n := range remaining {
		ms, err := members(ctx, cl.Node(nodeIndex(t, c, n)))
		if err != nil || len(ms) != 2 {
			t.Fatalf("%s lists %v (%v) 2s after the removal; want the 2 remaining nodes (did %s join again?)", n.ID, ms, err, gone.ID)
		}
	}
	// It crashes (its store, which keeps no WAL, may come back empty).
	c.Kill(gone)

	// Writes still work on both remaining nodes, and reach the other.
	for _, n := range remaining {
		res, err := cl.Node(nodeIndex(t, c, n)).Put(ctx, "kv", "after-remove-"+n.ID, map[string]any{"v": 1})
		if err != nil {
			t.Fatalf("write through %s after the removal: %v", n.ID, err)
		}
		for _, m := range remaining {
			if _, err := cl.Node(nodeIndex(t, c, m)).Get(ctx, "kv", res.Key, client.MinIndex(res.Index)); err != nil {
				t.Errorf("%s reading %s: %v", m.ID, res.Key, err)
			}
		}
	}
	// Nor when it restarts on its data, after a crash or a clean stop.
	for _, how := range []string{"a crash", "a clean stop"} {
		c.Start(gone)
		time.Sleep(1500 * time.Millisecond)
		for _, n := range remaining {
			ms, err := members(ctx, cl.Node(nodeIndex(t, c, n)))
			if err != nil || len(ms) != 2 {
				t.Fatalf("%s lists %v (%v) after the removed node restarted after %s; want the 2 remaining nodes", n.ID, ms, err, how)
			}
		}
		c.Stop(gone)
	}
	// Removing it again, or a node that never existed: 404.
	wantAPIError(t, viaCl.RemoveNode(ctx, gone.ID), http.StatusNotFound)
	wantAPIError(t, viaCl.RemoveNode(ctx, "n99"), http.StatusNotFound)
	c.WaitConverged(10 * time.Second)
	requireSameOnAllNodes(t, c, cl)
	for _, n := range remaining {
		ms, err := members(ctx, cl.Node(nodeIndex(t, c, n)))
		if err != nil || len(ms) != 2 {
			t.Errorf("%s lists %v (%v) at the end; want the 2 remaining nodes", n.ID, ms, err)
		}
	}
}

// TestReadiness checks /healthz and /readyz: both 200 on a healthy
// cluster; on a node whose peers are all gone, /readyz turns 503 within a
// few seconds while /healthz stays 200, and readiness comes back with a
// majority.
func TestReadiness(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3})
	ctx := t.Context()
	for _, n := range c.Nodes {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, err := httpStatus(ctx, c.HTTPClient(), http.MethodGet, n.URL()+path); err != nil || code != http.StatusOK {
				t.Fatalf("%s %s = %d, %v; want 200", n.ID, path, code, err)
			}
		}
	}

	// Isolate the leader, the harder case: it must notice that it no
	// longer leads.
	alone := c.Leader(10 * time.Second)
	for _, n := range followers(c, alone) {
		c.Kill(n)
	}
	start := time.Now()
	waitFor(t, 10*time.Second, "readyz on the isolated node turns 503", func() string {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		code, err := httpStatus(rctx, c.HTTPClient(), http.MethodGet, alone.URL()+"/readyz")
		if code == http.StatusServiceUnavailable {
			return ""
		}
		return fmt.Sprintf("status %d, %v", code, err)
	})
	t.Logf("readyz turned 503 %v after the peers were killed", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("readyz took %v to notice the isolation; want a few seconds", d)
	}
	// The 503 is a JSON error; healthz still answers.
	cl := clusterClient(t, c)
	aloneCl := cl.Node(nodeIndex(t, c, alone))
	err := aloneCl.Ready(ctx)
	if ce := wantAPIError(t, err, http.StatusServiceUnavailable); ce.Code != tandem.CodeUnavailable {
		t.Errorf("readyz error code %q, want unavailable", ce.Code)
	}
	if err := aloneCl.Health(ctx); err != nil {
		t.Errorf("healthz on the isolated node: %v", err)
	}
	// A write cannot commit; it fails as unavailable or timeout, never 500.
	_, err = aloneCl.Put(ctx, "nope", "k", map[string]any{"v": 1}, client.CommitTimeout(time.Second))
	var ce *client.Error
	if !errors.As(err, &ce) || (ce.Status != http.StatusServiceUnavailable && ce.Status != http.StatusGatewayTimeout) {
		t.Errorf("write on the isolated node: %v; want 503 or 504", err)
	}

	// One peer back makes a majority: ready again.
	for _, n := range c.Nodes {
		if !n.Running() {
			c.Start(n)
			break
		}
	}
	c.WaitReady(alone, 30*time.Second)
}
