package main

import (
	"path/filepath"
	"testing"

	"github.com/tandemdb/tandem"
)

// TestContractCLI: build the token with the CLI, deploy, list, get, call
// (write and read-only), roll back, and the errors the CLI passes on.
func TestContractCLI(t *testing.T) {
	cli := tandemCLI{t: t, addr: startSingleNode(t)}
	wasm := filepath.Join(t.TempDir(), "token.wasm")
	// The build runs in this package's folder; the path is relative to it.
	cli.ok([]string{"contract", "build", "../../examples/token", "-o", wasm}, "built "+wasm)
	cli.ok([]string{"table", "create", "token_accounts", "--attr", "balance:int"})
	cli.ok([]string{"table", "create", "token_meta"})
	cli.ok([]string{"contract", "deploy", "token", wasm}, `"active": 1`, `"read_only": true`)
	cli.ok([]string{"contract", "call", "token", "init"}, `"admin": "admin"`)
	cli.ok([]string{"contract", "call", "token", "mint", `{"to": "alice", "amount": 50}`}, `"balance": 50`, `"topic": "mint"`)
	cli.ok([]string{"contract", "call", "token", "transfer", `{"from": "alice", "to": "bob", "amount": 20}`}, `"balance": 30`)
	cli.ok([]string{"contract", "call", "token", "balance", `{"account": "bob"}`}, `"balance": 20`)
	cli.fails([]string{"contract", "call", "token", "transfer", `{"from": "bob", "to": "alice", "amount": 21}`}, tandem.CodeContractError, "insufficient balance")
	cli.fails([]string{"contract", "call", "token", "steal"}, tandem.CodeNotFound, `no function "steal"`)
	cli.fails([]string{"contract", "deploy", "bad", "contract_cmds.go"}, tandem.CodeInvalid, "does not compile")
	cli.ok([]string{"contract", "deploy", "token", wasm}, `"active": 2`)
	cli.ok([]string{"contract", "list"}, "token", "2")
	cli.ok([]string{"contract", "rollback", "token", "1"}, `"active": 1`)
	cli.ok([]string{"contract", "get", "token"}, `"active": 1`, `"version": 2`, "sha256")
	cli.fails([]string{"contract", "rollback", "token", "9"}, tandem.CodeNotFound, "no version 9")
	cli.ok([]string{"contract", "deploy", "token_caller", wasm, "--rights", "caller"}, `"rights": "caller"`)
	cli.fails([]string{"contract", "deploy", "token_caller", wasm, "--rights", "bogus"}, tandem.CodeInvalid, `rights "bogus"`)
}
