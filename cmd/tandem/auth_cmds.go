package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
	"github.com/tandemdb/tandem/client"
)

// credFlags are the credentials of a client command: flags, else the
// environment (TANDEM_TOKEN, or TANDEM_USER and TANDEM_PASSWORD).
type credFlags struct {
	user, password, token string
}

func (f *credFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.user, "user", "", "user name for HTTP Basic authentication (env "+client.EnvUser+")")
	pf.StringVar(&f.password, "password", "", "password for --user (env "+client.EnvPassword+"; prefer the environment: flags show in ps)")
	pf.StringVar(&f.token, "api-key", "", "API key (token from `tandem apikey create`), instead of --user (env "+client.EnvToken+")")
}

func (f *credFlags) option() client.Option {
	switch {
	case f.token != "":
		return client.WithToken(f.token)
	case f.user != "":
		pw := f.password
		if pw == "" {
			pw = os.Getenv(client.EnvPassword)
		}
		return client.WithBasicAuth(f.user, pw)
	}
	return client.CredentialsFromEnv()
}

// passwordOrGenerated returns pw, or a generated password if pw is empty.
func passwordOrGenerated(pw string) (string, bool, error) {
	if pw != "" {
		return pw, false, nil
	}
	pw, err := generatePassword()
	return pw, true, err
}

// generatePassword returns 24 random characters (144 bits).
func generatePassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// nameCmd is a subcommand taking one name and printing fn's result as
// JSON.
func nameCmd(f *clientFlags, use, short string, fn func(ctx context.Context, c *client.Client, name string) (any, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			v, err := fn(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), v)
		}),
	}
}

func addAuthCommands(root *cobra.Command) {
	root.AddCommand(newWhoAmICmd(), newUserCmd(), newRoleCmd(), newAPIKeyCmd(), newAuditCmd())
}

func newWhoAmICmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the credentials authenticate as",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			id, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), id)
		}),
	}
	f.register(cmd)
	return cmd
}

func newUserCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "user", Short: "Manage users (admin)"}
	f.register(cmd)

	var roles []string
	var newPassword string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user; without --new-password one is generated and printed once",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			pw, generated, err := passwordOrGenerated(newPassword)
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), args[0], pw, splitRoles(roles))
			if err != nil {
				return err
			}
			if generated {
				fmt.Fprintf(cmd.ErrOrStderr(), "password for %s (shown once): %s\n", u.Name, pw)
			}
			return printJSON(cmd.OutOrStdout(), u)
		}),
	}
	create.Flags().StringSliceVar(&roles, "roles", nil, "roles, comma-separated (built in: admin, reader, writer)")
	create.Flags().StringVar(&newPassword, "new-password", "", "the user's password (default: generate one)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			users, err := c.Users(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLES")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\n", u.Name, strings.Join(u.Roles, ","))
			}
			return tw.Flush()
		}),
	}
	get := nameCmd(&f, "get NAME", "Show a user", func(ctx context.Context, c *client.Client, name string) (any, error) {
		return c.User(ctx, name)
	})
	var current string
	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a password (your own with --current-password, anyone's as admin)",
		Args:  cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			pw, generated, err := passwordOrGenerated(newPassword)
			if err != nil {
				return err
			}
			if err := c.SetPassword(cmd.Context(), args[0], pw, current); err != nil {
				return err
			}
			if generated {
				fmt.Fprintf(cmd.ErrOrStderr(), "new password for %s (shown once): %s\n", args[0], pw)
			}
			return nil
		}),
	}
	passwd.Flags().StringVar(&newPassword, "new-password", "", "the new password (default: generate one)")
	passwd.Flags().StringVar(&current, "current-password", "", "your current password, to change your own")
	setRoles := &cobra.Command{
		Use:   "roles NAME ROLE[,ROLE...]",
		Short: "Replace a user's roles (an empty string for none)",
		Args:  cobra.ExactArgs(2),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			u, err := c.SetRoles(cmd.Context(), args[0], splitRoles([]string{args[1]}))
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), u)
		}),
	}
	del := nameCmd(&f, "delete NAME", "Delete a user and revoke its API tokens", func(ctx context.Context, c *client.Client, name string) (any, error) {
		return map[string]string{"deleted": name}, c.DeleteUser(ctx, name)
	})
	cmd.AddCommand(create, list, get, passwd, setRoles, del)
	return cmd
}

func splitRoles(list []string) []string {
	out := []string{}
	for _, l := range list {
		out = append(out, splitList(l)...)
	}
	return out
}

func newRoleCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "role", Short: "Manage roles (admin)"}
	f.register(cmd)
	var perms []string
	put := &cobra.Command{
		Use:   "put NAME --perm ACTION[:RESOURCE[:ATTRS]]...",
		Short: "Create or replace a role",
		Long: `Create or replace a role. Each --perm is ACTION[:RESOURCE[:ATTRS]]:
ACTION is table.read, table.insert, table.update, table.delete, table.admin,
contract.deploy, contract.call or cluster.admin; RESOURCE a table or contract
name or *; ATTRS a comma-separated list of attributes the grant is limited to,
names with a leading - being excluded instead (docs/security.md).`,
		Example: `  tandem role put nurse --perm table.read:patients:-diagnosis --perm table.update:patients:notes
  tandem role put teller --perm table.read:accounts --perm contract.call:transfer`,
		Args: cobra.ExactArgs(1),
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ps := make([]tandem.Permission, 0, len(perms))
			for _, s := range perms {
				p, err := auth.ParsePermission(s)
				if err != nil {
					return fmt.Errorf("--perm %s", tandem.ErrorMessage(err))
				}
				ps = append(ps, p)
			}
			r, err := c.PutRole(cmd.Context(), args[0], ps)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), r)
		}),
	}
	put.Flags().StringArrayVar(&perms, "perm", nil, "a permission, ACTION[:RESOURCE[:ATTRS]] (repeatable)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List roles with their permissions",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			roles, err := c.Roles(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tBUILTIN\tPERMISSIONS")
			for _, r := range roles {
				ps := make([]string, len(r.Permissions))
				for i, p := range r.Permissions {
					ps[i] = auth.FormatPermission(p)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, yesNo(r.Builtin), strings.Join(ps, " "))
			}
			return tw.Flush()
		}),
	}
	get := nameCmd(&f, "get NAME", "Show a role", func(ctx context.Context, c *client.Client, name string) (any, error) {
		return c.Role(ctx, name)
	})
	del := nameCmd(&f, "delete NAME", "Delete a role that no user has", func(ctx context.Context, c *client.Client, name string) (any, error) {
		return map[string]string{"deleted": name}, c.DeleteRole(ctx, name)
	})
	cmd.AddCommand(put, list, get, del)
	return cmd
}

// newAPIKeyCmd manages API tokens. It is "apikey", not "token": "tandem
// token" creates cluster join tokens.
func newAPIKeyCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{Use: "apikey", Short: "Create, list and revoke API tokens"}
	f.register(cmd)
	var user, name string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API token (printed once) for yourself or, as admin, for --for",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			t, err := c.CreateAPIToken(cmd.Context(), user, name, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "API token %s for %s (shown once; send it as Authorization: Bearer <token> or TANDEM_TOKEN):\n", t.ID, t.Owner)
			fmt.Fprintln(cmd.OutOrStdout(), t.Token)
			return nil
		}),
	}
	create.Flags().StringVar(&user, "for", "", "the user the token acts as (default: you; another user: admin only)")
	create.Flags().StringVar(&name, "name", "", "a name to tell tokens apart")
	create.Flags().DurationVar(&ttl, "ttl", 0, "lifetime (default 720h, at most 8784h)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List API tokens (yours; admins: everyone's or --for's)",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			ts, err := c.APITokens(cmd.Context(), user)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tOWNER\tNAME\tEXPIRES")
			for _, t := range ts {
				exp := "never"
				if t.Expires != nil {
					exp = t.Expires.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Owner, t.Name, exp)
			}
			return tw.Flush()
		}),
	}
	list.Flags().StringVar(&user, "for", "", "list this user's tokens (admin)")
	revoke := nameCmd(&f, "revoke ID", "Revoke an API token", func(ctx context.Context, c *client.Client, id string) (any, error) {
		return map[string]string{"revoked": id}, c.RevokeAPIToken(ctx, id)
	})
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newAuditCmd() *cobra.Command {
	var f clientFlags
	var filter client.AuditFilter
	var since, until string
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log (admin), oldest first",
		Args:  cobra.NoArgs,
		RunE: f.run(func(cmd *cobra.Command, c *client.Client, _ []string) error {
			for _, t := range []struct {
				flag, v string
				dst     *time.Time
			}{{"--since", since, &filter.Since}, {"--until", until, &filter.Until}} {
				if t.v == "" {
					continue
				}
				if d, err := time.ParseDuration(t.v); err == nil {
					*t.dst = time.Now().Add(-d)
					continue
				}
				ts, err := time.Parse(time.RFC3339, t.v)
				if err != nil {
					return fmt.Errorf("%s %q: want an RFC 3339 time or a duration ago such as 1h", t.flag, t.v)
				}
				*t.dst = ts
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(tw, "TIME\tNODE\tPRINCIPAL\tADDRESS\tACTION\tTARGET\tOUTCOME\tDETAIL")
			}
			for {
				page, err := c.Audit(cmd.Context(), filter)
				if err != nil {
					return err
				}
				for _, e := range page.Entries {
					if asJSON {
						if err := printJSON(cmd.OutOrStdout(), e); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", time.Unix(0, e.Time).UTC().Format(time.RFC3339),
						e.Node, e.Principal, e.Address, e.Action, e.Target, e.Outcome, e.Detail)
				}
				if !all || page.Next == "" {
					break
				}
				filter.Cursor = page.Next
			}
			return tw.Flush()
		}),
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "entries at or after this time (RFC 3339, or a duration ago such as 24h)")
	fl.StringVar(&until, "until", "", "entries before this time (RFC 3339, or a duration ago)")
	fl.StringVar(&filter.Principal, "principal", "", "only this principal")
	fl.StringVar(&filter.Action, "action", "", "only this action (e.g. login, create_user)")
	fl.IntVar(&filter.Limit, "limit", 100, "entries per page")
	fl.BoolVar(&all, "all", false, "follow cursors to the end")
	fl.BoolVar(&asJSON, "json", false, "print entries as JSON")
	return cmd
}
