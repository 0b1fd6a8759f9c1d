package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/tandemdb/tandem"
)

// API tokens look like tdk_<id>_<secret>: the prefix lets secret scanners
// and people recognise them, the ID (8 random bytes in hex) names the
// token in lists, revocations and the audit log, and the secret is 32
// random bytes (256 bits) in unpadded base64url.
const (
	tokenPrefix    = "tdk_"
	tokenSecretLen = 32
	tokenLen       = len(tokenPrefix) + 16 + 1 + 43
)

// NewToken returns a fresh token: the string shown once to its owner, its
// ID, and the hex SHA-256 of its secret to store. rnd is crypto/rand.Reader
// if nil.
func NewToken(rnd io.Reader) (token, id, hash string, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [8 + tokenSecretLen]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", "", "", fmt.Errorf("auth: read token randomness: %w", err)
	}
	id = hex.EncodeToString(b[:8])
	secret := base64.RawURLEncoding.EncodeToString(b[8:])
	return tokenPrefix + id + "_" + secret, id, SecretHash(secret), nil
}

// ParseToken splits a token into its ID and secret.
func ParseToken(token string) (id, secret string, err error) {
	bad := tandem.Errorf(tandem.CodeUnauthenticated, "malformed API token")
	if len(token) != tokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return "", "", bad
	}
	id, secret, ok := strings.Cut(token[len(tokenPrefix):], "_")
	if !ok || tandem.ValidateTokenID(id) != nil {
		return "", "", bad
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil || len(b) != tokenSecretLen {
		return "", "", bad
	}
	return id, secret, nil
}

// SecretHash is the stored form of a token secret: hex SHA-256.
func SecretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// secretMatches compares a presented secret with a stored hash in
// constant time.
func secretMatches(secret, storedHash string) bool {
	return subtle.ConstantTimeCompare([]byte(SecretHash(secret)), []byte(storedHash)) == 1
}
