package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// File names in a node's data folder.
const (
	CACertFile   = "ca.crt"   // PEM; the signing CA first, then any CA still trusted during a CA rotation
	CAKeyFile    = "ca.key"   // PEM PKCS#8, 0600; absent on a node that cannot sign
	NodeCertFile = "node.crt" // PEM; the node certificate
	NodeKeyFile  = "node.key" // PEM PKCS#8, 0600
)

// Bundle is what a node keeps on disk: its certificate and key, and the
// cluster CA (with its key, on nodes that hold it).
type Bundle struct {
	// CAs are the trusted cluster CAs, the signing one first. More than one
	// only while a CA rotation is in progress.
	CAs      []*x509.Certificate
	CAKey    crypto.Signer // nil if not held
	NodeCert *x509.Certificate
	NodeKey  crypto.Signer
}

// CA returns the signing CA (its key is nil if not held).
func (b *Bundle) CA() *CA { return &CA{Cert: b.CAs[0], Key: b.CAKey} }

// HasBundle reports whether dir holds a node certificate.
func HasBundle(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, NodeCertFile))
	return err == nil
}

// Load reads a node's bundle from dir and checks that its parts belong
// together: the node certificate is signed by the first CA, and each key
// matches its certificate.
func Load(dir string) (*Bundle, error) {
	b := &Bundle{}
	var err error
	if b.CAs, err = readCerts(filepath.Join(dir, CACertFile)); err != nil {
		return nil, err
	}
	certs, err := readCerts(filepath.Join(dir, NodeCertFile))
	if err != nil {
		return nil, err
	}
	b.NodeCert = certs[0]
	if b.NodeKey, err = readKey(filepath.Join(dir, NodeKeyFile)); err != nil {
		return nil, err
	}
	if b.CAKey, err = readKey(filepath.Join(dir, CAKeyFile)); errors.Is(err, os.ErrNotExist) {
		b.CAKey = nil
	} else if err != nil {
		return nil, err
	}
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("pki: %s: %w", dir, err)
	}
	return b, nil
}

func (b *Bundle) check() error {
	if err := b.NodeCert.CheckSignatureFrom(b.CAs[0]); err != nil {
		return fmt.Errorf("%s is not signed by the CA in %s: %w", NodeCertFile, CACertFile, err)
	}
	if !samePublicKey(b.NodeCert.PublicKey, b.NodeKey.Public()) {
		return fmt.Errorf("%s does not match %s", NodeKeyFile, NodeCertFile)
	}
	if b.CAKey != nil && !samePublicKey(b.CAs[0].PublicKey, b.CAKey.Public()) {
		return fmt.Errorf("%s does not match %s", CAKeyFile, CACertFile)
	}
	if _, ok := NodeID(b.NodeCert); !ok {
		return fmt.Errorf("%s is not a Tandem node certificate (no tandem://node/ URI)", NodeCertFile)
	}
	return nil
}

// Save writes the bundle to dir (created 0700 if missing). Each file is
// written atomically; keys are 0600. The CA key is written only if held.
func Save(dir string, b *Bundle) error {
	if err := b.check(); err != nil {
		return fmt.Errorf("pki: save: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	var cas []byte
	for _, c := range b.CAs {
		cas = append(cas, CertPEM(c)...)
	}
	key, err := KeyPEM(b.NodeKey)
	if err != nil {
		return err
	}
	// node.crt goes last: it marks a complete bundle (HasBundle), so a
	// crash in between leaves a folder that Reissue (with the CA key) or a
	// new bootstrap or enrollment (without it) completes.
	files := []diskFile{{CACertFile, cas, 0o644}}
	if b.CAKey != nil {
		caKey, err := KeyPEM(b.CAKey)
		if err != nil {
			return err
		}
		files = append(files, diskFile{CAKeyFile, caKey, 0o600})
	}
	files = append(files, diskFile{NodeKeyFile, key, 0o600}, diskFile{NodeCertFile, CertPEM(b.NodeCert), 0o644})
	for _, f := range files {
		if err := WriteFileAtomic(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

type diskFile struct {
	name string
	data []byte
	perm os.FileMode
}

// WriteFileAtomic replaces path with data: it writes a temporary file in
// the same folder with mode perm, syncs it, renames it over path and syncs
// the folder, so a crash leaves either the old file or the new one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("pki: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("pki: sync %s: %w", dir, err)
	}
	return nil
}

// CertPEM encodes a certificate as PEM.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// KeyPEM encodes a private key as PEM PKCS#8.
func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCerts decodes every CERTIFICATE block of PEM data; it fails if
// there is none.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: parse certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("pki: no PEM certificate found")
	}
	return out, nil
}

// ParseKey decodes a PEM private key (PKCS#8, or the EC and PKCS#1 forms
// other tools write).
func ParseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("pki: no PEM private key found")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: parse private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: unsupported private key type %T", k)
	}
	return s, nil
}

func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	certs, err := ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadKeyPair reads a user-supplied certificate chain and key (PEM files)
// for the client-facing API.
func LoadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: load %s / %s: %w", certFile, keyFile, err)
	}
	return &c, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

var _ crypto.Signer = (*ecdsa.PrivateKey)(nil)

// HasCAKey reports whether dir holds the CA key.
func HasCAKey(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, CAKeyFile))
	return err == nil
}

// Reissue gives node id a new key and certificate from the CA (certificate
// and key) kept in dir, and saves them: how a node whose certificate was
// deleted (to renew it at once, or after a CA rotation) gets a new one.
func Reissue(dir, id string, hosts []string, now time.Time) (*Bundle, error) {
	cas, err := readCerts(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	caKey, err := readKey(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	cert, err := (&CA{Cert: cas[0], Key: caKey}).SignNode(id, key.Public(), hosts, now, 0)
	if err != nil {
		return nil, err
	}
	b := &Bundle{CAs: cas, CAKey: caKey, NodeCert: cert, NodeKey: key}
	if err := Save(dir, b); err != nil {
		return nil, err
	}
	return b, nil
}
