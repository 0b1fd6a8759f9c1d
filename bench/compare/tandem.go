package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/tandemdb/tandem/bench"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/pki"
)

// tandemMode is one way of running Tandem. Plain mode (--insecure: HTTP,
// plain TCP Raft, no authentication) is what is measured against etcd's
// plain HTTP, like for like. Secure mode is Tandem's default: HTTPS API,
// mutual TLS between nodes, every request authenticated (HTTP Basic, with
// the verified-password cache), so users see what security costs.
//
// Multiplexed mode is plain mode driven through the Go client's
// multiplexed connections (client.WithMultiplex, GET /v1/mux) instead of
// HTTP/1.1, as many connections per member as etcd's client has.
type tandemMode struct {
	name      string
	label     string
	secure    bool
	multiplex int // connections per member; 0: HTTP/1.1
}

var tandemModes = []tandemMode{
	{name: "plain", label: "Tandem (plain: HTTP, no auth)"},
	{name: "mux", label: "Tandem (plain, multiplexed: Go client over /v1/mux)", multiplex: etcdConnsPerMember},
	{name: "secure", label: "Tandem (secure: TLS + auth)", secure: true},
}

// etcdConnsPerMember is the connections etcd's client opens per member in
// this benchmark (bench/etcd's default).
const etcdConnsPerMember = 4

// how says how a Tandem mode is driven, for the report.
func (m tandemMode) how() string {
	if m.multiplex > 0 {
		return fmt.Sprintf("Go client over multiplexed WebSocket connections (/v1/mux, %d per member)", m.multiplex)
	}
	return "REST API (package client, HTTP/1.1, one connection per client)"
}

// withClientOptions is a cluster whose Tandem targets use extra client
// options (multiplexed mode).
type withClientOptions struct {
	cluster
	opts []client.Option
}

func (c withClientOptions) target(balanced bool, extra ...client.Option) (bench.Target, func(), error) {
	return c.cluster.target(balanced, append(slices.Clone(c.opts), extra...)...)
}

// benchAdminPassword is the admin password of the secure clusters this
// program starts.
const benchAdminPassword = "bench-admin-password"

// buildTandem builds ./cmd/tandem into dir, from the module in the working
// directory.
func buildTandem(dir string) (string, error) {
	bin := filepath.Join(dir, "tandem")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tandem")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compare: go build ./cmd/tandem (run from the repository root): %v\n%s", err, out)
	}
	return bin, nil
}

// startTandem starts a three-node cluster as scripts/bench-core.sh does:
// the first node bootstraps, the others join it (in secure mode with join
// tokens created through the first as its admin). Ports are httpPort+i and
// httpPort+1000+i.
func startTandem(ctx context.Context, o *options, mode tandemMode, dir string) (cluster, error) {
	c := &tandemCluster{hc: http.DefaultClient}
	scheme := "http"
	if mode.secure {
		scheme = "https"
		c.extra = []client.Option{client.WithBasicAuth("admin", benchAdminPassword)}
	}
	var addrs []string
	for i := range 3 {
		id := "n" + strconv.Itoa(i+1)
		httpAddr := "127.0.0.1:" + strconv.Itoa(o.tandemPort+i)
		raftAddr := "127.0.0.1:" + strconv.Itoa(o.tandemPort+1000+i)
		args := []string{"serve", "--id", id, "--data", filepath.Join(dir, id), "--http", httpAddr, "--raft", raftAddr, "--log-level", "warn"}
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", addrs[0])
		}
		args = append(args, o.tandemArgs...)
		var env []string
		if !mode.secure {
			args = append(args, "--insecure")
		} else if i == 0 {
			env = []string{"TANDEM_ADMIN_PASSWORD=" + benchAdminPassword}
		}
		u := scheme + "://" + httpAddr
		addrs = append(addrs, u)
		c.members = append(c.members, &member{
			name: id, bin: o.tandemBin, args: args, env: env, log: filepath.Join(dir, id+".log"),
			healthy: func(ctx context.Context) bool { return httpOKWith(ctx, c.hc, u+"/readyz") },
		})
	}
	c.addrs = addrs
	fail := func(err error) (cluster, error) {
		c.close()
		return nil, err
	}
	if err := c.members[0].start(); err != nil {
		return fail(err)
	}
	if mode.secure {
		if err := c.loadCA(ctx, filepath.Join(dir, "n1", pki.CACertFile)); err != nil {
			return fail(err)
		}
	}
	if err := c.waitHealthy(ctx, 30*time.Second); err != nil {
		return fail(err)
	}
	for _, m := range c.members[1:] {
		if mode.secure {
			tok, err := c.joinToken(ctx)
			if err != nil {
				return fail(err)
			}
			m.env = []string{"TANDEM_JOIN_TOKEN=" + tok}
		}
		if err := m.start(); err != nil {
			return fail(err)
		}
	}
	if err := c.waitHealthy(ctx, 30*time.Second); err != nil {
		return fail(err)
	}
	if err := c.waitMembers(ctx, 3, 30*time.Second); err != nil {
		return fail(err)
	}
	return c, nil
}

// tandemCluster is a Tandem cluster of processes this program started.
type tandemCluster struct {
	procCluster
	addrs []string
	// In secure mode: the cluster's CA, an HTTP client trusting it, and
	// the admin's credentials for the Go client.
	caFile string
	hc     *http.Client
	extra  []client.Option
}

func (c *tandemCluster) target(balanced bool, extra ...client.Option) (bench.Target, func(), error) {
	return tandemTarget(c.addrs, balanced, c.caFile, append(slices.Clone(c.extra), extra...)...)
}

func (c *tandemCluster) leader(ctx context.Context) (int, error) {
	return tandemLeader(ctx, c.addrs, c.caFile, c.extra...)
}

// loadCA waits for the bootstrapping node to write the cluster CA and
// makes the cluster's HTTP client trust it.
func (c *tandemCluster) loadCA(ctx context.Context, path string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pool, err := client.LoadCAFile(path)
		if err == nil {
			c.caFile = path
			c.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("compare: the first Tandem node wrote no CA: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// joinToken creates a join token through the first node, as its admin,
// retrying while the node is still creating the admin user.
func (c *tandemCluster) joinToken(ctx context.Context) (string, error) {
	cl, err := client.New(c.addrs[:1], append(tandemClientOptions(c.caFile), c.extra...)...)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		tok, err := cl.CreateJoinToken(ctx, time.Hour)
		if err == nil {
			return tok.Token, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("compare: create a join token: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitMembers waits until the cluster lists n nodes, each with its HTTP
// address registered.
func (c *tandemCluster) waitMembers(ctx context.Context, n int, d time.Duration) error {
	cl, err := client.New(c.addrs[:1], append(tandemClientOptions(c.caFile), c.extra...)...)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cl.Cluster(cctx)
		cancel()
		if err == nil && len(st.Nodes) == n {
			ok := true
			for _, m := range st.Nodes {
				ok = ok && m.HTTPAddr != ""
			}
			if ok {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("compare: the Tandem cluster did not reach %d members in %v", n, d)
}

// tandemClientOptions are the client options for a cluster whose CA is in
// caFile ("" for a plain cluster).
func tandemClientOptions(caFile string) []client.Option {
	// Credentials, for a secure cluster: TANDEM_USER/TANDEM_PASSWORD or
	// TANDEM_TOKEN from the environment.
	opts := []client.Option{client.WithTimeout(bench.DefaultTimeout), client.CredentialsFromEnv()}
	if caFile != "" {
		opts = append(opts, client.WithCAFile(caFile))
	}
	return opts
}

// tandemTarget returns the REST target for a cluster at addrs.
func tandemTarget(addrs []string, balanced bool, caFile string, extra ...client.Option) (bench.Target, func(), error) {
	c, err := client.New(addrs, append(tandemClientOptions(caFile), extra...)...)
	if err != nil {
		return nil, nil, err
	}
	return bench.NewTandemTarget(c, bench.DefaultTable, balanced), func() { c.Close() }, nil
}

// tandemLeader returns the index in addrs of the leader, as the first node
// that answers GET /v1/cluster names it (a public endpoint: the node-only
// /internal/v1/status needs a node certificate on a secure cluster).
func tandemLeader(ctx context.Context, addrs []string, caFile string, extra ...client.Option) (int, error) {
	for _, a := range addrs {
		c, err := client.New([]string{a}, append(tandemClientOptions(caFile), extra...)...)
		if err != nil {
			return -1, err
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.Cluster(cctx)
		cancel()
		if err != nil || st.Leader == "" {
			continue
		}
		for _, n := range st.Nodes {
			if n.ID != st.Leader {
				continue
			}
			for i, b := range addrs {
				if u, err := url.Parse(b); err == nil && u.Host == n.HTTPAddr {
					return i, nil
				}
			}
		}
	}
	return -1, fmt.Errorf("compare: no Tandem node names a leader among %v", addrs)
}

// externalTandem is a cluster someone else started (-tandem-addrs): it can
// be measured, with the server processes found by their listening ports,
// but not killed.
type externalTandem struct {
	addrs  []string
	caFile string // -tandem-ca, for a secure cluster
}

func (c *externalTandem) target(balanced bool, extra ...client.Option) (bench.Target, func(), error) {
	return tandemTarget(c.addrs, balanced, c.caFile, extra...)
}

func (c *externalTandem) pids() []int {
	p := make([]int, len(c.addrs))
	for i, a := range c.addrs {
		p[i] = pidOfURL(a)
	}
	return p
}

func (c *externalTandem) names() []string { return c.addrs }

func (c *externalTandem) leader(ctx context.Context) (int, error) {
	return tandemLeader(ctx, c.addrs, c.caFile)
}

func (c *externalTandem) kill(int) error                     { return errNoProcess }
func (c *externalTandem) restart(context.Context, int) error { return errNoProcess }
func (c *externalTandem) close()                             {}

// pidOfURL returns the process listening on the URL's port, or 0.
func pidOfURL(u string) int {
	pu, err := url.Parse(u)
	if err != nil {
		return 0
	}
	port, err := strconv.Atoi(pu.Port())
	if err != nil {
		return 0
	}
	pid, err := pidListening(port)
	if err != nil {
		return 0
	}
	return pid
}
