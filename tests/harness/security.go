package harness

import (
	"net/http"
	"os"

	"github.com/tandemdb/tandem/client"
)

// Clusters run secure by default, as in production: the first node
// creates the admin user with AdminPassword, and the harness's own
// requests and clients send it (ClientOptions, HTTPClient in tls.go).
// Sending it to an Insecure cluster is harmless.
const (
	AdminUser     = "admin"
	AdminPassword = "harness-admin-password"
)

// AdminAuthorization is the Authorization header value of the admin.
func AdminAuthorization() string { return client.BasicAuthorization(AdminUser, AdminPassword) }

type adminTransport struct{ rt http.RoundTripper }

func (t adminTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", AdminAuthorization())
	}
	return t.rt.RoundTrip(req)
}

// securityArgs are the serve arguments for the cluster's security mode.
// The per-address login failure limit is raised: every test client comes
// from 127.0.0.1, and tests that send bad credentials on purpose must not
// lock the others out (tests of the limit pass their own).
func (c *Cluster) securityArgs() []string {
	if c.sec == nil {
		return []string{"--insecure"}
	}
	return []string{"--login-failures-per-addr", "100000"}
}

// nodeEnv is the environment of node processes: the admin password for
// the bootstrap node.
func (c *Cluster) nodeEnv() []string {
	env := os.Environ()
	if c.sec == nil {
		return env
	}
	return append(env, "TANDEM_ADMIN_PASSWORD="+AdminPassword)
}
