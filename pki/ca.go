package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// Certificate lifetimes. A node renews its certificate once less than a
// third of its lifetime is left (NeedsRenewal); the CA is replaced by the
// procedure in docs/security.md.
const (
	DefaultCALifetime   = 10 * 365 * 24 * time.Hour
	DefaultNodeLifetime = 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so that a node whose clock is a little
	// behind the signer's accepts a fresh certificate.
	clockSkew = 5 * time.Minute
)

// NodeURIScheme and the node ID make the URI SAN that marks a node
// certificate: tandem://node/<id>.
const nodeURIPrefix = "tandem://node/"

// CA is a cluster certificate authority. Key is nil on a node that holds
// only the CA certificate (then it cannot sign).
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a self-signed CA valid from now for lifetime (0 means
// DefaultCALifetime).
func NewCA(now time.Time, lifetime time.Duration) (*CA, error) {
	if lifetime <= 0 {
		lifetime = DefaultCALifetime
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial in the name tells two clusters' CAs apart in tools
		// that show only the subject.
		Subject:               pkix.Name{Organization: []string{"Tandem"}, CommonName: fmt.Sprintf("Tandem cluster CA %.8s", serial.Text(16))},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // it signs node certificates only
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Fingerprint is the hex SHA-256 of the CA certificate's DER bytes.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert) }

// Fingerprint is the lower-case hex SHA-256 of a certificate's DER bytes,
// the form join tokens carry (and `openssl x509 -fingerprint -sha256`
// prints in upper case with colons).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// SignNode issues a node certificate for id over pub, valid from now for
// lifetime (0 means DefaultNodeLifetime, capped at the CA's own expiry).
// hosts are the host names and IPs the node is reached at; they become DNS
// and IP SANs. The certificate serves both ends of a TLS connection.
func (ca *CA) SignNode(id string, pub crypto.PublicKey, hosts []string, now time.Time, lifetime time.Duration) (*x509.Certificate, error) {
	if ca.Key == nil {
		return nil, errors.New("pki: this node does not hold the CA key")
	}
	if id == "" {
		return nil, errors.New("pki: empty node ID")
	}
	if lifetime <= 0 {
		lifetime = DefaultNodeLifetime
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	uri, err := url.Parse(nodeURIPrefix + url.PathEscape(id))
	if err != nil {
		return nil, fmt.Errorf("pki: node URI: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Tandem"}, CommonName: "tandem node " + id},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{uri},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign node certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// SignCSR issues a node certificate for a PEM certificate request whose
// signature proves possession of its key. The subject and SANs of the
// request are ignored: the signer decides them from id and hosts.
func (ca *CA) SignCSR(csrPEM []byte, id string, hosts []string, now time.Time, lifetime time.Duration) (*x509.Certificate, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	return ca.SignNode(id, csr.PublicKey, hosts, now, lifetime)
}

// NodeID returns the node ID in cert's tandem://node/ URI SAN. It does not
// verify the certificate.
func NodeID(cert *x509.Certificate) (string, bool) {
	for _, u := range cert.URIs {
		s := u.String()
		if rest, ok := strings.CutPrefix(s, nodeURIPrefix); ok && rest != "" {
			id, err := url.PathUnescape(rest)
			return id, err == nil
		}
	}
	return "", false
}

// NewKey generates a node's private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	return key, nil
}

// NewCSR returns a PEM certificate request for node id signed by key.
func NewCSR(id string, key crypto.Signer) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{Organization: []string{"Tandem"}, CommonName: "tandem node " + id},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR decodes a PEM certificate request and checks its signature.
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("pki: not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: certificate request signature: %w", err)
	}
	return csr, nil
}

// NeedsRenewal reports whether less than a third of cert's lifetime is left.
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Sub(now) < life/3
}

// Covers reports whether cert names every host (as an IP or DNS SAN).
func Covers(cert *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// HostsOf returns the hosts of host:port addresses, without duplicates and
// without wildcard listen addresses (0.0.0.0, ::), which name no host.
func HostsOf(addrs ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range addrs {
		if a == "" {
			continue
		}
		h, _, err := net.SplitHostPort(a)
		if err != nil {
			h = a
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
			continue
		}
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

// Bootstrap creates a new cluster CA and the certificate of its first
// node, id, reached at hosts.
func Bootstrap(id string, hosts []string, now time.Time) (*Bundle, error) {
	ca, err := NewCA(now, 0)
	if err != nil {
		return nil, err
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	cert, err := ca.SignNode(id, key.Public(), hosts, now, 0)
	if err != nil {
		return nil, err
	}
	return &Bundle{CAs: []*x509.Certificate{ca.Cert}, CAKey: ca.Key, NodeCert: cert, NodeKey: key}, nil
}
