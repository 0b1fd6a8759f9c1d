package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemdb/tandem/bench"
	"github.com/tandemdb/tandem/client"
)

func newBenchCmd() *cobra.Command {
	var cfg bench.Config
	var addrs, workload, caFile, contractFile string
	var asJSON bool
	var cpuProfile string
	var multiplexConns int
	var creds credFlags // auth_cmds.go
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the throughput and latency of a running cluster",
		Long: `Run a closed-loop load against a cluster: --clients clients, spread evenly
over --addrs, each sending its next request when the previous one is answered.
The table "bench" is created first; read workloads preload every key.

Workloads: write (PUT a record), read-local (GET, consistency=local),
read-linearizable (GET), mixed (90% linearizable reads, 10% writes),
tx (POST /v1/tx with two upserts).

Contract workloads (--contract token.wasm, built from examples/token with
"tandem contract build"): transfer (token.transfer between random accounts
of --keys), transfer-hot (every transfer touches one account), transfer-tx
(the built-in equivalent, POST /v1/tx upserting both accounts, to measure
the per-call overhead). They also report the cold start: deploy to first
call.`,
		Example: "  tandem bench --addrs https://127.0.0.1:7001,https://127.0.0.1:7002,https://127.0.0.1:7003 --ca-file ./n1/ca.crt --workload mixed --clients 64",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Addrs = splitList(addrs)
			cfg.ClientOptions = append(cfg.ClientOptions, creds.option())
			if caFile != "" {
				cfg.ClientOptions = append(cfg.ClientOptions, client.WithCAFile(caFile))
			}
			if multiplexConns > 0 {
				cfg.ClientOptions = append(cfg.ClientOptions, client.WithMultiplex(multiplexConns))
			}
			cfg.Workload = bench.Workload(workload)
			if contractFile != "" {
				var err error
				if cfg.Contract, err = os.ReadFile(contractFile); err != nil {
					return err
				}
			}
			stderr := cmd.ErrOrStderr()
			cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", args...) }
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if cpuProfile != "" {
				// The load generator shares the machine with the nodes in a
				// loopback benchmark: its own cost is part of the picture.
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			res, err := bench.Run(ctx, cfg)
			if err != nil {
				return cliError(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return printBench(cmd.OutOrStdout(), &res)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addrs, "addrs", envAddrs(), "comma-separated node base URLs (env TANDEM_ADDR)")
	fl.StringVar(&caFile, "ca-file", os.Getenv("TANDEM_CA"), "PEM file of the cluster CA, for https addresses (env TANDEM_CA)")
	fl.StringVar(&workload, "workload", string(bench.WorkloadWrite), "write, read-local, read-linearizable, mixed, tx, transfer, transfer-hot or transfer-tx")
	fl.StringVar(&contractFile, "contract", "", "token contract module for the transfer workloads")
	fl.IntVar(&cfg.Clients, "clients", bench.DefaultClients, "concurrent clients")
	fl.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "length of the measured run")
	fl.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured run before it")
	fl.IntVar(&cfg.Keys, "keys", bench.DefaultKeys, "size of the key space")
	fl.IntVar(&cfg.ValueSize, "value-size", bench.DefaultValueSize, "approximate bytes per record")
	fl.StringVar(&cfg.Table, "table", bench.DefaultTable, "table to use")
	fl.DurationVar(&cfg.Timeout, "timeout", bench.DefaultTimeout, "give up on one operation after this long")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed of the key choices")
	fl.IntVar(&multiplexConns, "multiplex", 1, "send the requests over this many multiplexed connections per node (GET /v1/mux), as the Go client does for busy callers; 0: HTTP/1.1, a connection per client (what curl and most HTTP libraries do)")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fl.StringVar(&cpuProfile, "cpuprofile", "", "write the load generator's CPU profile to this file")
	creds.register(cmd)
	return cmd
}

func printBench(w io.Writer, r *bench.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\t%s\n", r.Workload)
	fmt.Fprintf(tw, "clients\t%d over %d nodes\n", r.Clients, len(r.Addrs))
	fmt.Fprintf(tw, "duration\t%v after %v warm-up\n", r.Duration, r.Warmup)
	fmt.Fprintf(tw, "ops\t%d\n", r.Ops)
	fmt.Fprintf(tw, "ops/s\t%.1f\n", r.OpsPerSec)
	fmt.Fprintf(tw, "latency\t%s\n", latencyLine(r.Latency))
	if r.ColdStart > 0 {
		fmt.Fprintf(tw, "cold start\t%v (deploy to first call)\n", roundDur(r.ColdStart))
	}
	kinds := make([]string, 0, len(r.ByOp))
	for k := range r.ByOp {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		s := r.ByOp[k]
		fmt.Fprintf(tw, "  %s\t%d ops, %.1f/s, %s\n", k, s.Ops, s.OpsPerSec, latencyLine(s.Latency))
	}
	errs := fmt.Sprint(r.ErrorCount())
	if len(r.Errors) > 0 {
		var parts []string
		for code, n := range r.Errors {
			parts = append(parts, fmt.Sprintf("%s %d", code, n))
		}
		slices.Sort(parts)
		errs += " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintf(tw, "errors\t%s\n", errs)
	return tw.Flush()
}

func latencyLine(l bench.Latency) string {
	return fmt.Sprintf("p50 %v  p99 %v  p99.9 %v  max %v", roundDur(l.P50), roundDur(l.P99), roundDur(l.P999), roundDur(l.Max))
}

// roundDur keeps three or four significant digits.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}
