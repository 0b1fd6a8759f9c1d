package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandemdb/tandem/bench"
	"github.com/tandemdb/tandem/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// options are the flags, with defaults filled in.
type options struct {
	out             string
	smoke           bool
	systems         map[string]bool
	clients         []int
	warmup          time.Duration
	duration        time.Duration
	keys            int
	valueSize       int
	trials          int
	failoverClients int
	failoverWindow  time.Duration
	data            string
	tandemBin       string
	tandemArgs      []string
	etcdBin         string
	tandemPort      int
	etcdPort        int
	tandemAddrs     []string
	modes           map[string]bool // Tandem modes to measure (-tandem-modes)
	tandemCA        string
	logf            func(format string, args ...any)

	// startTandem, if set, provides the Tandem cluster instead of starting
	// one (tests hand in a cluster of tests/harness).
	startTandem func(ctx context.Context) (cluster, error)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: go run ./bench/compare [flags]

Starts a 3-node Tandem cluster and a 3-member etcd cluster on loopback, one
after the other, puts the same closed-loop loads on each, and writes
results.json, report.md and PNG charts to -out. See bench/compare/README.md.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.out, "out", "bench-compare-out", "directory for results.json, report.md and the charts")
	fs.BoolVar(&o.smoke, "smoke", false, "CI mode: Tandem only, C=16, short steps, one failover trial (overrides -systems, -clients, -duration, -warmup, -keys, -trials)")
	systems := fs.String("systems", "tandem,etcd", "stores to measure: tandem, etcd")
	clients := fs.String("clients", "1,16,64,256", "concurrent clients of each step, comma-separated")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured run before each step")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured length of each step")
	fs.IntVar(&o.keys, "keys", 100000, "size of the key space")
	fs.IntVar(&o.valueSize, "value-size", 256, "bytes per value")
	fs.IntVar(&o.trials, "failover-trials", 5, "leader kills per store (0: no failover)")
	fs.IntVar(&o.failoverClients, "failover-clients", 64, "concurrent writers during failover")
	fs.DurationVar(&o.failoverWindow, "failover-window", 8*time.Second, "measured length of a failover trial; the kill is one second in")
	fs.StringVar(&o.data, "data", "", "directory for the servers' data (default: a new one in $TMPDIR, removed at the end)")
	fs.StringVar(&o.tandemBin, "tandem-bin", "", "tandem binary (default: go build ./cmd/tandem)")
	tandemArgs := fs.String("tandem-args", "", "extra flags for every tandem serve, space-separated (e.g. \"--heartbeat-timeout 700ms\")")
	fs.StringVar(&o.etcdBin, "etcd-bin", "etcd", "etcd 3.4 server binary")
	fs.IntVar(&o.tandemPort, "tandem-port", 17701, "first Tandem HTTP port (Raft: +1000)")
	fs.IntVar(&o.etcdPort, "etcd-port", 23790, "first etcd client port (peers: +10)")
	modes := fs.String("tandem-modes", "plain,mux,secure", "Tandem modes to measure: plain (--insecure, like for like with etcd), mux (plain, through the Go client's multiplexed connections), secure (TLS + authentication, the default)")
	addrs := fs.String("tandem-addrs", "", "measure this running Tandem cluster (comma-separated base URLs) instead of starting one; no failover")
	fs.StringVar(&o.tandemCA, "tandem-ca", "", "with -tandem-addrs: the cluster's CA certificate (PEM), for a secure (https) cluster")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.tandemArgs = strings.Fields(*tandemArgs)
	o.systems = make(map[string]bool)
	for _, s := range strings.Split(*systems, ",") {
		switch s = strings.TrimSpace(s); s {
		case "tandem", "etcd":
			o.systems[s] = true
		case "":
		default:
			return nil, fmt.Errorf("unknown system %q (want tandem or etcd)", s)
		}
	}
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad -clients %q", *clients)
		}
		o.clients = append(o.clients, n)
	}
	if *addrs != "" {
		o.tandemAddrs = strings.Split(*addrs, ",")
	}
	o.modes = map[string]bool{}
	for _, m := range strings.Split(*modes, ",") {
		o.modes[strings.TrimSpace(m)] = true
	}
	if o.smoke {
		o.modes = map[string]bool{"plain": true, "mux": true}
		o.systems = map[string]bool{"tandem": true}
		o.clients = []int{16}
		o.warmup, o.duration = 300*time.Millisecond, time.Second
		o.keys, o.trials, o.failoverClients = 2000, 1, 16
		o.failoverWindow = 5 * time.Second
	}
	if len(o.tandemAddrs) > 0 {
		o.trials = 0 // not our processes to kill
		// One cluster someone else started: secure if they gave its CA.
		o.modes = map[string]bool{"plain": o.tandemCA == "", "secure": o.tandemCA != ""}
	}
	if len(o.systems) == 0 {
		return nil, errors.New("no systems to measure")
	}
	return o, nil
}

// run is the program; startTandem, if not nil, supplies the Tandem cluster.
func run(ctx context.Context, args []string, stderr io.Writer, startTandem func(context.Context) (cluster, error)) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	o.startTandem = startTandem
	o.logf = func(f string, args ...any) {
		fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+f+"\n", args...)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if o.data == "" {
		d, err := os.MkdirTemp("", "tandem-compare-")
		if err != nil {
			return err
		}
		o.data = d
		defer func() {
			if err == nil {
				os.RemoveAll(d)
			} else {
				o.logf("kept the servers' data and logs in %s", d)
			}
		}()
	}
	res := &Results{
		Started: time.Now().UTC(), Smoke: o.smoke, Machine: machine(o.data),
		Settings: Settings{
			Clients: o.clients, Warmup: o.warmup, Duration: o.duration, Keys: o.keys, ValueSize: o.valueSize,
			FailoverClients: o.failoverClients, FailoverTrials: o.trials, FailoverWindow: o.failoverWindow,
		},
	}
	for _, w := range bench.Workloads() {
		res.Workloads = append(res.Workloads, string(w))
	}

	if o.systems["tandem"] {
		for _, mode := range tandemModes {
			if !o.modes[mode.name] {
				res.NotRun = append(res.NotRun, NotRun{Label: mode.label, Reason: "not selected (-tandem-modes, or -smoke which measures plain and multiplexed modes only)"})
				continue
			}
			sys := System{Key: "tandem-" + mode.name, Label: mode.label, Version: tandemVersion(), LocalRead: "local"}
			if err := measure(ctx, o, &sys, func(ctx context.Context) (cluster, error) {
				c, err := o.tandemCluster(ctx, mode)
				if err != nil || mode.multiplex == 0 {
					return c, err
				}
				return withClientOptions{c, []client.Option{client.WithMultiplex(mode.multiplex)}}, nil
			}); err != nil {
				return err
			}
			res.Systems = append(res.Systems, sys)
		}
	}
	if o.systems["etcd"] {
		bin, err := exec.LookPath(o.etcdBin)
		if err != nil {
			return fmt.Errorf("etcd not found (scripts/bench-compare.sh installs Debian's etcd-server): %w", err)
		}
		o.etcdBin = bin
		v := etcdVersion(bin)
		sys := System{Key: "etcd", Label: "etcd " + v, Version: v, LocalRead: "serializable"}
		if err := measure(ctx, o, &sys, func(ctx context.Context) (cluster, error) {
			dir := filepath.Join(o.data, "etcd")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			return startEtcd(ctx, o, dir)
		}); err != nil {
			return err
		}
		res.Systems = append(res.Systems, sys)
	}
	res.Finished = time.Now().UTC()
	return writeOutputs(o.out, res)
}

// tandemCluster returns the cluster to measure Tandem in mode.
func (o *options) tandemCluster(ctx context.Context, mode tandemMode) (cluster, error) {
	switch {
	case o.startTandem != nil:
		return o.startTandem(ctx)
	case len(o.tandemAddrs) > 0:
		return &externalTandem{addrs: o.tandemAddrs, caFile: o.tandemCA}, nil
	}
	if o.tandemBin == "" {
		bin, err := buildTandem(o.data)
		if err != nil {
			return nil, err
		}
		o.tandemBin = bin
	}
	dir := filepath.Join(o.data, "tandem-"+mode.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return startTandem(ctx, o, mode, dir)
}

// measure starts a cluster, measures it, and stops it.
func measure(ctx context.Context, o *options, sys *System, start func(context.Context) (cluster, error)) error {
	o.logf("%s: starting the cluster", sys.Label)
	c, err := start(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	sys.LoadAvg[0] = loadAvg()
	defer func() { sys.LoadAvg[1] = loadAvg() }()
	return measureSystem(ctx, o, c, sys)
}

func writeOutputs(dir string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	charts, err := writeCharts(dir, res)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(report(res, charts)), 0o644)
}

// machine describes this computer.
func machine(dataDir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), DataDir: dataDir}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.MemoryGiB = int((kb + 1<<19) >> 20)
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// tandemVersion is the commit the program was built from, if known.
func tandemVersion() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
