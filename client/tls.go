package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// tlsOptions collect the TLS options of New.
type tlsOptions struct {
	caFile string
	roots  *x509.CertPool
	cfg    *tls.Config
}

// WithCAFile makes the client trust the CA certificates in a PEM file
// (a cluster's ca.crt, from `tandem ca` or GET /v1/cluster/ca) instead of
// the system's. Ignored with WithHTTPClient.
func WithCAFile(path string) Option {
	return func(o *options) { o.tls.caFile = path }
}

// WithRootCAs makes the client trust pool instead of the system's CAs.
// Ignored with WithHTTPClient.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(o *options) { o.tls.roots = pool }
}

// WithTLSConfig sets the TLS configuration of the client's connections
// (for instance to present a client certificate). WithCAFile and
// WithRootCAs, if also given, set its RootCAs. Ignored with WithHTTPClient.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.tls.cfg = cfg }
}

// LoadCAFile reads PEM CA certificates into a pool.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("client: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// config returns the TLS configuration the options describe, or nil if
// none was given.
func (o tlsOptions) config() (*tls.Config, error) {
	if o.caFile == "" && o.roots == nil && o.cfg == nil {
		return nil, nil
	}
	if o.caFile != "" && o.roots != nil {
		return nil, errors.New("client: WithCAFile and WithRootCAs both given")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.cfg != nil {
		cfg = o.cfg.Clone()
	}
	roots := o.roots
	if o.caFile != "" {
		var err error
		if roots, err = LoadCAFile(o.caFile); err != nil {
			return nil, err
		}
	}
	if roots != nil {
		cfg.RootCAs = roots
	}
	return cfg, nil
}
