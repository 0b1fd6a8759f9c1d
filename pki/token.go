package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// tokenPrefix starts every join token, so a token pasted into the wrong
// place is recognisable and the format can change later.
const tokenPrefix = "TJT1"

// Token is a join token as its holder sees it. The cluster keeps only its
// ID, a hash of its secret, its expiry and whether it was used
// (tandem.JoinToken).
type Token struct {
	ID          string // 16 hex digits, public (it appears in lists and logs)
	Secret      []byte // 32 random bytes
	Fingerprint string // of the cluster CA (Fingerprint)
}

// NewToken returns a token with a fresh ID and secret from crypto/rand.
func NewToken(fingerprint string) (Token, error) {
	var id [8]byte
	secret := make([]byte, 32)
	if _, err := rand.Read(id[:]); err != nil {
		return Token{}, fmt.Errorf("pki: token ID: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Token{}, fmt.Errorf("pki: token secret: %w", err)
	}
	return Token{ID: hex.EncodeToString(id[:]), Secret: secret, Fingerprint: fingerprint}, nil
}

// String is the token's text form: TJT1.<id>.<secret, base64url>.<CA fingerprint, hex>.
func (t Token) String() string {
	return strings.Join([]string{tokenPrefix, t.ID, base64.RawURLEncoding.EncodeToString(t.Secret), t.Fingerprint}, ".")
}

// ParseToken parses the text form of a token.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 4 || parts[0] != tokenPrefix {
		return Token{}, errors.New("pki: not a join token (want TJT1.<id>.<secret>.<fingerprint>, as printed by `tandem token create`)")
	}
	secret, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(secret) < 16 {
		return Token{}, errors.New("pki: join token has a malformed secret")
	}
	if b, err := hex.DecodeString(parts[1]); err != nil || len(b) != 8 {
		return Token{}, errors.New("pki: join token has a malformed ID")
	}
	if b, err := hex.DecodeString(parts[3]); err != nil || len(b) != sha256.Size {
		return Token{}, errors.New("pki: join token has a malformed CA fingerprint")
	}
	return Token{ID: parts[1], Secret: secret, Fingerprint: strings.ToLower(parts[3])}, nil
}

// HashSecret is what the cluster stores of a token's secret. The secret is
// 256 random bits, so a plain SHA-256 cannot be reversed by guessing (a
// password would need a slow hash; this does not).
func HashSecret(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// CheckSecret reports, in constant time, whether secret hashes to hash.
func CheckSecret(hash string, secret []byte) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}
