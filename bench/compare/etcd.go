package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tandemdb/tandem/bench"
	etcdtarget "github.com/tandemdb/tandem/bench/etcd"
	"github.com/tandemdb/tandem/client"
)

// startEtcd starts a three-member etcd cluster with its defaults (fsync
// on every commit): client ports etcdPort+i, peer ports etcdPort+10+i.
func startEtcd(ctx context.Context, o *options, dir string) (cluster, error) {
	c := &etcdCluster{}
	var initial []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i+1, o.etcdPort+10+i))
	}
	for i := range 3 {
		name := "m" + strconv.Itoa(i+1)
		cu := "http://127.0.0.1:" + strconv.Itoa(o.etcdPort+i)
		pu := "http://127.0.0.1:" + strconv.Itoa(o.etcdPort+10+i)
		c.endpoints = append(c.endpoints, cu)
		c.members = append(c.members, &member{
			name: name, bin: o.etcdBin, log: filepath.Join(dir, name+".log"),
			args: []string{
				"--name", name, "--data-dir", filepath.Join(dir, name),
				"--listen-client-urls", cu, "--advertise-client-urls", cu,
				"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
				"--initial-cluster", strings.Join(initial, ","),
				"--initial-cluster-state", "new", "--initial-cluster-token", "tandem-compare",
				"--logger", "zap", "--log-level", "warn",
			},
			healthy: func(ctx context.Context) bool { return httpOK(ctx, cu+"/health") },
		})
	}
	for _, m := range c.members {
		if err := m.start(); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := c.waitHealthy(ctx, 60*time.Second); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// etcdVersion returns the first line of `etcd --version`.
func etcdVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(strings.TrimPrefix(line, "etcd Version:"))
}

type etcdCluster struct {
	procCluster
	endpoints []string
}

func (c *etcdCluster) target(balanced bool, _ ...client.Option) (bench.Target, func(), error) {
	t, err := etcdtarget.New(c.endpoints, etcdtarget.Options{Balanced: balanced, Timeout: bench.DefaultTimeout})
	if err != nil {
		return nil, nil, err
	}
	return t, func() { t.Close() }, nil
}

// leader asks each running member for its status: the leader is the one
// whose own ID is the leader's.
func (c *etcdCluster) leader(ctx context.Context) (int, error) {
	for i, ep := range c.endpoints {
		if c.members[i].pid() == 0 {
			continue
		}
		cl, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cl.Status(sctx, ep)
		cancel()
		cl.Close()
		if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
			return i, nil
		}
	}
	return -1, fmt.Errorf("compare: no etcd member says it leads")
}
