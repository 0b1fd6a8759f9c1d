package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemdb/tandem"
)

// State is the replicated security state as the authenticator reads it.
// Returned values are shared and must not be modified. Implementations
// must be safe for concurrent use and reflect every applied change.
type State interface {
	User(name string) (*tandem.User, bool)
	// Role returns a stored (not built-in) role.
	Role(name string) (*tandem.Role, bool)
	APIToken(id string) (*tandem.APIToken, bool)
	// HasUsers reports whether any user exists: until the bootstrap node
	// has created the admin, logins are refused as unavailable, not
	// counted as failures (joining nodes retry them).
	HasUsers() bool
}

// Options configure an Authenticator. Zero values get the defaults.
type Options struct {
	State State // required
	// Now is the clock for token expiry, caches and rate limits
	// (default time.Now).
	Now func() time.Time
	// Rand seeds the cache key (default crypto/rand.Reader).
	Rand io.Reader
	// CacheTTL is how long a verified password is remembered (default 1m).
	CacheTTL time.Duration
	// CacheSize bounds the verified-password cache (default 10000).
	CacheSize int
	// UserFailures and AddrFailures bound failed logins per user name and
	// per client address (defaults: 10 and 30 per minute, the same number
	// as burst).
	UserFailures Limit
	AddrFailures Limit
	// MaxConcurrentHashes bounds argon2 computations in flight (default
	// GOMAXPROCS).
	MaxConcurrentHashes int
}

// Limit allows Burst failures at once, refilled at Burst per Per.
type Limit struct {
	Burst int
	Per   time.Duration
}

// Authenticator turns an Authorization header into a Principal. It is safe
// for concurrent use.
type Authenticator struct {
	opts     Options
	cacheKey []byte
	hashes   chan struct{} // semaphore of argon2 computations

	mu    sync.RWMutex           // read on every Basic request, written on misses
	cache map[[32]byte]time.Time // HMAC of (user, password, version) -> expiry
	// flights are the verifications in progress, by cache key: the other
	// requests with the same credentials wait for the one running.
	flights map[[32]byte]*flight
	// verifications counts argon2 verifications (for tests).
	verifications atomic.Int64

	users *limiters
	addrs *limiters

	dummyOnce sync.Once
	dummy     string // hash verified for unknown users, so timing does not tell
}

// New returns an Authenticator.
func New(opts Options) (*Authenticator, error) {
	if opts.State == nil {
		return nil, fmt.Errorf("auth: State is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = time.Minute
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	if opts.UserFailures.Burst <= 0 {
		opts.UserFailures = Limit{Burst: 10, Per: time.Minute}
	}
	if opts.AddrFailures.Burst <= 0 {
		opts.AddrFailures = Limit{Burst: 30, Per: time.Minute}
	}
	if opts.MaxConcurrentHashes <= 0 {
		opts.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	a := &Authenticator{
		opts:     opts,
		cacheKey: make([]byte, 32),
		hashes:   make(chan struct{}, opts.MaxConcurrentHashes),
		cache:    map[[32]byte]time.Time{},
		flights:  map[[32]byte]*flight{},
		users:    newLimiters(opts.UserFailures, opts.Now),
		addrs:    newLimiters(opts.AddrFailures, opts.Now),
	}
	if _, err := io.ReadFull(opts.Rand, a.cacheKey); err != nil {
		return nil, fmt.Errorf("auth: read cache key: %w", err)
	}
	return a, nil
}

// Failure is an authentication failure with the identity it claimed, for
// the audit log.
type Failure struct {
	Err  error  // CodeUnauthenticated or CodeRateLimited (*RateLimited)
	User string // the user name or token ID presented, if any
	// Counted is set for failures that count towards the limits (bad
	// credentials), not for missing credentials or rate-limited requests.
	Counted bool
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// RateLimited is the error for a client that failed too often.
type RateLimited struct {
	RetryAfter time.Duration
}

func (e *RateLimited) Error() string {
	return fmt.Sprintf("tandem: too many failed logins; retry in %v", e.RetryAfter.Round(time.Second))
}

// Unwrap gives the error its CodeRateLimited code.
func (e *RateLimited) Unwrap() error {
	return tandem.Errorf(tandem.CodeRateLimited, "too many failed logins; retry in %d seconds", int(e.RetryAfter.Seconds()+0.999))
}

var errNoCredentials = tandem.Errorf(tandem.CodeUnauthenticated, "authentication required: send HTTP Basic credentials or Authorization: Bearer <API token>")

// Authenticate checks the Authorization header of a request from client
// address addr (host, no port). It returns the principal, or a *Failure.
func (a *Authenticator) Authenticate(ctx context.Context, header, addr string) (*Principal, error) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case header == "":
		return nil, &Failure{Err: errNoCredentials}
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(cred)
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok || user == "" {
			return nil, a.fail(addr, "", "malformed Basic credentials")
		}
		return a.basic(ctx, user, pass, addr)
	case strings.EqualFold(scheme, "Bearer"):
		return a.bearer(cred, addr)
	}
	return nil, &Failure{Err: tandem.Errorf(tandem.CodeUnauthenticated, "unsupported authorization scheme %q: use Basic or Bearer", scheme)}
}

// fail counts a failure against addr and user and returns it.
func (a *Authenticator) fail(addr, user, msg string) error {
	a.addrs.fail(addr)
	if user != "" {
		a.users.fail(user)
	}
	return &Failure{Err: tandem.Errorf(tandem.CodeUnauthenticated, "%s", msg), User: user, Counted: true}
}

// limited returns a *Failure if addr or user may not try again yet.
func (a *Authenticator) limited(addr, user string) error {
	wait := a.addrs.wait(addr)
	if user != "" {
		wait = max(wait, a.users.wait(user))
	}
	if wait > 0 {
		return &Failure{Err: &RateLimited{RetryAfter: wait}, User: user}
	}
	return nil
}

func (a *Authenticator) basic(ctx context.Context, name, pass, addr string) (*Principal, error) {
	if err := a.limited(addr, name); err != nil {
		return nil, err
	}
	const bad = "wrong user name or password"
	if len(pass) > MaxPasswordLen || len(name) > tandem.MaxNameLen {
		return nil, a.fail(addr, name, bad)
	}
	u, ok := a.opts.State.User(name)
	if !ok && !a.opts.State.HasUsers() {
		return nil, &Failure{Err: tandem.Errorf(tandem.CodeUnavailable, "no users exist yet: the bootstrap node creates the admin user once it leads the cluster")}
	}
	if !ok {
		// Spend the same time as for a real user, so response times do
		// not reveal which names exist.
		a.dummyOnce.Do(func() { a.dummy, _ = HashPassword("dummy", DefaultParams(), a.opts.Rand) })
		_, _ = a.verify(ctx, a.dummy, pass)
		return nil, a.fail(addr, name, bad)
	}
	key := a.key(u, pass)
	now := a.opts.Now()
	a.mu.RLock()
	exp, hit := a.cache[key]
	a.mu.RUnlock()
	if !hit || now.After(exp) {
		okPass, err := a.verifyShared(ctx, key, u.PasswordHash, pass)
		if err != nil {
			return nil, err
		}
		if !okPass {
			return nil, a.fail(addr, name, bad)
		}
		a.remember(key, now.Add(a.opts.CacheTTL))
	}
	return &Principal{User: u.Name, Perms: a.perms(u)}, nil
}

// flight is one verification that requests with the same credentials
// share.
type flight struct {
	done chan struct{} // closed once ok and err are set
	ok   bool
	err  error
}

// verifyShared verifies pass once for every concurrent request with the
// same cache key (user, password, user version). When a cached
// verification expires, all of a busy client's requests miss at once:
// each running argon2 (tens of ms of CPU, a few at a time) stalled them
// all for over a second (docs/benchmarks.md). A request whose shared
// verification ended in an error (the first request's timeout) verifies
// on its own.
func (a *Authenticator) verifyShared(ctx context.Context, key [32]byte, hash, pass string) (bool, error) {
	a.mu.Lock()
	if f := a.flights[key]; f != nil {
		a.mu.Unlock()
		select {
		case <-f.done:
			if f.err == nil {
				return f.ok, nil
			}
			return a.verify(ctx, hash, pass)
		case <-ctx.Done():
			return false, tandem.WrapError(tandem.CodeTimeout, ctx.Err(), "authentication timed out")
		}
	}
	f := &flight{done: make(chan struct{})}
	a.flights[key] = f
	a.mu.Unlock()
	f.ok, f.err = a.verify(ctx, hash, pass)
	a.mu.Lock()
	delete(a.flights, key)
	a.mu.Unlock()
	close(f.done)
	return f.ok, f.err
}

// HashPassword hashes a new password under the same bound on concurrent
// argon2 computations as logins, so password changes cannot starve the
// node either.
func (a *Authenticator) HashPassword(ctx context.Context, password string, p Params) (string, error) {
	select {
	case a.hashes <- struct{}{}:
	case <-ctx.Done():
		return "", tandem.WrapError(tandem.CodeTimeout, ctx.Err(), "hashing the password timed out")
	}
	defer func() { <-a.hashes }()
	return HashPassword(password, p, a.opts.Rand)
}

// verify runs argon2 under the semaphore. Its error is a timeout or
// cancellation while waiting, or a malformed stored hash (which fails the
// login like a wrong password).
func (a *Authenticator) verify(ctx context.Context, hash, pass string) (bool, error) {
	select {
	case a.hashes <- struct{}{}:
	case <-ctx.Done():
		return false, tandem.WrapError(tandem.CodeTimeout, ctx.Err(), "authentication timed out")
	}
	defer func() { <-a.hashes }()
	a.verifications.Add(1)
	ok, err := VerifyPassword(hash, pass)
	if err != nil {
		return false, nil
	}
	return ok, nil
}

func (a *Authenticator) bearer(token, addr string) (*Principal, error) {
	if err := a.limited(addr, ""); err != nil {
		return nil, err
	}
	id, secret, err := ParseToken(token)
	if err != nil {
		return nil, a.fail(addr, "", "malformed API token")
	}
	const bad = "unknown, revoked or expired API token"
	t, ok := a.opts.State.APIToken(id)
	if !ok || !secretMatches(secret, t.Hash) {
		return nil, a.fail(addr, "", bad)
	}
	if t.Expires != 0 && a.opts.Now().UnixNano() >= t.Expires {
		return nil, a.fail(addr, "", bad)
	}
	u, ok := a.opts.State.User(t.Owner)
	if !ok {
		return nil, a.fail(addr, "", bad)
	}
	return &Principal{User: u.Name, TokenID: t.ID, Perms: a.perms(u)}, nil
}

// perms compiles u's current permissions (UserPerms).
func (a *Authenticator) perms(u *tandem.User) *Perms { return UserPerms(a.opts.State, u) }

// UserPerms compiles u's current permissions: built-in roles from the
// vocabulary, the others from st (a role deleted since is skipped). An API
// token's permissions are its owner's.
func UserPerms(st State, u *tandem.User) *Perms {
	roles := make([]*tandem.Role, 0, len(u.Roles))
	for _, name := range u.Roles {
		if r := tandem.BuiltinRole(name); r != nil {
			roles = append(roles, r)
		} else if r, ok := st.Role(name); ok {
			roles = append(roles, r)
		}
	}
	return Compile(roles...)
}

// key is the cache key of a successful verification: an HMAC, so that the
// cache's memory holds nothing a password could be checked against
// offline without the process's random key.
func (a *Authenticator) key(u *tandem.User, pass string) [32]byte {
	m := hmac.New(sha256.New, a.cacheKey)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(u.Name)))
	m.Write(n[:])
	m.Write([]byte(u.Name))
	binary.BigEndian.PutUint64(n[:], u.Version)
	m.Write(n[:])
	m.Write([]byte(pass))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func (a *Authenticator) remember(key [32]byte, exp time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= a.opts.CacheSize {
		now := a.opts.Now()
		for k, e := range a.cache {
			if now.After(e) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= a.opts.CacheSize {
			clear(a.cache) // all live: start over rather than grow
		}
	}
	a.cache[key] = exp
}

// Verify checks name's password like a Basic login (same rate limits,
// same failure accounting), for operations that ask for the current
// password again.
func (a *Authenticator) Verify(ctx context.Context, name, password, addr string) (*Principal, error) {
	return a.basic(ctx, name, password, addr)
}
