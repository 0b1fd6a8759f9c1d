package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tandemdb/tandem/client"
)

// devAuth is how `tandem dev` authenticates: the admin password lives in
// <data>/admin-password (0600), generated on the first run, so every run
// can print it and the README's curl examples work.
type devAuth struct {
	insecure bool
	password string
	file     string
}

func loadDevAuth(dir string, insecure bool) (*devAuth, error) {
	a := &devAuth{insecure: insecure, file: filepath.Join(dir, "admin-password")}
	if insecure {
		return a, nil
	}
	b, err := os.ReadFile(a.file)
	switch {
	case err == nil:
		a.password = strings.TrimSpace(string(b))
		if a.password == "" {
			return nil, fmt.Errorf("%s is empty; remove the data folder to start afresh", a.file)
		}
		return a, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if a.password, err = generatePassword(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(a.file, []byte(a.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	return a, nil
}

// env is a node's environment: the bootstrap node creates the admin user
// with this password.
func (a *devAuth) env() []string {
	if a.insecure {
		return os.Environ()
	}
	return append(os.Environ(), EnvAdminPassword+"="+a.password)
}

// authorization is the header value for the dev command's own requests.
func (a *devAuth) authorization() string {
	if a.insecure {
		return ""
	}
	return client.BasicAuthorization("admin", a.password)
}

// curl is the curl credentials option to print in examples.
func (a *devAuth) curl() string {
	if a.insecure {
		return ""
	}
	return "-u admin:" + a.password
}

// cliEnv is the environment prefix for CLI examples.
func (a *devAuth) cliEnv() string {
	if a.insecure {
		return ""
	}
	return "TANDEM_USER=admin TANDEM_PASSWORD=" + a.password + " "
}
