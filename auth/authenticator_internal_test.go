package auth

import (
	"context"
	"encoding/base64"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
)

// oneUser is a State holding one user.
type oneUser struct{ u *tandem.User }

func (s oneUser) User(name string) (*tandem.User, bool) {
	if name == s.u.Name {
		return s.u, true
	}
	return nil, false
}
func (oneUser) Role(string) (*tandem.Role, bool)         { return nil, false }
func (oneUser) APIToken(string) (*tandem.APIToken, bool) { return nil, false }
func (oneUser) HasUsers() bool                           { return true }

// TestExpiredCacheVerifiesOnce: when a cached verification expires, the
// requests that arrive together with the same credentials share one
// argon2 verification instead of each running (and queueing for) its own;
// other credentials are not held by it.
func TestExpiredCacheVerifiesOnce(t *testing.T) {
	hash, err := HashPassword("secret-pw", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).UnixNano())
	a, err := New(Options{State: oneUser{&tandem.User{Name: "ann", PasswordHash: hash, Version: 1}},
		Now: func() time.Time { return time.Unix(0, now.Load()) }, CacheTTL: time.Minute, MaxConcurrentHashes: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	header := "Basic " + base64.StdEncoding.EncodeToString([]byte("ann:secret-pw"))
	if _, err := a.Authenticate(ctx, header, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(2 * time.Minute)) // the cached verification expired

	a.hashes <- struct{}{} // hold the only argon2 slot: the first miss waits in its flight
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := a.Authenticate(ctx, header, "10.0.0.1"); err != nil {
				errs <- err
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let them all miss (the count below holds however many did)
	<-a.hashes
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("request after expiry: %v", err)
	}
	if n := a.verifications.Load(); n != 2 {
		t.Fatalf("%d argon2 verifications; want 2 (the first login, then one for all 16 requests after expiry)", n)
	}
	// A wrong password is its own flight, and fails.
	wrong := "Basic " + base64.StdEncoding.EncodeToString([]byte("ann:wrong"))
	if _, err := a.Authenticate(ctx, wrong, "10.0.0.2"); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
		t.Fatalf("wrong password: %v; want unauthenticated", err)
	}
}
