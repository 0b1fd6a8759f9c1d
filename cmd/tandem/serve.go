package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemdb/tandem/consensus"
	"github.com/tandemdb/tandem/contract"
	"github.com/tandemdb/tandem/node"
)

func newServeCmd() *cobra.Command {
	var (
		opts     node.Options
		join     []string
		logLevel string
		security securityFlags // serve_security.go
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run one Tandem node",
		Long: `Run one Tandem node.

The first node of a new cluster is started with --bootstrap: it creates the
cluster's certificate authority (ca.crt, ca.key) and its own certificate in its
data folder. Every other node is started with --join pointing at the address of
any live member and --token with a join token from ` + "`tandem token create`" + `: it
checks the cluster's CA against the token, receives its certificate and joins.
Node-to-node traffic is mutual TLS; the API serves HTTPS (docs/security.md).
A node that has already joined keeps its membership and certificates in its data
folder: on restart, --bootstrap, --join and --token are harmless.

Clients authenticate: --bootstrap creates the admin user (password from
--admin-password or TANDEM_ADMIN_PASSWORD, or generated and printed once).

--insecure turns all of this off (plain HTTP and TCP, no certificates, no
authentication): for local development only.`,
		Example: `  tandem serve --id n1 --data ./n1 --http 127.0.0.1:7001 --raft 127.0.0.1:8001 --bootstrap
  TANDEM_USER=admin TANDEM_PASSWORD=... tandem token create --addr https://127.0.0.1:7001 --ca-file ./n1/ca.crt
  tandem serve --id n2 --data ./n2 --http 127.0.0.1:7002 --raft 127.0.0.1:8002 --join https://127.0.0.1:7001 --token TJT1...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			for _, j := range join {
				for _, a := range strings.Split(j, ",") {
					if a = strings.TrimSpace(a); a != "" {
						opts.Join = append(opts.Join, a)
					}
				}
			}
			if opts.JoinToken == "" {
				opts.JoinToken = os.Getenv("TANDEM_JOIN_TOKEN")
			}
			if opts.Insecure && (opts.JoinToken != "" || opts.TLSCertFile != "" || opts.TLSKeyFile != "") {
				return fmt.Errorf("--insecure runs without TLS: --token, --tls-cert and --tls-key do not apply")
			}
			if opts.Bootstrap && len(opts.Join) > 0 {
				return fmt.Errorf("use --bootstrap for the first node or --join for the others, not both")
			}
			if err := security.apply(&opts, cmd.ErrOrStderr(), opts.Logger); err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				// A node's live heap is small and its garbage is mostly
				// per-request; collecting less often measured ~10% more
				// write throughput (docs/benchmarks.md). GOGC overrides.
				debug.SetGCPercent(400)
			}
			n, err := node.Open(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tandem node %s: %s raft %s data %s\n", opts.ID, n.URL(), opts.RaftAddr, opts.DataDir)
			if opts.Insecure {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING: --insecure: no TLS, no certificates, no authentication; for local development only")
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			<-sig
			opts.Logger.Info("shutting down")
			return n.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ID, "id", "", "node ID, stable across restarts (required)")
	f.StringVar(&opts.DataDir, "data", "", "data folder (required)")
	f.StringVar(&opts.HTTPAddr, "http", "127.0.0.1:7001", "HTTP API listen address")
	f.StringVar(&opts.AdvertiseHTTP, "advertise-http", "", "HTTP address other nodes use to reach this one (default: --http)")
	f.StringVar(&opts.RaftAddr, "raft", "127.0.0.1:8001", "Raft listen and advertise address")
	f.BoolVar(&opts.Bootstrap, "bootstrap", false, "form a new cluster of one if the data folder is empty")
	f.StringArrayVar(&join, "join", nil, "HTTP address of a live member to join through (repeatable or comma-separated)")
	f.StringVar(&opts.LogStore, "log-store", "wal", "Raft log store: wal (hashicorp/raft-wal) or bolt (raft-boltdb)")
	f.DurationVar(&opts.HeartbeatTimeout, "heartbeat-timeout", consensus.DefaultHeartbeatTimeout, "Raft heartbeat timeout")
	f.DurationVar(&opts.ElectionTimeout, "election-timeout", consensus.DefaultElectionTimeout, "Raft election timeout")
	f.Uint64Var(&opts.SnapshotThreshold, "snapshot-threshold", 8192, "log entries between snapshots")
	f.DurationVar(&opts.SnapshotInterval, "snapshot-interval", 30*time.Second, "how often to check whether a snapshot is due")
	f.Uint64Var(&opts.TrailingLogs, "trailing-logs", 10240, "log entries kept behind a snapshot for slow followers")
	f.Int64Var(&opts.CacheSize, "cache-size", 256<<20, "storage block cache in bytes")
	f.Int64Var(&opts.MaxBody, "max-body", 4<<20, "largest accepted request body in bytes")
	f.BoolVar(&opts.Pprof, "pprof", false, "serve Go's profiler at /debug/pprof/")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	security.register(cmd)
	// Transport security (docs/security.md).
	f.StringVar(&opts.JoinToken, "token", "", "join token from `tandem token create`, for a new node started with --join (env TANDEM_JOIN_TOKEN)")
	f.StringVar(&opts.TLSCertFile, "tls-cert", "", "PEM certificate (chain) served to API clients instead of the node certificate")
	f.StringVar(&opts.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	f.BoolVar(&opts.Insecure, "insecure", false, "INSECURE: plain HTTP and plain TCP Raft, no certificates, no authentication: every client is an admin (local development only)")
	c := &opts.Contracts
	f.DurationVar(&c.CallTimeout, "contract-timeout", 2*time.Second, "longest one contract call may take; checked at each of its requests to the host")
	f.Uint64Var(&c.MaxFuel, "contract-fuel", contract.DefaultMaxFuel, "most loop iterations one contract call may run (about a second of a tight loop)")
	f.Uint32Var(&c.MemoryPages, "contract-memory-pages", 2048, "memory limit of a contract instance in 64 KiB pages")
	f.IntVar(&c.MaxWrites, "contract-max-writes", 1000, "most records one contract call may write")
	f.IntVar(&c.MaxArgSize, "contract-max-arg", 1<<20, "largest contract call argument in bytes")
	cmd.MarkFlagRequired("id")
	cmd.MarkFlagRequired("data")
	return cmd
}
