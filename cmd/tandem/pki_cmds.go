package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/pki"
)

// registerTLS adds --ca-file to a client command.
func (f *clientFlags) registerTLS(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.caFile, "ca-file", os.Getenv("TANDEM_CA"), "PEM file of the cluster CA to trust for https (a node's ca.crt, or `tandem ca --out`) (env TANDEM_CA)")
}

// options are the client options the flags ask for.
func (f *clientFlags) options() []client.Option {
	opts := []client.Option{client.WithTimeout(f.timeout), f.creds.option()}
	if f.caFile != "" {
		opts = append(opts, client.WithCAFile(f.caFile))
	}
	return opts
}

// tlsHint explains the TLS failures a user of a secure cluster meets first.
func tlsHint(err error) error {
	var ua x509.UnknownAuthorityError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ua):
		return fmt.Errorf("%w\n(the node's certificate is from the cluster CA: pass --ca-file PATH or set TANDEM_CA; a node's data folder holds ca.crt)", err)
	case strings.Contains(err.Error(), "HTTP request to an HTTPS server"), strings.Contains(err.Error(), "malformed HTTP response"):
		return fmt.Errorf("%w\n(the node serves https: use an https:// address and --ca-file, or a plain http:// address for a node run with --insecure)", err)
	}
	return err
}

// addPKICommands adds `tandem token` and `tandem ca`.
func addPKICommands(root *cobra.Command) {
	root.AddCommand(newTokenCmd(), newCACmd())
}

func newTokenCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage join tokens (cluster admins)",
		Long: `A join token lets one new node join the cluster:
  tandem serve --id n4 ... --join https://HOST:PORT --token TOKEN
It carries a random secret and the fingerprint of the cluster CA, expires after
--ttl, and works once.`,
	}
	f.register(cmd)
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a join token and print it (shown only now)",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			tok, err := c.CreateJoinToken(cmd.Context(), ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "join token %s expires %s; it works once\n", tok.ID, time.Unix(0, tok.Expires).UTC().Format(time.RFC3339))
			return nil
		}),
	}
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid (at most 168h)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List join tokens",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			toks, err := c.JoinTokens(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEXPIRES\tUSED BY")
			for _, t := range toks {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, time.Unix(0, t.Expires).UTC().Format(time.RFC3339), t.UsedBy)
			}
			return tw.Flush()
		}),
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a join token",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			return c.DeleteJoinToken(cmd.Context(), args[0])
		}),
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newCACmd() *cobra.Command {
	var (
		f           clientFlags
		out         string
		fingerprint string
	)
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Print the cluster CA certificate (or write it to --out) for clients to trust",
		Long: `Print the cluster CA certificate, which API clients trust to reach the
cluster over https (curl --cacert, --ca-file, TANDEM_CA). A client that does
not trust the CA yet passes --fingerprint (the last part of a join token, or
the fingerprint a node logs at bootstrap): the connection is then accepted only
from a node of the CA with that fingerprint.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := f.options()
			if fingerprint != "" {
				opts = append(opts, client.WithTLSConfig(pki.PinnedClientConfig(strings.ToLower(fingerprint), nil)))
			}
			c, err := client.New(splitList(f.addr), opts...)
			if err != nil {
				return err
			}
			return cliError(tlsHint(writeCA(cmd, c, out)))
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write the PEM to this file instead of stdout")
	cmd.Flags().StringVar(&fingerprint, "fingerprint", "", "SHA-256 fingerprint (hex) the CA must have; trusts no other CA for this call")
	return cmd
}

// writeCA fetches the CA certificate and writes it to out or stdout, with
// its fingerprint on stderr.
func writeCA(cmd *cobra.Command, c *client.Client, out string) error {
	pemBytes, err := c.CACert(cmd.Context())
	if err != nil {
		return err
	}
	certs, err := pki.ParseCerts(pemBytes)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "CA %q sha256 fingerprint %s\n", certs[0].Subject.CommonName, pki.Fingerprint(certs[0]))
	if out == "" {
		_, err = cmd.OutOrStdout().Write(pemBytes)
		return err
	}
	return os.WriteFile(out, pemBytes, 0o644)
}
