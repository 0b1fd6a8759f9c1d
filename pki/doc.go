// Package pki is a Tandem cluster's public key infrastructure: the cluster
// certificate authority, node certificates, join tokens, and the TLS
// configurations built from them.
//
// # Model
//
// Bootstrapping the first node creates a CA (ECDSA P-256, self-signed,
// DefaultCALifetime) and a node certificate signed by it. Every node
// certificate carries a URI SAN tandem://node/<id>: the CA signs nothing
// else without it, so a peer that presents a certificate chaining to the
// cluster CA and carrying that SAN is a cluster node with that ID. Host
// names and IPs of the node's addresses are SANs too, so clients can check
// them in the usual way; node-to-node connections check the CA and the
// node SAN instead, because advertised addresses change (NAT, restarts on
// other ports) while membership does not.
//
// A node's files live in its data folder (Files): ca.crt, ca.key, node.crt,
// node.key. Private keys are written 0600, atomically (temporary file,
// fsync, rename). Every voter holds the CA key, so any surviving voter can
// admit new nodes and renew certificates after the first node is gone;
// docs/security.md discusses what that costs.
//
// A joining node holds a join token (Token): an ID, a 256-bit secret and
// the SHA-256 fingerprint of the CA certificate. It pins the CA by that
// fingerprint when it first connects (PinnedClientConfig), so it needs no
// other trust anchor, and proves the secret to obtain its certificate.
// Only a hash of the secret (HashSecret) is replicated.
//
// Nothing here holds package-level mutable state; an Identity's
// certificate can be replaced while it serves (Identity.SetNodeCert).
package pki
