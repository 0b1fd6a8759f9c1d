package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
)

// cheap are argon2id parameters that keep tests fast.
var cheap = auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordHash(t *testing.T) {
	h, err := auth.HashPassword("correct horse", cheap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q does not carry its parameters", h)
	}
	h2, _ := auth.HashPassword("correct horse", cheap, nil)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct horse", true}, {"correct horsE", false}, {"", false}, {"correct horse ", false}} {
		ok, err := auth.VerifyPassword(h, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	// The default parameters are what the docs say, and work.
	if p := auth.DefaultParams(); p.Memory != 19*1024 || p.Time != 2 || p.Threads != 1 {
		t.Errorf("DefaultParams = %+v", p)
	}
}

func TestParseHashRejects(t *testing.T) {
	good, _ := auth.HashPassword("x", cheap, bytes.NewReader(make([]byte, 16)))
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":         "",
		"bcrypt":        "$2a$10$abcdefghijklmnopqrstuu",
		"argon2i":       strings.Replace(good, "argon2id", "argon2i", 1),
		"version":       strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":   strings.Replace(good, "m=64", "m=4194304", 1),
		"zero time":     strings.Replace(good, "t=1", "t=0", 1),
		"many threads":  strings.Replace(good, "p=1", "p=255", 1),
		"param order":   strings.Replace(good, "m=64,t=1,p=1", "t=1,m=64,p=1", 1),
		"short salt":    strings.Join(append(parts[:4:4], "AAAA", parts[5]), "$"),
		"padded base64": good + "=",
		"extra field":   good + "$x",
	} {
		if _, _, _, err := auth.ParseHash(h); !errors.Is(err, auth.ErrMalformedHash) {
			t.Errorf("%s: ParseHash(%q) = %v; want ErrMalformedHash", name, h, err)
		}
		if ok, err := auth.VerifyPassword(h, "x"); ok || err == nil {
			t.Errorf("%s: VerifyPassword = %v, %v; want an error", name, ok, err)
		}
	}
}

func TestTokenFormat(t *testing.T) {
	tok, id, hash, err := auth.NewToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "tdk_"+id+"_") || len(tok) != 4+16+1+43 || len(hash) != 64 {
		t.Fatalf("token %q id %q hash %q", tok, id, hash)
	}
	gotID, secret, err := auth.ParseToken(tok)
	if err != nil || gotID != id || auth.SecretHash(secret) != hash {
		t.Fatalf("ParseToken = %q, %q, %v", gotID, secret, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(secret)
	if len(raw) != 32 {
		t.Fatalf("secret has %d bytes, want 32 (256 bits)", len(raw))
	}
	_, id2, _, _ := auth.NewToken(nil)
	if id2 == id {
		t.Fatal("two tokens share an ID")
	}
	for _, bad := range []string{"", tok[:len(tok)-1], "tdk_" + strings.ToUpper(id) + tok[20:], strings.Replace(tok, "tdk_", "tdx_", 1), tok[:21] + "!" + tok[22:]} {
		if _, _, err := auth.ParseToken(bad); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
			t.Errorf("ParseToken(%q) = %v; want unauthenticated", bad, err)
		}
	}
}

func TestPermissions(t *testing.T) {
	nurse := &tandem.Role{Name: "nurse", Permissions: []tandem.Permission{
		{Action: tandem.ActTableRead, Resource: "patients", Except: []string{"diagnosis", "ssn"}},
		{Action: tandem.ActTableUpdate, Resource: "patients", Attributes: []string{"notes", "ward"}},
		{Action: tandem.ActContractCall, Resource: "admit"},
	}}
	doctor := &tandem.Role{Name: "doctor", Permissions: []tandem.Permission{
		{Action: tandem.ActTableRead, Resource: "patients", Except: []string{"ssn"}},
	}}
	p := auth.Compile(nurse)
	both := auth.Compile(nurse, doctor, nil)
	writer := auth.Compile(tandem.BuiltinRole("writer"))
	admin := auth.Compile(tandem.BuiltinRole("admin"))

	for _, tc := range []struct {
		name     string
		p        *auth.Perms
		action   tandem.Action
		resource string
		want     bool
	}{
		{"nurse reads patients", p, tandem.ActTableRead, "patients", true},
		{"nurse reads other tables", p, tandem.ActTableRead, "billing", false},
		{"nurse deletes", p, tandem.ActTableDelete, "patients", false},
		{"nurse calls admit", p, tandem.ActContractCall, "admit", true},
		{"nurse deploys admit", p, tandem.ActContractDeploy, "admit", false},
		{"nurse is no admin", p, tandem.ActClusterAdmin, "", false},
		{"writer writes anything", writer, tandem.ActTableInsert, "billing", true},
		{"writer changes no schema", writer, tandem.ActTableAdmin, "billing", false},
		{"writer calls no contract", writer, tandem.ActContractCall, "admit", false},
		{"admin does everything", admin, tandem.ActContractDeploy, "x", true},
		{"no roles, nothing", auth.Compile(), tandem.ActTableRead, "patients", false},
		{"nil perms, nothing", nil, tandem.ActTableRead, "patients", false},
	} {
		if got := tc.p.Allows(tc.action, tc.resource); got != tc.want {
			t.Errorf("%s: Allows(%s, %q) = %v", tc.name, tc.action, tc.resource, got)
		}
	}

	for _, tc := range []struct {
		name   string
		p      *auth.Perms
		action tandem.Action
		attr   string
		want   bool
	}{
		{"nurse reads name", p, tandem.ActTableRead, "name", true},
		{"nurse reads no diagnosis", p, tandem.ActTableRead, "diagnosis", false},
		{"primary key always", p, tandem.ActTableRead, "id", true},
		{"nurse writes notes", p, tandem.ActTableUpdate, "notes", true},
		{"nurse writes no name", p, tandem.ActTableUpdate, "name", false},
		{"union: doctor adds diagnosis", both, tandem.ActTableRead, "diagnosis", true},
		{"union: nobody reads ssn", both, tandem.ActTableRead, "ssn", false},
		{"writer reads all", writer, tandem.ActTableRead, "ssn", true},
	} {
		set := tc.p.Attrs(tc.action, "patients", "id")
		if got := set.Covers(tc.attr); got != tc.want {
			t.Errorf("%s: Covers(%q) = %v", tc.name, tc.attr, got)
		}
	}
	if !writer.Attrs(tandem.ActTableRead, "patients", "id").All() || p.Attrs(tandem.ActTableRead, "patients", "id").All() {
		t.Error("All() is wrong")
	}
	if !p.Attrs(tandem.ActTableDelete, "patients", "id").None() || p.Attrs(tandem.ActTableRead, "patients", "id").None() {
		t.Error("None() is wrong")
	}
	if set := p.Attrs(tandem.ActTableRead, "billing", "id"); set.Covers("id") {
		t.Error("the primary key is covered on a table without a grant")
	}
}

func TestParsePermission(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want tandem.Permission
		err  string
	}{
		{in: "cluster.admin", want: tandem.Permission{Action: tandem.ActClusterAdmin}},
		{in: "table.read:*", want: tandem.Permission{Action: tandem.ActTableRead, Resource: "*"}},
		{in: "table.read:patients:-diagnosis,-ssn", want: tandem.Permission{Action: tandem.ActTableRead, Resource: "patients", Except: []string{"diagnosis", "ssn"}}},
		{in: "table.update:patients:notes,ward", want: tandem.Permission{Action: tandem.ActTableUpdate, Resource: "patients", Attributes: []string{"notes", "ward"}}},
		{in: "contract.call:transfer", want: tandem.Permission{Action: tandem.ActContractCall, Resource: "transfer"}},
		{in: "table.read", err: "resource must be"},
		{in: "cluster.admin:x", err: "takes no resource"},
		{in: "table.delete:t:a", err: "cannot restrict attributes"},
		{in: "table.read:t:", err: "empty attribute list"},
		{in: "table.drop:t", err: "is not one of"},
		{in: "table.read:t:a,,b", err: "attribute name is empty"},
	} {
		got, err := auth.ParsePermission(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(tandem.ErrorMessage(err), tc.err) {
				t.Errorf("ParsePermission(%q) = %v; want an error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || auth.FormatPermission(got) != auth.FormatPermission(tc.want) || auth.FormatPermission(got) != tc.in {
			t.Errorf("ParsePermission(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParsePermission: the parser never panics, and what it accepts is
// valid and formats back to an equivalent permission.
func FuzzParsePermission(f *testing.F) {
	for _, s := range []string{"cluster.admin", "table.read:*", "table.read:patients:-diagnosis", "table.update:t:a,b,-c", "contract.call:x", "::", "table.read:t:-", "table.read:t:a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := auth.ParsePermission(s)
		if err != nil {
			if tandem.ErrorCode(err) != tandem.CodeInvalid {
				t.Fatalf("error %v is not CodeInvalid", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted %q but it does not validate: %v", s, err)
		}
		back, err := auth.ParsePermission(auth.FormatPermission(p))
		if err != nil || auth.FormatPermission(back) != auth.FormatPermission(p) {
			t.Fatalf("%q -> %+v does not round trip: %+v, %v", s, p, back, err)
		}
	})
}

// FuzzParseHash: stored hashes are parsed on every cache miss; a corrupt
// one must fail cleanly and never ask for unbounded work.
func FuzzParseHash(f *testing.F) {
	h, _ := auth.HashPassword("x", cheap, bytes.NewReader(make([]byte, 16)))
	f.Add(h)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=1,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := auth.ParseHash(s)
		if err != nil {
			return
		}
		if p.Memory > 1<<20 || p.Time > 32 || p.Threads > 16 || len(salt) < 8 || len(key) < 16 {
			t.Fatalf("accepted out-of-bounds %+v", p)
		}
	})
}

// state is an in-memory auth.State.
type state struct {
	mu     sync.Mutex
	users  map[string]*tandem.User
	roles  map[string]*tandem.Role
	tokens map[string]*tandem.APIToken
}

func (s *state) User(n string) (*tandem.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[n]
	return u, ok
}
func (s *state) HasUsers() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.users) > 0 }
func (s *state) Role(n string) (*tandem.Role, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[n]
	return r, ok
}
func (s *state) APIToken(id string) (*tandem.APIToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	return t, ok
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func basic(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }

func newAuth(t *testing.T) (*auth.Authenticator, *state, *clock) {
	t.Helper()
	h, _ := auth.HashPassword("secret-pw", cheap, nil)
	st := &state{
		users: map[string]*tandem.User{
			"ann":  {Name: "ann", PasswordHash: h, Roles: []string{"reader", "nurse"}, Version: 3},
			"root": {Name: "root", PasswordHash: h, Roles: []string{"admin"}, Version: 1},
		},
		roles: map[string]*tandem.Role{"nurse": {Name: "nurse", Permissions: []tandem.Permission{{Action: tandem.ActContractCall, Resource: "admit"}}}},
	}
	st.tokens = map[string]*tandem.APIToken{}
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	a, err := auth.New(auth.Options{State: st, Now: clk.Now,
		UserFailures: auth.Limit{Burst: 3, Per: time.Minute}, AddrFailures: auth.Limit{Burst: 5, Per: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	return a, st, clk
}

func TestAuthenticateBasic(t *testing.T) {
	a, st, _ := newAuth(t)
	ctx := context.Background()
	p, err := a.Authenticate(ctx, basic("ann", "secret-pw"), "10.0.0.1")
	if err != nil || p.User != "ann" || p.TokenID != "" {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	// Roles: built-in reader plus the stored nurse.
	if !p.Perms.Allows(tandem.ActTableRead, "x") || !p.Perms.Allows(tandem.ActContractCall, "admit") || p.Perms.Admin() {
		t.Fatalf("permissions of ann are wrong")
	}
	for name, h := range map[string]string{
		"none":          "",
		"wrong":         basic("ann", "secret-pW"),
		"unknown user":  basic("bob", "secret-pw"),
		"bad base64":    "Basic !!!",
		"no colon":      "Basic " + base64.StdEncoding.EncodeToString([]byte("ann")),
		"other scheme":  "Digest x",
		"bearer basic":  "Bearer " + base64.StdEncoding.EncodeToString([]byte("ann:secret-pw")),
		"empty user":    basic("", "secret-pw"),
		"long password": basic("zed", strings.Repeat("x", auth.MaxPasswordLen+1)),
	} {
		if _, err := a.Authenticate(ctx, h, "10.0.0."+name); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
			t.Errorf("%s: %v; want unauthenticated", name, err)
		}
	}

	// A successful verification is cached, keyed by the user's version:
	// with the hash swapped but the version unchanged the old password
	// still works from the cache; a new version (any change) forgets it.
	st.mu.Lock()
	h2, _ := auth.HashPassword("new-password", cheap, nil)
	st.users["ann"] = &tandem.User{Name: "ann", PasswordHash: h2, Roles: []string{"reader"}, Version: 3}
	st.mu.Unlock()
	if _, err := a.Authenticate(ctx, basic("ann", "secret-pw"), "10.0.0.1"); err != nil {
		t.Fatalf("cached verification not used: %v", err)
	}
	st.mu.Lock()
	st.users["ann"] = &tandem.User{Name: "ann", PasswordHash: h2, Roles: []string{"reader"}, Version: 4}
	st.mu.Unlock()
	if _, err := a.Authenticate(ctx, basic("ann", "secret-pw"), "10.0.0.1"); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
		t.Fatalf("old password after a change: %v; want unauthenticated", err)
	}
	if _, err := a.Authenticate(ctx, basic("ann", "new-password"), "10.0.0.1"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	// A deleted user is refused at once, cache or not.
	st.mu.Lock()
	delete(st.users, "ann")
	st.mu.Unlock()
	if _, err := a.Authenticate(ctx, basic("ann", "new-password"), "10.0.0.1"); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
		t.Fatalf("deleted user: %v", err)
	}
}

func TestAuthenticateToken(t *testing.T) {
	a, st, clk := newAuth(t)
	ctx := context.Background()
	tok, id, hash, _ := auth.NewToken(nil)
	st.tokens[id] = &tandem.APIToken{ID: id, Owner: "ann", Hash: hash, Expires: clk.Now().Add(time.Hour).UnixNano()}
	p, err := a.Authenticate(ctx, "Bearer "+tok, "10.0.0.1")
	if err != nil || p.User != "ann" || p.TokenID != id {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	other, _, _, _ := auth.NewToken(nil)
	forged := "tdk_" + id + other[20:] // right ID, wrong secret
	for name, h := range map[string]string{"wrong secret": "Bearer " + forged, "unknown": "Bearer " + other, "garbage": "Bearer xyz"} {
		if _, err := a.Authenticate(ctx, h, "10.0.1.1"); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
			t.Errorf("%s: %v; want unauthenticated", name, err)
		}
	}
	clk.Add(time.Hour)
	if _, err := a.Authenticate(ctx, "Bearer "+tok, "10.0.0.2"); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
		t.Fatalf("expired token: %v", err)
	}
	clk.Add(-time.Minute)
	delete(st.tokens, id) // revoked
	if _, err := a.Authenticate(ctx, "Bearer "+tok, "10.0.0.3"); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
		t.Fatalf("revoked token: %v", err)
	}
}

// Before the bootstrap node has created the admin, logins are refused as
// unavailable and not counted (joining nodes retry them).
func TestNoUsersYet(t *testing.T) {
	st := &state{users: map[string]*tandem.User{}}
	a, _ := auth.New(auth.Options{State: st, UserFailures: auth.Limit{Burst: 1, Per: time.Minute}})
	for range 3 {
		if _, err := a.Authenticate(context.Background(), basic("admin", "pw"), "10.0.0.1"); tandem.ErrorCode(err) != tandem.CodeUnavailable {
			t.Fatalf("no users: %v; want unavailable", err)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	a, _, clk := newAuth(t)
	ctx := context.Background()
	// Per user: 3 failures, from different addresses, then 429 even with
	// the right password, until the bucket refills (3 per minute).
	for i := range 3 {
		if _, err := a.Authenticate(ctx, basic("ann", "wrong"), "10.1.0."+string(rune('a'+i))); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	_, err := a.Authenticate(ctx, basic("ann", "secret-pw"), "10.1.1.1")
	var rl *auth.RateLimited
	if tandem.ErrorCode(err) != tandem.CodeRateLimited || !errors.As(err, &rl) || rl.RetryAfter < time.Second || rl.RetryAfter > 20*time.Second {
		t.Fatalf("after 3 failures: %v; want rate_limited with a retry-after near 20s", err)
	}
	// Another user from another address is unaffected.
	if _, err := a.Authenticate(ctx, basic("bob", "x"), "10.2.0.1"); tandem.ErrorCode(err) != tandem.CodeUnauthenticated {
		t.Fatalf("other user: %v", err)
	}
	clk.Add(21 * time.Second)
	if _, err := a.Authenticate(ctx, basic("ann", "secret-pw"), "10.1.1.1"); err != nil {
		t.Fatalf("after the refill: %v", err)
	}

	// Per address: 5 failures over several user names, then 429 for any
	// user from that address.
	for i := range 5 {
		a.Authenticate(ctx, basic("u"+string(rune('a'+i)), "x"), "10.9.9.9")
	}
	if _, err := a.Authenticate(ctx, basic("ann", "secret-pw"), "10.9.9.9"); tandem.ErrorCode(err) != tandem.CodeRateLimited {
		t.Fatalf("address over its limit: %v; want rate_limited", err)
	}
	if _, err := a.Authenticate(ctx, basic("ann", "secret-pw"), "10.9.9.8"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// Missing credentials are not failures.
	for range 10 {
		a.Authenticate(ctx, "", "10.7.7.7")
	}
	if _, err := a.Authenticate(ctx, basic("ann", "secret-pw"), "10.7.7.7"); err != nil {
		t.Fatalf("after requests without credentials: %v", err)
	}
}
