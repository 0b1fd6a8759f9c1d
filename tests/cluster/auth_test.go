package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// secFixture is a secure cluster with users of different roles.
type secFixture struct {
	c     *harness.Cluster
	admin *client.Client
	pw    string // every test user's password
}

// Users of the fixture and their roles.
var secUsers = map[string][]string{
	"reader1": {"reader"},
	"writer1": {"writer"},
	"nurse1":  {"nurse"},
	"doctor1": {"nurse", "doctor"},
	"tadmin1": {"tableadmin"},
	"nobody":  {},
}

func newSecFixture(t *testing.T) *secFixture {
	t.Helper()
	c := harness.Start(t, harness.Options{Nodes: 3})
	f := &secFixture{c: c, admin: clusterClient(t, c), pw: "test-user-password"}
	ctx := t.Context()
	createTable(t, f.admin, tandem.TableSchema{Name: "patients", PrimaryKey: "id",
		Attributes: map[string]tandem.AttrType{"id": tandem.TypeString, "name": tandem.TypeString, "diagnosis": tandem.TypeString, "ward": tandem.TypeString},
		Indexes:    []string{"ward"}})
	roles := map[string][]tandem.Permission{
		"nurse": {
			{Action: tandem.ActTableRead, Resource: "patients", Except: []string{"diagnosis"}},
			{Action: tandem.ActTableUpdate, Resource: "patients", Attributes: []string{"notes", "ward"}},
			{Action: tandem.ActContractCall, Resource: "records"},
			{Action: tandem.ActContractCall, Resource: "records_owner"},
		},
		"doctor":     {{Action: tandem.ActTableRead, Resource: "patients"}},
		"tableadmin": {{Action: tandem.ActTableAdmin, Resource: "*"}},
	}
	for name, perms := range roles {
		if _, err := f.admin.PutRole(ctx, name, perms); err != nil {
			t.Fatalf("put role %s: %v", name, err)
		}
	}
	for name, roles := range secUsers {
		if _, err := f.admin.CreateUser(ctx, name, f.pw, roles); err != nil {
			t.Fatalf("create user %s: %v", name, err)
		}
	}
	for _, p := range []string{
		`{"id":"p1","name":"Ann","diagnosis":"flu","ward":"A"}`,
		`{"id":"p2","name":"Bob","diagnosis":"gout","ward":"B"}`,
	} {
		if _, err := f.admin.Insert(ctx, "patients", json.RawMessage(p)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *secFixture) as(user string) string { return client.BasicAuthorization(user, f.pw) }

// raw sends one request to node i and returns status, headers and body.
func (f *secFixture) raw(t *testing.T, i int, method, path, authz, body string) (int, http.Header, []byte) {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, f.c.Nodes[i].URL()+path, rb)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second, Transport: f.c.AnonymousClient().Transport}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// errorCode returns the code of a JSON error body.
func errorCode(b []byte) tandem.Code {
	var e struct {
		Error struct {
			Code    tandem.Code `json:"code"`
			Message string      `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal(b, &e)
	return e.Error.Code
}

// TestSecurity runs the security behaviours against one secure
// three-node cluster of real processes.
func TestSecurity(t *testing.T) {
	f := newSecFixture(t)
	t.Run("EveryEndpoint", f.testEveryEndpoint)
	t.Run("AttributePermissions", f.testAttributes)
	t.Run("ContractCallerRights", f.testContractRights)
	t.Run("DeniedWritesLeaveNoTrace", f.testDeniedWrites)
	t.Run("RevocationEverywhere", f.testRevocation)
	t.Run("LoginRateLimit", f.testRateLimit)
	t.Run("AuditReplicated", f.testAudit)
}

// endpointCase is one route: who may call it, who may not, and what the
// allowed call answers.
type endpointCase struct {
	method, path, body string
	open               bool   // no authentication at all
	denied             string // a user without the permission ("" if every user may)
	allowed            string // a user with it
	want               int    // the allowed call's status (default 200)
}

// testEveryEndpoint: every route, with no credentials (401), bad
// credentials (401), a user without the permission (403) and one with it
// (2xx, or the route's own answer). Calls go to every node in turn, so
// followers are covered (join and remove are passed to the leader with
// the caller's credentials).
func (f *secFixture) testEveryEndpoint(t *testing.T) {
	ctx := t.Context()
	tok, err := f.admin.CreateAPIToken(ctx, "writer1", "matrix", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cases := []endpointCase{
		{method: "GET", path: "/healthz", open: true},
		{method: "GET", path: "/readyz", open: true},
		// /internal/v1/* and POST /v1/cluster/join take node certificates,
		// not users: TestNodeOnlyEndpoints (tls_test.go) covers them.
		{method: "GET", path: "/metrics", allowed: "nobody"},
		{method: "GET", path: "/v1/cluster", allowed: "nobody"},
		// Contracts: a bad module and an unknown contract show that the
		// caller got past authorization.
		{method: "PUT", path: "/v1/contracts/c1", body: "not wasm", denied: "writer1", allowed: "admin", want: 400},
		{method: "POST", path: "/v1/contracts/c1/rollback", body: `{"version":1}`, denied: "writer1", allowed: "admin", want: 404},
		{method: "POST", path: "/v1/contracts/c1/f", body: `{}`, denied: "writer1", allowed: "admin", want: 404},
		{method: "GET", path: "/v1/contracts", allowed: "nobody"},
		{method: "GET", path: "/v1/contracts/c1", denied: "writer1", allowed: "admin", want: 404},
		{method: "GET", path: "/v1/events", allowed: "nobody"},
		{method: "DELETE", path: "/v1/cluster/nodes/n99", denied: "writer1", allowed: "admin", want: 404},
		{method: "GET", path: "/v1/tables", allowed: "nobody"},
		{method: "GET", path: "/v1/tables/patients", denied: "nobody", allowed: "nurse1"},
		{method: "PUT", path: "/v1/tables/scratch", body: `{"primary_key":"id"}`, denied: "writer1", allowed: "tadmin1"},
		{method: "DELETE", path: "/v1/tables/scratch", denied: "writer1", allowed: "tadmin1"},
		{method: "POST", path: "/v1/tables/patients/records", body: `{"id":"p3","name":"Cy"}`, denied: "reader1", allowed: "writer1", want: 201},
		{method: "GET", path: "/v1/tables/patients/records", denied: "nobody", allowed: "reader1"},
		{method: "GET", path: "/v1/tables/patients/records/p1", denied: "nobody", allowed: "nurse1"},
		{method: "PUT", path: "/v1/tables/patients/records/p3", body: `{"id":"p3","name":"Cyd"}`, denied: "nurse1", allowed: "writer1"},
		{method: "PATCH", path: "/v1/tables/patients/records/p3", body: `{"ward":"C"}`, denied: "reader1", allowed: "nurse1"},
		{method: "DELETE", path: "/v1/tables/patients/records/p3", denied: "nurse1", allowed: "writer1"},
		{method: "POST", path: "/v1/tx", body: `{"ops":[{"op":"upsert","table":"patients","record":{"id":"p4"}}]}`, denied: "reader1", allowed: "writer1"},
		{method: "GET", path: "/v1/whoami", allowed: "nobody"},
		{method: "POST", path: "/v1/users", body: `{"name":"unew","password":"unew-password","roles":[]}`, denied: "writer1", allowed: "admin", want: 201},
		{method: "GET", path: "/v1/users", denied: "writer1", allowed: "admin"},
		{method: "GET", path: "/v1/users/nurse1", denied: "writer1", allowed: "nurse1"},
		{method: "PUT", path: "/v1/users/unew/password", body: `{"password":"unew-password-2"}`, denied: "writer1", allowed: "admin"},
		{method: "PUT", path: "/v1/users/unew/roles", body: `{"roles":["reader"]}`, denied: "writer1", allowed: "admin"},
		{method: "DELETE", path: "/v1/users/unew", denied: "writer1", allowed: "admin"},
		{method: "GET", path: "/v1/roles", denied: "writer1", allowed: "admin"},
		{method: "GET", path: "/v1/roles/nurse", denied: "writer1", allowed: "admin"},
		{method: "PUT", path: "/v1/roles/rnew", body: `{"permissions":[{"action":"table.read","resource":"*"}]}`, denied: "writer1", allowed: "admin"},
		{method: "DELETE", path: "/v1/roles/rnew", denied: "writer1", allowed: "admin"},
		{method: "POST", path: "/v1/tokens", body: `{"user":"writer1"}`, denied: "nobody", allowed: "admin", want: 201},
		{method: "GET", path: "/v1/tokens?user=writer1", denied: "nobody", allowed: "writer1"},
		{method: "DELETE", path: "/v1/tokens/" + tok.ID, denied: "nobody", allowed: "writer1"},
		{method: "GET", path: "/v1/audit", denied: "writer1", allowed: "admin"},
		{method: "GET", path: "/v1/no-such-route", allowed: "nobody", want: 404},
	}
	for i, tc := range cases {
		node := i % len(f.c.Nodes)
		name := tc.method + " " + tc.path
		if tc.open {
			if code, _, b := f.raw(t, node, tc.method, tc.path, "", ""); code != 200 {
				t.Errorf("%s without credentials: %d %s; want 200 (open route)", name, code, b)
			}
			continue
		}
		code, h, b := f.raw(t, node, tc.method, tc.path, "", tc.body)
		if code != 401 || errorCode(b) != tandem.CodeUnauthenticated || !strings.HasPrefix(h.Get("WWW-Authenticate"), `Basic realm="tandem"`) {
			t.Errorf("%s without credentials: %d %s (WWW-Authenticate %q); want 401 unauthenticated with a Basic challenge", name, code, b, h.Get("WWW-Authenticate"))
		}
		bad := client.BasicAuthorization(fmt.Sprintf("mallory%d", i), "guess")
		if code, _, b := f.raw(t, node, tc.method, tc.path, bad, tc.body); code != 401 || errorCode(b) != tandem.CodeUnauthenticated {
			t.Errorf("%s with bad credentials: %d %s; want 401", name, code, b)
		}
		if code, _, b := f.raw(t, node, tc.method, tc.path, f.as("writer1")[:20]+"x", tc.body); code != 401 {
			t.Errorf("%s with a damaged header: %d %s; want 401", name, code, b)
		}
		if tc.denied != "" {
			code, _, b := f.raw(t, node, tc.method, tc.path, f.as(tc.denied), tc.body)
			if code != 403 || errorCode(b) != tandem.CodeForbidden || !strings.Contains(string(b), "permission") {
				t.Errorf("%s as %s: %d %s; want 403 naming the permission", name, tc.denied, code, b)
			}
		}
		authz := f.as(tc.allowed)
		if tc.allowed == "admin" {
			authz = harness.AdminAuthorization()
		}
		want := tc.want
		if want == 0 {
			want = 200
		}
		if code, _, b := f.raw(t, node, tc.method, tc.path, authz, tc.body); code != want {
			t.Errorf("%s as %s: %d %s; want %d", name, tc.allowed, code, b, want)
		}
	}
	// An API token authenticates as its owner, on every node once the
	// node has applied its creation (at once on the node that created it).
	tok2, err := f.admin.Node(0).CreateAPIToken(ctx, "nurse1", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, b := f.raw(t, 0, "GET", "/v1/whoami", "Bearer "+tok2.Token, ""); code != 200 || !strings.Contains(string(b), `"user":"nurse1"`) || !strings.Contains(string(b), tok2.ID) {
		t.Errorf("whoami with a token: %d %s", code, b)
	}
	waitFor(t, time.Second, "the token works on node 3", func() string {
		if code, _, b := f.raw(t, 2, "GET", "/v1/whoami", "Bearer "+tok2.Token, ""); code != 200 {
			return fmt.Sprintf("%d %s", code, b)
		}
		return ""
	})
}

// testAttributes: a nurse (table.read on patients except diagnosis) never
// sees a diagnosis, cannot filter, sort or select on it, and cannot write
// it; a user who also has the doctor role sees it (grants add up).
func (f *secFixture) testAttributes(t *testing.T) {
	ctx := t.Context()
	for i := range f.c.Nodes {
		nurse, _ := client.New([]string{f.c.Nodes[i].URL()}, append(f.c.ClientOptions(), client.WithBasicAuth("nurse1", f.pw))...)
		rec, err := nurse.Get(ctx, "patients", "p1")
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		json.Unmarshal(rec.JSON, &got)
		if _, ok := got["diagnosis"]; ok || got["name"] != "Ann" || got["_version"] == nil {
			t.Errorf("node %d: nurse reads %s; want it without diagnosis", i+1, rec.JSON)
		}
		res, err := nurse.Query(ctx, "patients", map[string][]string{"ward": {"eq.A"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Records {
			if strings.Contains(string(r), "diagnosis") || strings.Contains(string(r), "flu") {
				t.Errorf("node %d: nurse's query returned %s", i+1, r)
			}
		}
		if len(res.Records) != 1 {
			t.Errorf("node %d: nurse's query by ward: %d records", i+1, len(res.Records))
		}
	}
	for _, q := range []string{"diagnosis=eq.flu", "diagnosis=prefix.f", "sort=diagnosis", "select=name,diagnosis", "or=(diagnosis.eq.flu,ward.eq.B)"} {
		code, _, b := f.raw(t, 0, "GET", "/v1/tables/patients/records?"+q, f.as("nurse1"), "")
		if code != 403 || !strings.Contains(string(b), "diagnosis") {
			t.Errorf("nurse query %s: %d %s; want 403 naming diagnosis", q, code, b)
		}
	}
	for _, w := range []struct{ method, path, body string }{
		{"PATCH", "/v1/tables/patients/records/p1", `{"diagnosis":"none"}`},
		{"PATCH", "/v1/tables/patients/records/p1", `{"diagnosis":null}`},
		{"POST", "/v1/tx", `{"ops":[{"op":"patch","table":"patients","key":"p1","record":{"ward":"Z","diagnosis":"x"}}]}`},
	} {
		if code, _, b := f.raw(t, 1, w.method, w.path, f.as("nurse1"), w.body); code != 403 {
			t.Errorf("nurse %s %s %s: %d %s; want 403", w.method, w.path, w.body, code, b)
		}
	}
	doctor, _ := client.New([]string{f.c.Nodes[2].URL()}, append(f.c.ClientOptions(), client.WithBasicAuth("doctor1", f.pw))...)
	rec, err := doctor.Get(ctx, "patients", "p1")
	if err != nil || !strings.Contains(string(rec.JSON), `"diagnosis":"flu"`) {
		t.Errorf("doctor (nurse+doctor roles) reads %s, %v; want the diagnosis", rec.JSON, err)
	}
	if code, _, b := f.raw(t, 2, "GET", "/v1/tables/patients/records?diagnosis=eq.flu", f.as("doctor1"), ""); code != 200 || !strings.Contains(string(b), "p1") {
		t.Errorf("doctor filters on diagnosis: %d %s", code, b)
	}
}

// testContractRights: attribute permissions hold on contract reads under
// caller rights. The records contract hands back what it read; deployed
// with rights=caller, a nurse (patients without diagnosis) calling it
// through every node never sees a diagnosis, whether the read runs on the
// receiving node (get, a read-only function) or on the leader (lookup and
// ward, which may write), and a query on the diagnosis is refused; a
// doctor sees it. The same module deployed with the contract's own rights
// shows the nurse the diagnosis: that mode is for contracts that guard
// their data themselves.
func (f *secFixture) testContractRights(t *testing.T) {
	ctx := t.Context()
	wasm := harness.Contract(t, "contract/testdata/records")
	info, _, err := f.admin.DeployContract(ctx, "records", wasm, client.WithRights(tandem.RightsCaller))
	if err != nil || info.ActiveVersion().Rights != tandem.RightsCaller {
		t.Fatalf("deploy records with caller rights: %+v, %v", info, err)
	}
	info, idx, err := f.admin.DeployContract(ctx, "records_owner", wasm)
	if err != nil || info.ActiveVersion().Rights != tandem.RightsContract {
		t.Fatalf("deploy records_owner: %+v, %v", info, err)
	}
	as := func(user string, i int) *client.Client {
		cl, err := client.New([]string{f.c.Nodes[i].URL()}, append(f.c.ClientOptions(), client.WithBasicAuth(user, f.pw))...)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	call := func(cl *client.Client, contract, fn, arg string) (string, error) {
		res, err := cl.CallContract(ctx, contract, fn, arg, client.MinIndex(idx))
		if err != nil {
			return "", err
		}
		return string(res.Result), nil
	}
	for i := range f.c.Nodes {
		nurse, doctor := as("nurse1", i), as("doctor1", i)
		for _, c := range []struct{ fn, arg, want string }{
			{"get", "p1", `"name":"Ann"`},
			{"lookup", "p1", `"name":"Ann"`},
			{"ward", "A", `"name":"Ann"`},
		} {
			got, err := call(nurse, "records", c.fn, c.arg)
			if err != nil || !strings.Contains(got, c.want) || strings.Contains(got, "diagnosis") || strings.Contains(got, "flu") {
				t.Errorf("node %d: nurse calls records.%s(%s) = %s, %v; want %s without the diagnosis", i+1, c.fn, c.arg, got, err, c.want)
			}
			got, err = call(doctor, "records", c.fn, c.arg)
			if err != nil || !strings.Contains(got, `"diagnosis":"flu"`) {
				t.Errorf("node %d: doctor calls records.%s(%s) = %s, %v; want the diagnosis", i+1, c.fn, c.arg, got, err)
			}
			got, err = call(nurse, "records_owner", c.fn, c.arg)
			if err != nil || !strings.Contains(got, `"diagnosis":"flu"`) {
				t.Errorf("node %d: nurse calls records_owner.%s(%s) = %s, %v; want the diagnosis (contract rights)", i+1, c.fn, c.arg, got, err)
			}
		}
		_, err := call(nurse, "records", "by_diagnosis", "flu")
		if e := wantAPIError(t, err, 422); e.Code != tandem.CodeContractError || !strings.Contains(e.Message, `attribute "diagnosis"`) {
			t.Errorf("node %d: nurse queries by diagnosis: %v; want a contract error naming the attribute", i+1, err)
		}
		if got, err := call(doctor, "records", "by_diagnosis", "flu"); err != nil || !strings.Contains(got, `"id":"p1"`) {
			t.Errorf("node %d: doctor queries by diagnosis: %s, %v", i+1, got, err)
		}
	}
	// The refused query is in the audit log, recorded by each node that
	// ran it (the request itself was allowed: only the contract's attempt
	// was refused); the calls that were filtered, not refused, are not.
	waitFor(t, 10*time.Second, "the contract's refused queries in the audit log", func() string {
		page, err := f.admin.Node(0).Audit(ctx, client.AuditFilter{Principal: "nurse1", Action: "contract_call", Limit: 1000})
		if err != nil {
			return err.Error()
		}
		nodes := map[string]bool{}
		for _, e := range page.Entries {
			if e.Target != "records.by_diagnosis" || e.Outcome != tandem.AuditDenied || !strings.Contains(e.Detail, "diagnosis") {
				return fmt.Sprintf("unexpected entry %+v", e)
			}
			nodes[e.Node] = true
		}
		if len(nodes) != len(f.c.Nodes) {
			return fmt.Sprintf("denials recorded by %d nodes, want %d: %+v", len(nodes), len(f.c.Nodes), page.Entries)
		}
		return ""
	})
}

// testDeniedWrites: denied writes of every kind change no record and no
// table, on any node.
func (f *secFixture) testDeniedWrites(t *testing.T) {
	ctx := t.Context()
	before, err := f.admin.Query(ctx, "patients", nil)
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := f.admin.Tables(ctx)
	for _, w := range []struct{ user, method, path, body string }{
		{"reader1", "POST", "/v1/tables/patients/records", `{"id":"evil"}`},
		{"reader1", "PUT", "/v1/tables/patients/records/p1", `{"id":"p1"}`},
		{"nurse1", "PUT", "/v1/tables/patients/records/p1", `{"id":"p1","ward":"A"}`},
		{"nurse1", "PATCH", "/v1/tables/patients/records/p1", `{"name":"Eve"}`},
		{"nurse1", "DELETE", "/v1/tables/patients/records/p1", ""},
		{"writer1", "DELETE", "/v1/tables/patients", ""},
		{"writer1", "PUT", "/v1/tables/patients", `{"primary_key":"id","indexes":["name"]}`},
		{"nurse1", "POST", "/v1/tx", `{"ops":[{"op":"patch","table":"patients","key":"p1","record":{"ward":"Z"}},{"op":"delete","table":"patients","key":"p2"}]}`},
		{"reader1", "POST", "/v1/tx", `{"conditions":[{"if":"exists","table":"patients","key":"p1"}],"ops":[{"op":"insert","table":"patients","record":{"id":"evil"}}]}`},
		{"nobody", "POST", "/v1/tx", `{"conditions":[{"if":"exists","table":"patients","key":"p1"}],"ops":[{"op":"insert","table":"other","record":{"id":"x"}}]}`},
	} {
		if code, _, b := f.raw(t, 1, w.method, w.path, f.as(w.user), w.body); code != 403 {
			t.Errorf("%s %s %s as %s: %d %s; want 403", w.method, w.path, w.body, w.user, code, b)
		}
	}
	for i := range f.c.Nodes {
		after, err := f.admin.Node(i).Query(ctx, "patients", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := joinRaw(after.Records), joinRaw(before.Records); got != want {
			t.Errorf("node %d: records changed by denied writes:\n%s\nwant\n%s", i+1, got, want)
		}
		tl, _ := f.admin.Node(i).Tables(ctx)
		if len(tl) != len(tables) || tl[0].Version != tables[0].Version {
			t.Errorf("node %d: tables changed by denied writes: %+v", i+1, tl)
		}
	}
}

func joinRaw(rs []json.RawMessage) string {
	var sb strings.Builder
	for _, r := range rs {
		sb.Write(r)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// testRevocation: a revoked API token and a deleted user's password (even
// though it was just verified and cached) are refused by every node within
// one second of the call that revoked them returning.
func (f *secFixture) testRevocation(t *testing.T) {
	ctx := t.Context()
	if _, err := f.admin.CreateUser(ctx, "temp1", f.pw, []string{"reader"}); err != nil {
		t.Fatal(err)
	}
	tok, err := f.admin.CreateAPIToken(ctx, "temp1", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bearer := "Bearer " + tok.Token
	for i := range f.c.Nodes {
		// Each node has applied the user by now (linearizable) and caches
		// the verified password.
		waitFor(t, 5*time.Second, fmt.Sprintf("node %d accepts temp1", i+1), func() string {
			for _, a := range []string{bearer, f.as("temp1")} {
				if code, _, b := f.raw(t, i, "GET", "/v1/tables/patients/records/p1", a, ""); code != 200 {
					return fmt.Sprintf("%d %s", code, b)
				}
			}
			return ""
		})
	}
	refusedEverywhere := func(authz string) time.Duration {
		start := time.Now()
		for {
			all := true
			for i := range f.c.Nodes {
				if code, _, _ := f.raw(t, i, "GET", "/v1/tables/patients/records/p1", authz, ""); code != 401 {
					all = false
				}
			}
			if all {
				return time.Since(start)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("still accepted by some node after 5s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := f.admin.Node(0).RevokeAPIToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if d := refusedEverywhere(bearer); d > time.Second {
		t.Errorf("revoked token refused everywhere after %v; want within 1s", d)
	}
	if code, _, _ := f.raw(t, 0, "GET", "/v1/whoami", f.as("temp1"), ""); code != 200 {
		t.Fatalf("revoking the token also broke the password")
	}
	if err := f.admin.Node(1).DeleteUser(ctx, "temp1"); err != nil {
		t.Fatal(err)
	}
	if d := refusedEverywhere(f.as("temp1")); d > time.Second {
		t.Errorf("deleted user refused everywhere after %v; want within 1s", d)
	}
}

// testRateLimit: after 10 failed logins for one user (the default) a node
// answers 429 with Retry-After, even to the right password, while other
// users are unaffected.
func (f *secFixture) testRateLimit(t *testing.T) {
	ctx := t.Context()
	if _, err := f.admin.CreateUser(ctx, "victim", f.pw, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if code, _, b := f.raw(t, 0, "GET", "/v1/whoami", client.BasicAuthorization("victim", "wrong"), ""); code != 401 {
			t.Fatalf("failure %d: %d %s", i+1, code, b)
		}
	}
	code, h, b := f.raw(t, 0, "GET", "/v1/whoami", f.as("victim"), "")
	if code != 429 || errorCode(b) != tandem.CodeRateLimited || h.Get("Retry-After") == "" {
		t.Fatalf("11th attempt: %d %s (Retry-After %q); want 429 rate_limited with Retry-After", code, b, h.Get("Retry-After"))
	}
	if code, _, _ := f.raw(t, 0, "GET", "/v1/whoami", f.as("reader1"), ""); code != 200 {
		t.Errorf("another user is locked out too: %d", code)
	}
}

// testAudit: failed logins, denials and changes appear in the audit log,
// the same on every node.
func (f *secFixture) testAudit(t *testing.T) {
	ctx := t.Context()
	f.raw(t, 2, "GET", "/v1/tables", client.BasicAuthorization("intruder", "guess"), "")
	f.raw(t, 1, "DELETE", "/v1/tables/patients", f.as("writer1"), "")
	if _, err := f.admin.Node(0).CreateUser(ctx, "audited", f.pw, nil); err != nil {
		t.Fatal(err)
	}
	want := []func(tandem.AuditEntry) bool{
		func(e tandem.AuditEntry) bool {
			return e.Principal == "intruder" && e.Action == "login" && e.Outcome == tandem.AuditUnauthenticated && e.Node == "n3" && e.Address == "127.0.0.1"
		},
		func(e tandem.AuditEntry) bool {
			return e.Principal == "writer1" && e.Outcome == tandem.AuditDenied && e.Target == "/v1/tables/patients" && strings.Contains(e.Detail, "table.admin")
		},
		func(e tandem.AuditEntry) bool {
			return e.Principal == "admin" && e.Action == "create_user" && e.Target == "audited" && e.Outcome == tandem.AuditOK
		},
		func(e tandem.AuditEntry) bool {
			return e.Action == "create_user" && e.Target == "admin" && e.Principal == "bootstrap"
		},
		func(e tandem.AuditEntry) bool {
			// The harness created a join token for each joining node.
			return e.Action == "create_join_token" && e.Principal == "admin" && e.Outcome == tandem.AuditOK
		},
		func(e tandem.AuditEntry) bool {
			// Joins are authenticated by the joining node's certificate.
			return e.Action == "join_node" && e.Target == "n3" && e.Principal == "node:n3" && e.Outcome == tandem.AuditOK
		},
	}
	var logs []string
	waitFor(t, 10*time.Second, "audit entries on every node", func() string {
		logs = logs[:0]
		for i := range f.c.Nodes {
			var all []tandem.AuditEntry
			filter := client.AuditFilter{Limit: 1000}
			for {
				page, err := f.admin.Node(i).Audit(ctx, filter)
				if err != nil {
					return err.Error()
				}
				all = append(all, page.Entries...)
				if page.Next == "" {
					break
				}
				filter.Cursor = page.Next
			}
			for j, match := range want {
				if !slices.ContainsFunc(all, match) {
					return fmt.Sprintf("node %d lacks expected entry %d", i+1, j)
				}
			}
			b, _ := json.Marshal(all)
			logs = append(logs, string(b))
		}
		return ""
	})
	// Same history everywhere: compare at one applied index.
	applied, _ := f.c.WaitConverged(10 * time.Second)
	var first string
	for i := range f.c.Nodes {
		page, err := f.admin.Node(i).Audit(ctx, client.AuditFilter{Limit: 10000}, client.MinIndex(applied))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(page.Entries)
		if i == 0 {
			first = string(b)
		} else if string(b) != first {
			t.Errorf("node %d's audit log differs from node 1's", i+1)
		}
	}
	// Filters: by principal.
	page, err := f.admin.Audit(ctx, client.AuditFilter{Principal: "intruder"})
	if err != nil || len(page.Entries) == 0 || slices.ContainsFunc(page.Entries, func(e tandem.AuditEntry) bool { return e.Principal != "intruder" }) {
		t.Errorf("audit filtered by principal: %+v, %v", page, err)
	}
}

// TestInsecureCluster: with harness.Options.Insecure the nodes run with
// --insecure: no credentials needed, and the security routes say so.
func TestInsecureCluster(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 1, Insecure: true})
	cl, err := client.New([]string{c.Nodes[0].URL()})
	if err != nil {
		t.Fatal(err)
	}
	id, err := cl.WhoAmI(t.Context())
	if err != nil || id.User != "anonymous" || !id.Admin {
		t.Fatalf("whoami without credentials: %+v, %v; want an anonymous admin", id, err)
	}
	createTable(t, cl, tandem.TableSchema{Name: "t"})
	if _, err := cl.CreateUser(t.Context(), "ann", "password-1", nil); err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("create user on an insecure node: %v; want an error naming --insecure", err)
	}
}
