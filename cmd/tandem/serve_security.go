package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/tandemdb/tandem/node"
)

// EnvAdminPassword is the environment variable read for --admin-password.
const EnvAdminPassword = "TANDEM_ADMIN_PASSWORD"

// securityFlags are serve's authentication flags (docs/security.md).
type securityFlags struct {
	adminPassword string
	userFailures  int
	addrFailures  int
}

func (f *securityFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.adminPassword, "admin-password", "", "with --bootstrap: password of the admin user created if the cluster has none (env "+EnvAdminPassword+"; default: generate one and print it once)")
	fl.IntVar(&f.userFailures, "login-failures-per-user", 10, "failed logins allowed per user name per minute before 429")
	fl.IntVar(&f.addrFailures, "login-failures-per-addr", 30, "failed logins allowed per client address per minute before 429")
}

// apply fills opts.Security. --insecure (opts.Insecure) turns
// authentication off together with TLS.
func (f *securityFlags) apply(opts *node.Options, stderr io.Writer, log *slog.Logger) error {
	s := &opts.Security
	s.UserLoginFailures, s.AddrLoginFailures = f.userFailures, f.addrFailures
	if opts.Insecure {
		log.Warn("INSECURE MODE: authentication and authorization are OFF; every client is an admin. Never use --insecure outside local development.")
		return nil
	}
	if !opts.Bootstrap {
		return nil
	}
	pw := f.adminPassword
	if pw == "" {
		pw = os.Getenv(EnvAdminPassword)
	}
	generated := pw == ""
	if generated {
		var err error
		if pw, err = generatePassword(); err != nil {
			return err
		}
	}
	s.AdminPassword = pw
	if generated {
		// Printed only when the user is actually created: a restarted
		// bootstrap node finds users and prints nothing.
		s.OnAdminCreated = func() {
			fmt.Fprintf(stderr, "\nCreated the admin user. Password (shown once, store it now): %s\n\n", pw)
		}
	}
	return nil
}
