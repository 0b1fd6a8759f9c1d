package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// PinnedClientConfig is the TLS configuration of a node that joins with a
// token and has no certificate yet: it trusts the server only if the chain
// it presents contains a CA certificate whose SHA-256 fingerprint is
// fingerprint, and the server's node certificate chains to that CA. This
// is certificate pinning: the token carries the fingerprint, so the
// joining node needs no other trust anchor, and a server of another CA
// (or a man in the middle) fails the handshake before the token's secret
// is sent.
func PinnedClientConfig(fingerprint string, now func() time.Time) *tls.Config {
	if now == nil {
		now = time.Now
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: PeerServerName,
		// Go's own check would verify against the system roots and the
		// host name; VerifyConnection verifies against the pinned CA.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			ca, err := pinned(cs.PeerCertificates, fingerprint)
			if err != nil {
				return err
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			return verifyNode(cs.PeerCertificates, roots, now(), x509.ExtKeyUsageServerAuth)
		},
	}
}

// ErrNotPinned is returned (wrapped) by a handshake under
// PinnedClientConfig when the server does not present the pinned CA.
var ErrNotPinned = errors.New("pki: the server's certificate chain does not contain the cluster CA named by the join token (another cluster, or a man in the middle)")

// pinned returns the CA certificate in certs whose fingerprint is fp.
func pinned(certs []*x509.Certificate, fp string) (*x509.Certificate, error) {
	if fp == "" {
		return nil, errors.New("pki: no CA fingerprint to pin")
	}
	for _, c := range certs {
		if Fingerprint(c) == fp {
			if !c.IsCA {
				return nil, errors.New("pki: the pinned certificate is not a CA")
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w (pinned fingerprint %.16s…)", ErrNotPinned, fp)
}
