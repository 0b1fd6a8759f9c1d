package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemdb/tandem/client"
)

func newContractCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "contract",
		Short: "Build, deploy, list, roll back and call contracts (docs/contracts.md)",
	}
	f.register(cmd)
	cmd.AddCommand(newContractBuildCmd(), newContractDeployCmd(&f), newContractListCmd(&f),
		newContractGetCmd(&f), newContractRollbackCmd(&f), newContractCallCmd(&f))
	return cmd
}

func newContractBuildCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "build DIR",
		Short: "Build a Go contract package into a WebAssembly module",
		Long: `Build a Go contract package (a main package using
github.com/tandemdb/tandem/sdk) with the Go toolchain on PATH:

  cd DIR && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o OUT .`,
		Example: "  tandem contract build ./examples/token -o token.wasm",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return fmt.Errorf("%s is not a folder", dir)
			}
			// Build inside DIR, so that its own module (or the one above
			// it) is used whatever the current folder.
			abs, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			b := exec.CommandContext(cmd.Context(), "go", "build", "-buildmode=c-shared", "-o", abs, ".")
			b.Dir = dir
			b.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			b.Stdout, b.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := b.Run(); err != nil {
				return fmt.Errorf("go build: %w", err)
			}
			fi, err := os.Stat(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s (%d bytes)\n", out, fi.Size())
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "contract.wasm", "module file to write")
	return cmd
}

func newContractDeployCmd(f *clientFlags) *cobra.Command {
	var rights string
	cmd := &cobra.Command{
		Use:   "deploy NAME FILE",
		Short: "Deploy a module as a new version of a contract and make it active",
		Long: `Deploy a module as a new version of a contract and make it active.

--rights says whose permissions the version's functions run with:
"contract" (the default) lets them read and write any table, gated only by
contract.call; "caller" checks every read and write against the caller's
permissions, attribute permissions included (docs/contracts.md, "Rights").`,
		Example: "  tandem contract deploy token token.wasm\n  tandem contract deploy records records.wasm --rights caller",
		Args:    cobra.ExactArgs(2),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			wasm, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			info, _, err := c.DeployContract(cmd.Context(), args[0], wasm, client.WithRights(rights))
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), info)
		}),
	}
	cmd.Flags().StringVar(&rights, "rights", "", `whose permissions the functions run with: "contract" (default) or "caller"`)
	return cmd
}

func newContractListCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List contracts with their active and latest versions",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			list, err := c.Contracts(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tACTIVE\tVERSIONS\tDEPLOYED")
			for _, ci := range list {
				deployed := ""
				if v := ci.ActiveVersion(); v != nil {
					deployed = v.DeployedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", ci.Name, ci.Active, len(ci.Versions), deployed)
			}
			return tw.Flush()
		}),
	}
}

func newContractGetCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a contract's versions (hash, size, deploy time, functions)",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			info, err := c.Contract(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), info)
		}),
	}
}

func newContractRollbackCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "rollback NAME VERSION",
		Short:   "Make an earlier version of a contract active on every node",
		Example: "  tandem contract rollback token 1",
		Args:    cobra.ExactArgs(2),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			v, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil || v == 0 {
				return fmt.Errorf("version %q is not a positive integer", args[1])
			}
			info, err := c.RollbackContract(cmd.Context(), args[0], v)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), info)
		}),
	}
}

func newContractCallCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "call NAME FUNCTION [JSON|-]",
		Short: "Call a contract function with a JSON argument",
		Example: `  tandem contract call token transfer '{"from": "alice", "to": "bob", "amount": 5}'
  tandem contract call token balance '{"account": "bob"}'`,
		Args: cobra.RangeArgs(2, 3),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			var arg json.RawMessage
			if len(args) == 3 {
				var err error
				if arg, err = jsonArg(cmd, args[2], "argument"); err != nil {
					return err
				}
			}
			res, err := c.CallContract(cmd.Context(), args[0], args[1], arg)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		}),
	}
}
