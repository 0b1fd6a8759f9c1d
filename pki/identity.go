package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// PeerServerName is the TLS server name (SNI) a node asks for when it
// calls another node's HTTP listener. It names no host: it tells a node
// serving a user-supplied API certificate (--tls-cert) to present its
// cluster node certificate instead, which is what peers verify.
const PeerServerName = "node.tandem.invalid"

// Identity is a node's TLS identity: its certificate under the cluster CA,
// the CAs it trusts, and optionally a user-supplied certificate for
// clients of the API. The TLS configurations it returns read the current
// node certificate at every handshake, so SetNodeCert takes effect at once.
// Safe for concurrent use.
type Identity struct {
	id   string
	cas  []*x509.Certificate
	pool *x509.CertPool
	ca   atomic.Pointer[CA] // the signing CA, with its key if held
	node atomic.Pointer[tls.Certificate]
	api  *tls.Certificate // nil: clients get the node certificate
	now  func() time.Time
}

// NewIdentity builds an identity from a node's bundle. apiCert, if not
// nil, is served to API clients that do not ask for PeerServerName.
func NewIdentity(b *Bundle, apiCert *tls.Certificate, now func() time.Time) (*Identity, error) {
	id, ok := NodeID(b.NodeCert)
	if !ok {
		return nil, errors.New("pki: node certificate has no tandem://node/ URI")
	}
	if now == nil {
		now = time.Now
	}
	ident := &Identity{id: id, cas: b.CAs, pool: x509.NewCertPool(), api: apiCert, now: now}
	for _, c := range b.CAs {
		ident.pool.AddCert(c)
	}
	ident.ca.Store(b.CA())
	ident.SetNodeCert(b.NodeCert, b.NodeKey)
	return ident, nil
}

// NodeID is the ID in this node's certificate.
func (i *Identity) NodeID() string { return i.id }

// CA returns the signing CA; its Key is nil if this node does not hold it.
func (i *Identity) CA() *CA { return i.ca.Load() }

// CAPEM returns the trusted CA certificates as PEM, the signing CA first.
func (i *Identity) CAPEM() []byte {
	var out []byte
	for _, c := range i.cas {
		out = append(out, CertPEM(c)...)
	}
	return out
}

// Pool is the set of trusted CAs.
func (i *Identity) Pool() *x509.CertPool { return i.pool }

// NodeCert returns the current node certificate.
func (i *Identity) NodeCert() *x509.Certificate { return i.node.Load().Leaf }

// SetNodeCert replaces the node certificate (after a renewal). The chain
// sent to peers is the certificate followed by the signing CA, so that a
// joining node can find the CA it pins by fingerprint.
func (i *Identity) SetNodeCert(cert *x509.Certificate, key any) {
	i.node.Store(&tls.Certificate{
		Certificate: [][]byte{cert.Raw, i.cas[0].Raw},
		PrivateKey:  key,
		Leaf:        cert,
	})
}

// APIServerConfig is the configuration of the HTTP listener. It serves
// the user-supplied certificate (or the node certificate) to clients, and
// the node certificate to peers asking for PeerServerName. A client
// certificate is optional, but one that does not chain to the cluster CA
// fails the handshake; handlers learn the peer's node ID from PeerNodeID.
func (i *Identity) APIServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12, // API clients: curl and browsers of every age
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if i.api != nil && hello.ServerName != PeerServerName {
				return i.api, nil
			}
			return i.node.Load(), nil
		},
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  i.pool,
	}
}

// PeerServerConfig is the configuration of the Raft listener: TLS 1.3,
// and only a client presenting a node certificate of the cluster CA gets
// through the handshake.
func (i *Identity) PeerServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return i.node.Load(), nil
		},
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  i.pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if _, ok := PeerNodeID(&cs); !ok {
				return errors.New("pki: client certificate is not a Tandem node certificate")
			}
			return nil
		},
	}
}

// PeerClientConfig is the configuration for calling other nodes (Raft and
// internal HTTP): TLS 1.3, this node's certificate as client certificate,
// and a server that must present a node certificate of the cluster CA.
//
// The server's host name is not checked, on purpose: nodes are identified
// by the CA and their node URI, not by the addresses they advertise, which
// may differ from those in their certificate (NAT, a new port or IP).
// InsecureSkipVerify only turns off Go's built-in check, which would also
// check the host name; VerifyConnection does the chain check itself.
func (i *Identity) PeerClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: PeerServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return i.node.Load(), nil
		},
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyNode(cs.PeerCertificates, i.pool, i.now(), x509.ExtKeyUsageServerAuth)
		},
	}
}

// verifyNode checks that certs[0] chains to a CA in roots (certs[1:] may be
// intermediates) and is a node certificate.
func verifyNode(certs []*x509.Certificate, roots *x509.CertPool, now time.Time, usage x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		return errors.New("pki: peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{usage},
	}); err != nil {
		return fmt.Errorf("pki: peer certificate: %w", err)
	}
	if _, ok := NodeID(certs[0]); !ok {
		return errors.New("pki: peer certificate is not a Tandem node certificate")
	}
	return nil
}

// PeerNodeID returns the node ID of the verified client certificate of a
// TLS connection, and false if the client presented none, or one that the
// TLS layer did not verify against the cluster CA, or one that is not a
// node certificate.
func PeerNodeID(cs *tls.ConnectionState) (string, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", false
	}
	return NodeID(cs.VerifiedChains[0][0])
}

// Renew issues this node a new certificate with a new key, if it holds the
// CA key and less than a third of the current one's lifetime is left (or
// force is set). It returns the new bundle to save, or nil if nothing was
// done. hosts are the node's current hosts. The caller saves the bundle
// before calling SetNodeCert, so a crash never leaves a node serving a
// certificate it has not kept.
func (i *Identity) Renew(hosts []string, force bool) (*Bundle, error) {
	ca := i.CA()
	now := i.now()
	if ca.Key == nil || (!force && !NeedsRenewal(i.NodeCert(), now)) {
		return nil, nil
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	cert, err := ca.SignNode(i.id, key.Public(), hosts, now, 0)
	if err != nil {
		return nil, err
	}
	return &Bundle{CAs: i.cas, CAKey: ca.Key, NodeCert: cert, NodeKey: key}, nil
}
