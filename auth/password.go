package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id parameters. They are stored in every hash, so
// changing DefaultParams affects new hashes only.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultParams returns the parameters for new hashes: 19 MiB, 2 passes, 1 thread (the first of OWASP's argon2id
// configurations). One thread, because a node has few cores and also runs
// Raft: a login occupies one core for ~20-40 ms instead of all of them.
// 19 MiB, because logins run concurrently (bounded by
// MaxConcurrentHashes): at 64 MiB (libsodium's interactive setting) a burst
// of logins on a small node would cost hundreds of MB. Two passes make up
// for the smaller memory, as OWASP's table suggests.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds accepted when parsing a stored hash, so that a corrupt or hostile
// hash cannot make verification allocate gigabytes or spin for minutes.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 32
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// ErrMalformedHash is returned for a stored hash that does not parse.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// MaxPasswordLen bounds passwords: argon2 itself has no practical limit,
// but a megabyte password should be refused rather than hashed.
const MaxPasswordLen = 1024

// HashPassword returns the argon2id hash of password in the PHC string
// format: $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<key>, with
// unpadded standard base64. rnd supplies the salt (crypto/rand.Reader if
// nil).
func HashPassword(password string, p Params, rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return "", fmt.Errorf("auth: read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches hash, comparing in
// constant time. It fails only for a malformed hash.
func VerifyPassword(hash, password string) (bool, error) {
	p, salt, key, err := ParseHash(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// ParseHash splits a hash written by HashPassword, checking that its
// parameters are within sane bounds.
func ParseHash(hash string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrMalformedHash
	}
	var m, t, th uint64
	for i, kv := range strings.Split(parts[3], ",") {
		name, val, ok := strings.Cut(kv, "=")
		n, perr := strconv.ParseUint(val, 10, 32)
		if !ok || perr != nil || i > 2 || name != "mtp"[i:i+1] {
			return p, nil, nil, ErrMalformedHash
		}
		switch i {
		case 0:
			m = n
		case 1:
			t = n
		case 2:
			th = n
		}
	}
	if m == 0 || m > maxMemory || t == 0 || t > maxTime || th == 0 || th > maxThreads || m < 8*th {
		return p, nil, nil, ErrMalformedHash
	}
	salt, err1 := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen || len(key) < minKeyLen || len(key) > maxKeyLen {
		return p, nil, nil, ErrMalformedHash
	}
	p = Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(th), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	return p, salt, key, nil
}
