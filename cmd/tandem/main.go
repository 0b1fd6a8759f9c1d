// Command tandem is the single Tandem binary: it runs a node (serve), a
// local development cluster (dev), and client commands against the HTTP API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tandem:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tandem",
		Short:         "Tandem: replicated tables, transactions and contracts in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newDevCmd())
	addClientCommands(root)
	addPKICommands(root) // pki_cmds.go
	root.AddCommand(newBenchCmd())
	return root
}
