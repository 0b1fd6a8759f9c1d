package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// devLayout is saved in the dev data folder so that a second run brings the
// same nodes back on the same addresses.
type devLayout struct {
	Nodes []devNode `json:"nodes"`
	// Insecure records --insecure of the first run: a cluster cannot
	// switch (a secure node needs its certificates, an insecure one has none).
	Insecure bool `json:"insecure,omitempty"`
}

type devNode struct {
	ID   string `json:"id"`
	HTTP string `json:"http"`
	Raft string `json:"raft"`
	Dir  string `json:"dir"`
}

func newDevCmd() *cobra.Command {
	var (
		nodes    int
		dataDir  string
		httpBase int
		raftBase int
		example  bool
		insecure bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local development cluster (one process per node) with an example application",
		Long: `Run a local cluster on loopback, each node its own OS process, and load an
example application (a small bank: accounts with balances) on first start.

The cluster is secure like a production one: the first node creates the
cluster CA, the others join with join tokens that dev creates, node-to-node
traffic is mutual TLS and the API serves HTTPS; dev prints the CA's path for
curl --cacert and TANDEM_CA. --insecure runs plain HTTP instead.

Data lives under --data; run again with the same --data and the cluster comes
back with its data. Ctrl-C stops every node cleanly. Each node's log is in
<data>/<id>/node.log. Kill a node's process to watch the cluster fail over;
the dev command tells you when a node exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > 9 {
				return fmt.Errorf("--nodes must be between 1 and 9")
			}
			out := cmd.OutOrStdout()
			abs, err := filepath.Abs(dataDir)
			if err != nil {
				return err
			}
			layout, err := loadOrCreateLayout(abs, nodes, httpBase, raftBase, insecure)
			if err != nil {
				return err
			}
			if layout.Insecure != insecure {
				return fmt.Errorf("%s was created %s --insecure; run it the same way, or use a new --data folder", abs, map[bool]string{true: "with", false: "without"}[layout.Insecure])
			}
			creds, err := loadDevAuth(abs, insecure)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Tandem dev cluster: %d nodes, data in %s\n", len(layout.Nodes), abs)
			if insecure {
				fmt.Fprintln(out, "WARNING: INSECURE (--insecure): plain HTTP and TCP, no certificates, no authentication; anyone who can reach these ports can read and change the data.")
			}

			if err := checkDevPorts(layout); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			d := newDevCluster(exe, layout, out, creds)
			defer d.stop()
			if err := d.start(ctx); err != nil {
				return err
			}
			for _, n := range layout.Nodes {
				fmt.Fprintf(out, "  node %s  %s  (raft %s, log %s)\n", n.ID, d.url(n), n.Raft, filepath.Join(n.Dir, "node.log"))
			}
			base := d.url(layout.Nodes[0])
			if example {
				created, err := seedExample(ctx, d.hc, base, creds.authorization())
				if err != nil {
					return fmt.Errorf("loading the example application: %w", err)
				}
				if created {
					fmt.Fprintln(out, "Example application loaded: table \"accounts\" with 4 accounts.")
				}
			}
			curl, env := "curl -s", ""
			if !insecure {
				fmt.Fprintf(out, "Admin credentials: user admin, password %s (saved in %s)\n", creds.password, creds.file)
				fmt.Fprintf(out, "CA certificate: %s\n", d.caFile())
				curl = "curl -s --cacert " + d.caFile() + " " + creds.curl()
				env = "TANDEM_CA=" + d.caFile() + " " + creds.cliEnv()
			}
			fmt.Fprintf(out, `
Ready. Try:
  %[3]s %[1]s/v1/cluster
  %[3]s '%[1]s/v1/tables/accounts/records?balance=ge.100&sort=-balance'
  %[3]s -X PUT %[2]s/v1/tables/accounts/records/erin -d '{"owner":"Erin","balance":75}'
  %[4]sTANDEM_ADDR=%[1]s tandem status
Press Ctrl-C to stop the cluster.
`, base, d.url(layout.Nodes[len(layout.Nodes)-1]), strings.TrimSpace(curl), env)
			<-ctx.Done()
			fmt.Fprintln(out, "\nstopping nodes...")
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 3, "number of nodes (first run only; later runs use the saved layout)")
	f.StringVar(&dataDir, "data", "tandem-dev-data", "data folder for all nodes")
	f.IntVar(&httpBase, "http-port", 7001, "HTTP port of the first node; node i uses http-port+i-1")
	f.IntVar(&raftBase, "raft-port", 8001, "Raft port of the first node; node i uses raft-port+i-1")
	f.BoolVar(&example, "example", true, "load the example application on first start")
	f.BoolVar(&insecure, "insecure", false, "INSECURE: plain HTTP and TCP without certificates (first run only; later runs must match)")
	return cmd
}

func loadOrCreateLayout(dir string, nodes, httpBase, raftBase int, insecure bool) (*devLayout, error) {
	path := filepath.Join(dir, "dev.json")
	if b, err := os.ReadFile(path); err == nil {
		var l devLayout
		if err := json.Unmarshal(b, &l); err != nil || len(l.Nodes) == 0 {
			return nil, fmt.Errorf("%s is damaged; remove the folder to start afresh", path)
		}
		return &l, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l := &devLayout{Insecure: insecure}
	for i := 1; i <= nodes; i++ {
		id := "n" + strconv.Itoa(i)
		l.Nodes = append(l.Nodes, devNode{
			ID:   id,
			HTTP: "127.0.0.1:" + strconv.Itoa(httpBase+i-1),
			Raft: "127.0.0.1:" + strconv.Itoa(raftBase+i-1),
			Dir:  filepath.Join(dir, id),
		})
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(l, "", "  ")
	return l, os.WriteFile(path, b, 0o600)
}

func isSignalExit(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return true
		}
	}
	return false
}

// checkDevPorts fails early, naming the port, when another program holds
// one of the cluster's ports; otherwise the node would exit and the user
// would have to dig the reason out of its log.
func checkDevPorts(l *devLayout) error {
	for _, n := range l.Nodes {
		for _, addr := range []string{n.HTTP, n.Raft} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("node %s cannot use %s: %v; stop the program holding it or start with other --http-port/--raft-port and a new --data folder", n.ID, addr, err)
			}
			ln.Close()
		}
	}
	return nil
}

// logTail returns the last n lines of a file, or a note why it cannot.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
