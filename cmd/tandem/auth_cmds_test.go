package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
)

// TestSecurityCommands drives whoami, user, role, apikey and audit against
// a real secure single-node cluster.
func TestSecurityCommands(t *testing.T) {
	cli := tandemCLI{t: t, addr: startSingleNode(t)}
	cli.ok([]string{"whoami"}, `"user": "admin"`, `"admin": true`)
	cli.ok([]string{"table", "create", "patients", "--attr", "diagnosis:string", "--attr", "ward:string"})
	cli.ok([]string{"put", "patients", "p1", `{"diagnosis": "flu", "ward": "A"}`})

	// A role with an attribute restriction, in the command line syntax.
	cli.ok([]string{"role", "put", "nurse", "--perm", "table.read:patients:-diagnosis", "--perm", "table.update:patients:ward"},
		`"action": "table.read"`, `"except": [`, `"diagnosis"`)
	cli.ok([]string{"role", "list"}, "admin", "yes", "nurse", "table.read:patients:-diagnosis table.update:patients:ward")
	cli.ok([]string{"role", "get", "reader"}, `"builtin": true`)
	if _, err := cli.run("", "role", "put", "x", "--perm", "table.drop:t"); err == nil || !strings.Contains(err.Error(), "table.drop") {
		t.Errorf("bad --perm: %v", err)
	}

	cli.ok([]string{"user", "create", "ann", "--roles", "nurse", "--new-password", "ann-password"}, `"name": "ann"`, `"nurse"`)
	cli.ok([]string{"user", "list"}, "NAME", "admin", "ann", "nurse")
	cli.ok([]string{"user", "get", "ann"}, `"version"`)
	ann := []string{"--user", "ann", "--password", "ann-password"}
	out := cli.ok(append([]string{"get", "patients", "p1"}, ann...), `"ward": "A"`)
	if strings.Contains(out, "diagnosis") {
		t.Errorf("ann (nurse) reads the diagnosis:\n%s", out)
	}
	cli.fails(append([]string{"query", "patients", "diagnosis=eq.flu"}, ann...), tandem.CodeForbidden, "diagnosis")
	cli.fails(append([]string{"user", "list"}, ann...), tandem.CodeForbidden, "cluster.admin")
	cli.fails([]string{"whoami", "--user", "ann", "--password", "nope"}, tandem.CodeUnauthenticated, "wrong user name or password")

	// Own password: needs the current one.
	cli.fails(append([]string{"user", "passwd", "ann", "--new-password", "ann-password-2"}, ann...), tandem.CodeUnauthenticated, "")
	cli.ok(append([]string{"user", "passwd", "ann", "--new-password", "ann-password-2", "--current-password", "ann-password"}, ann...))
	ann = []string{"--user", "ann", "--password", "ann-password-2"}
	cli.ok(append([]string{"whoami"}, ann...), `"user": "ann"`)

	// API tokens: made by ann for herself, used, listed, revoked.
	tok := strings.TrimSpace(cli.ok(append([]string{"apikey", "create", "--name", "laptop", "--ttl", "1h"}, ann...), "tdk_"))
	cli.ok([]string{"whoami", "--api-key", tok}, `"user": "ann"`, `"api_token"`)
	id := tok[4:20]
	cli.ok([]string{"apikey", "list", "--for", "ann"}, id, "laptop")
	cli.fails(append([]string{"apikey", "create", "--for", "admin"}, ann...), tandem.CodeForbidden, "cluster.admin")
	cli.ok([]string{"apikey", "revoke", id}, `"revoked"`)
	cli.fails([]string{"whoami", "--api-key", tok}, tandem.CodeUnauthenticated, "revoked")

	cli.ok([]string{"user", "roles", "ann", "reader"}, `"reader"`)
	cli.fails([]string{"role", "delete", "reader"}, tandem.CodeConflict, "built in")
	cli.ok([]string{"role", "delete", "nurse"}, `"deleted"`)
	cli.fails([]string{"user", "delete", "admin"}, tandem.CodeConflict, "last with the admin role")
	cli.ok([]string{"user", "delete", "ann"}, `"deleted"`)

	// The audit log recorded the changes (in their own commands) and the
	// failures and denials (queued, so they may take a moment).
	want := []string{"create_user", "put_role", "set_password", "create_api_token", "revoke_api_token", "delete_user", "unauthenticated", "GET /v1/users", "POST /v1/tokens"}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := cli.run("", "audit", "--all")
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(out, w) })
		if err == nil && len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit lacks %q (%v):\n%s", missing, err, out)
		}
	}
	cli.ok([]string{"audit", "--principal", "ann", "--json", "--since", "1h"}, `"principal": "ann"`)
	out = cli.ok([]string{"audit", "--action", "delete_user"}, "delete_user")
	if strings.Contains(out, "create_user") {
		t.Errorf("audit --action delete_user shows other actions:\n%s", out)
	}
}
