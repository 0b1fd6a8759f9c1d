package api

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
)

// fakeCluster is the part of Cluster the security code touches.
type fakeCluster struct{ Cluster }

func (fakeCluster) Self() tandem.NodeStatus { return tandem.NodeStatus{} }

// fakeState is an in-memory SecurityState.
type fakeState struct {
	users map[string]*tandem.User
}

func (s *fakeState) User(n string) (*tandem.User, bool)       { u, ok := s.users[n]; return u, ok }
func (s *fakeState) HasUsers() bool                           { return len(s.users) > 0 }
func (s *fakeState) Role(string) (*tandem.Role, bool)         { return nil, false }
func (s *fakeState) APIToken(string) (*tandem.APIToken, bool) { return nil, false }
func (s *fakeState) Users() []tandem.User                     { return nil }
func (s *fakeState) Roles() []tandem.Role                     { return nil }
func (s *fakeState) APITokens() []tandem.APIToken             { return nil }
func (s *fakeState) Audit(tandem.AuditQuery) (*tandem.AuditPage, error) {
	return &tandem.AuditPage{}, nil
}

func basicAuth(u, p string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
}

func newSecureServer(t *testing.T) *Server {
	t.Helper()
	cheap := auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	st := &fakeState{users: map[string]*tandem.User{}}
	for name, role := range map[string]string{"root": "admin", "ann": "reader"} {
		h, _ := auth.HashPassword("password", cheap, nil)
		st.users[name] = &tandem.User{Name: name, PasswordHash: h, Roles: []string{role}, Version: 1}
	}
	a, err := auth.New(auth.Options{State: st, UserFailures: auth.Limit{Burst: 2, Per: 60e9}})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Cluster: fakeCluster{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Security: &Security{Auth: a, State: st}})
}

func serve(s *Server, method, path, authz string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// A route registered without a policy (as new code might add one
// straight on the mux) is admin-only: a forgotten classification fails
// closed. Its handler sees the caller through callerOf.
func TestUnclassifiedRouteIsAdminOnly(t *testing.T) {
	s := newSecureServer(t)
	s.mux.HandleFunc("POST /v1/unclassified/{name}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, callerOf(r))
	})
	for _, tc := range []struct {
		authz string
		code  int
		body  string
	}{
		{"", 401, "unauthenticated"},
		{basicAuth("ann", "password"), 403, "cluster.admin"},
		{basicAuth("root", "password"), 200, "root"},
	} {
		w := serve(s, "POST", "/v1/unclassified/c", tc.authz)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%q: %d %s; want %d containing %q", tc.authz, w.Code, w.Body, tc.code, tc.body)
		}
	}
	// Internal and health routes are not user-authenticated.
	if w := serve(s, "GET", "/healthz", ""); w.Code == 401 {
		t.Errorf("/healthz needs credentials")
	}
	if pol := s.policies["GET /internal/v1/status"]; pol.access != accessInternal {
		t.Errorf("internal route policy %+v", pol)
	}
	// Node-to-node routes skip user authentication: they check node
	// certificates instead (pki.go). Nothing else may.
	nodeRoutes := func(p string) bool {
		return strings.HasPrefix(p, "POST /internal/") || strings.HasPrefix(p, "GET /internal/") || p == "POST /v1/cluster/join"
	}
	for pattern, pol := range s.policies {
		if nodeRoutes(pattern) {
			if pol.access != accessInternal {
				t.Errorf("%s is not marked internal", pattern)
			}
		} else if pol.access == accessInternal {
			t.Errorf("%s is marked internal", pattern)
		}
	}
}

func TestInsecureIsAnonymousAdmin(t *testing.T) {
	s := New(Options{Cluster: fakeCluster{}})
	s.mux.HandleFunc("GET /v1/unclassified", func(w http.ResponseWriter, r *http.Request) {
		if !s.principal(r).Perms.Admin() {
			w.WriteHeader(403)
		}
		io.WriteString(w, callerOf(r))
	})
	if w := serve(s, "GET", "/v1/unclassified", ""); w.Code != 200 || w.Body.String() != "anonymous" {
		t.Fatalf("insecure: %d %s", w.Code, w.Body)
	}
	if got := callerOf(httptest.NewRequest("GET", "/", nil)); got != "anonymous" {
		t.Fatalf("callerOf without a principal = %q", got)
	}
}

func TestRateLimitedAnswer(t *testing.T) {
	s := newSecureServer(t)
	for range 2 {
		serve(s, "GET", "/v1/tables", basicAuth("ann", "wrong"))
	}
	w := serve(s, "GET", "/v1/tables", basicAuth("ann", "password"))
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"rate_limited"`) {
		t.Fatalf("%d %v %s; want 429 with Retry-After and a JSON error", w.Code, w.Header(), w.Body)
	}
}

func TestFilterRecord(t *testing.T) {
	reader := auth.Compile(&tandem.Role{Permissions: []tandem.Permission{
		{Action: tandem.ActTableRead, Resource: "p", Except: []string{"diagnosis", "ssn"}},
	}}).Attrs(tandem.ActTableRead, "p", "id")
	only := auth.Compile(&tandem.Role{Permissions: []tandem.Permission{
		{Action: tandem.ActTableRead, Resource: "p", Attributes: []string{"name"}},
	}}).Attrs(tandem.ActTableRead, "p", "id")
	all := auth.AdminPerms().Attrs(tandem.ActTableRead, "p", "id")
	rec := `{"_version":7,"Zed":1,"diagnosis":"flu","id":"p1","name":"Ann","nested":{"diagnosis":"x"},"ssn":"123","é":true}`
	for _, tc := range []struct {
		set  auth.AttrSet
		want string
	}{
		{all, rec},
		{reader, `{"_version":7,"Zed":1,"id":"p1","name":"Ann","nested":{"diagnosis":"x"},"é":true}`},
		{only, `{"_version":7,"id":"p1","name":"Ann"}`},
	} {
		got, err := filterRecord([]byte(rec), tc.set)
		if err != nil || string(got) != tc.want {
			t.Errorf("filterRecord = %s, %v; want %s", got, err, tc.want)
		}
	}
}

// FuzzParseRole: the role body parser never panics, accepts only valid
// roles, and what it accepts survives a JSON round trip unchanged.
func FuzzParseRole(f *testing.F) {
	for _, s := range []string{
		`{"permissions":[{"action":"table.read","resource":"patients","except":["diagnosis"]}]}`,
		`{"permissions":[{"action":"cluster.admin"}]}`,
		`{"permissions":[{"action":"table.update","resource":"*","attributes":["a","b"]},{"action":"contract.call","resource":"x"}]}`,
		`{"permissions":[]}`,
		`{"permissions":null}`,
		`{"permissions":[{"action":"table.read","resource":"t","except":[],"attributes":[]}]}`,
		`{"permissions":[{"action":"table.read"}]}`,
		`{"permissions":[{"action":"table.read","resource":"t","extra":1}]}`,
		`{}`, `[]`, `null`, `{"permissions":[{"action":"table.delete","resource":"t","except":["a"]}]}`,
	} {
		f.Add("nurse", s)
	}
	f.Add("admin", `{"permissions":[]}`)
	f.Fuzz(func(t *testing.T, name, body string) {
		r, err := parseRole(name, []byte(body))
		if err != nil {
			if c := tandem.ErrorCode(err); c != tandem.CodeInvalid && c != tandem.CodeConflict {
				t.Fatalf("error code %s for %q: %v", c, body, err)
			}
			return
		}
		if err := r.Validate(); err != nil || r.Name != name || tandem.BuiltinRole(name) != nil {
			t.Fatalf("accepted %q %q as %+v: %v", name, body, r, err)
		}
		b, _ := json.Marshal(map[string]any{"permissions": r.Permissions})
		again, err := parseRole(name, b)
		if err != nil || !reflect.DeepEqual(again.Permissions, r.Permissions) {
			t.Fatalf("round trip of %s: %+v, %v", b, again, err)
		}
	})
}

// Audit fields from unauthenticated requests are bounded.
func TestAuditEntryClipped(t *testing.T) {
	s := newSecureServer(t)
	long := "/v1/" + strings.Repeat("é", 5000)
	e := s.auditEntry(httptest.NewRequest("GET", "/", nil), strings.Repeat("u", 5000), "login", long, tandem.AuditUnauthenticated, "")
	if len(e.Principal) > maxAuditField+3 || len(e.Target) > maxAuditField+3 || !strings.HasSuffix(e.Target, "...") || !utf8.ValidString(e.Target) {
		t.Fatalf("entry not clipped: %d %d %q", len(e.Principal), len(e.Target), e.Target[len(e.Target)-10:])
	}
}
