package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/tests/harness"
)

const maxBody = 64 << 10

// badRequest is one request a live node must turn down with a 4xx (or, for
// a read that cannot reach its min_index in time, the documented 504).
type badRequest struct {
	name   string
	method string
	path   string // with the query string
	header map[string]string
	body   string
	status int
	msg    string // the error message names it ("" for any message)
}

// codeStatus is the documented status of every error code.
var codeStatus = map[tandem.Code]int{
	tandem.CodeInvalid:            400,
	tandem.CodeNotFound:           404,
	tandem.CodeConflict:           409,
	tandem.CodePreconditionFailed: 412,
	tandem.CodeTooLarge:           413,
	tandem.CodeUnavailable:        503,
	tandem.CodeTimeout:            504,
	tandem.CodeContractError:      422,
	tandem.CodeContractFault:      422,
	"method_not_allowed":          405,
}

func badRequests() []badRequest {
	const (
		people = "/v1/tables/people"
		recs   = people + "/records"
		alice  = recs + "/alice"
		nums   = "/v1/tables/nums/records"
	)
	big := `{"name": "` + strings.Repeat("x", maxBody+1000) + `"}`
	deep := `{"tags": ` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`
	manyOps := make([]string, tandem.MaxTxOps+1)
	for i := range manyOps {
		manyOps[i] = `{"op":"delete","table":"people","key":"k"}`
	}
	okSchema := `"attributes": {"id": "string", "name": "string", "age": "int", "joined": "time", "tags": "json", "score": "float", "active": "bool"}`
	tx := func(ops string) string { return `{"ops": [` + ops + `]}` }
	return []badRequest{
		// Record bodies.
		{name: "malformed insert", method: "POST", path: recs, body: `{"id": "x",`, status: 400},
		{name: "malformed put", method: "PUT", path: recs + "/x", body: `{"name": }`, status: 400},
		{name: "not json", method: "PUT", path: recs + "/x", body: `hello`, status: 400},
		{name: "trailing data", method: "PUT", path: recs + "/x", body: `{"name": "a"} {"name": "b"}`, status: 400},
		{name: "empty insert", method: "POST", path: recs, status: 400},
		{name: "empty put", method: "PUT", path: recs + "/x", status: 400},
		{name: "empty patch", method: "PATCH", path: alice, status: 400},
		{name: "array record", method: "PUT", path: recs + "/x", body: `[1, 2]`, status: 400},
		{name: "string record", method: "PUT", path: recs + "/x", body: `"x"`, status: 400},
		{name: "null record", method: "PUT", path: recs + "/x", body: `null`, status: 400},
		{name: "number record", method: "POST", path: recs, body: `42`, status: 400},
		{name: "reserved attribute", method: "PUT", path: recs + "/x", body: `{"_secret": 1}`, status: 400},
		{name: "reserved attribute insert", method: "POST", path: recs, body: `{"id": "x", "_rev": 1}`, status: 400},
		{name: "reserved attribute patch", method: "PATCH", path: alice, body: `{"_rev": 1}`, status: 400},
		{name: "empty attribute name", method: "PUT", path: recs + "/x", body: `{"": 1}`, status: 400},
		{name: "too deep", method: "PUT", path: recs + "/x", body: deep, status: 400},
		{name: "oversized record", method: "PUT", path: recs + "/big", body: big, status: 413},

		// Types, checked when the write is applied.
		{name: "string for int", method: "PUT", path: recs + "/x", body: `{"age": "ten"}`, status: 400},
		{name: "fraction for int", method: "PUT", path: recs + "/x", body: `{"age": 1.5}`, status: 400},
		{name: "int overflow", method: "PUT", path: recs + "/x", body: `{"age": 99999999999999999999}`, status: 400},
		{name: "bad time", method: "PUT", path: recs + "/x", body: `{"joined": "yesterday"}`, status: 400},
		{name: "number for string", method: "POST", path: recs, body: `{"id": "x", "name": 5}`, status: 400},
		{name: "string for bool", method: "PUT", path: recs + "/x", body: `{"active": "yes"}`, status: 400},
		{name: "string for float", method: "PUT", path: recs + "/x", body: `{"score": "high"}`, status: 400},
		{name: "bad type in patch", method: "PATCH", path: alice, body: `{"age": "old"}`, status: 400},

		// Keys.
		{name: "insert without key", method: "POST", path: recs, body: `{"name": "x"}`, status: 400},
		{name: "insert with null key", method: "POST", path: recs, body: `{"id": null}`, status: 400},
		{name: "number for string key", method: "POST", path: recs, body: `{"id": 5}`, status: 400},
		{name: "key differs from path", method: "PUT", path: recs + "/x", body: `{"id": "y"}`, status: 400},
		{name: "key too long", method: "PUT", path: recs + "/" + strings.Repeat("k", tandem.MaxKeyLen+1), body: `{}`, status: 400},
		{name: "key not UTF-8", method: "PUT", path: recs + "/%FF", body: `{}`, status: 400},
		{name: "read key not UTF-8", method: "GET", path: recs + "/%FF", status: 400},
		{name: "int key not a number", method: "PUT", path: nums + "/abc", body: `{}`, status: 400},
		{name: "int key not canonical", method: "PUT", path: nums + "/007", body: `{}`, status: 400},
		{name: "int key fraction", method: "GET", path: nums + "/1.5", status: 400},
		{name: "string for int key", method: "POST", path: nums, body: `{"n": "one"}`, status: 400},
		{name: "exponent int key", method: "POST", path: nums, body: `{"n": 1e3}`, status: 400},

		// Missing things.
		{name: "insert unknown table", method: "POST", path: "/v1/tables/nope/records", body: `{"id": "a"}`, status: 404},
		{name: "put unknown table", method: "PUT", path: "/v1/tables/nope/records/a", body: `{}`, status: 404},
		{name: "get unknown table", method: "GET", path: "/v1/tables/nope", status: 404},
		{name: "read unknown table", method: "GET", path: "/v1/tables/nope/records/a", status: 404},
		{name: "query unknown table", method: "GET", path: "/v1/tables/nope/records", status: 404},
		{name: "drop unknown table", method: "DELETE", path: "/v1/tables/nope", status: 404},
		{name: "read missing record", method: "GET", path: recs + "/ghost", status: 404},
		{name: "patch missing record", method: "PATCH", path: recs + "/ghost", body: `{"age": 1}`, status: 404},
		{name: "delete missing record", method: "DELETE", path: recs + "/ghost", status: 404},
		{name: "insert existing", method: "POST", path: recs, body: `{"id": "alice"}`, status: 409},
		{name: "bad table name", method: "GET", path: "/v1/tables/1abc", status: 400},
		{name: "reserved table name", method: "PUT", path: "/v1/tables/_sys", body: `{}`, status: 400},
		{name: "long table name", method: "GET", path: "/v1/tables/" + strings.Repeat("t", 70) + "/records", status: 400},

		// Queries.
		{name: "limit zero", method: "GET", path: recs + "?limit=0", status: 400},
		{name: "limit word", method: "GET", path: recs + "?limit=abc", status: 400},
		{name: "limit too big", method: "GET", path: recs + "?limit=10001", status: 400},
		{name: "limit twice", method: "GET", path: recs + "?limit=5&limit=6", status: 400},
		{name: "garbage cursor", method: "GET", path: recs + "?cursor=garbage!!", status: 400},
		{name: "short cursor", method: "GET", path: recs + "?cursor=AAAA", status: 400},
		{name: "long cursor", method: "GET", path: recs + "?cursor=" + strings.Repeat("A", 5000), status: 400},
		{name: "bad sort name", method: "GET", path: recs + "?sort=~age", status: 400},
		{name: "bad sort direction", method: "GET", path: recs + "?sort=--age", status: 400},
		{name: "empty sort", method: "GET", path: recs + "?sort=", status: 400},
		{name: "bad op literal for int", method: "GET", path: recs + "?age=zz.5", status: 400},
		{name: "gt word for int", method: "GET", path: recs + "?age=gt.abc", status: 400},
		{name: "bad time filter", method: "GET", path: recs + "?joined=gt.yesterday", status: 400},
		{name: "bad bool filter", method: "GET", path: recs + "?active=maybe", status: 400},
		{name: "empty filter", method: "GET", path: recs + "?age=", status: 400},
		{name: "unclosed in", method: "GET", path: recs + "?age=in.(1,2", status: 400},
		{name: "empty in", method: "GET", path: recs + "?age=in.()", status: 400},
		{name: "or without op", method: "GET", path: recs + "?or=(age)", status: 400},
		{name: "or without parens", method: "GET", path: recs + "?or=age.gt.1", status: 400},
		{name: "in inside or", method: "GET", path: recs + "?or=(age.in.(1))", status: 400},
		{name: "bad count", method: "GET", path: recs + "?count=maybe", status: 400},
		{name: "select twice", method: "GET", path: recs + "?select=name,name", status: 400},
		{name: "bad select name", method: "GET", path: recs + "?select=1x", status: 400},
		{name: "bad filter name", method: "GET", path: recs + "?1x=5", status: 400},
		{name: "bad escape in filter", method: "GET", path: recs + "?name=%zz", status: 400},
		{name: "semicolon in query", method: "GET", path: recs + "?name=Alice;age=1", status: 400},

		// Table schemas.
		{name: "index not declared", method: "PUT", path: "/v1/tables/t1", body: `{"indexes": ["nosuch"]}`, status: 400},
		{name: "index on json", method: "PUT", path: "/v1/tables/t1", body: `{"attributes": {"j": "json"}, "indexes": ["j"]}`, status: 400},
		{name: "index twice", method: "PUT", path: "/v1/tables/t1", body: `{"attributes": {"a": "int"}, "indexes": ["a", "a"]}`, status: 400},
		{name: "index on primary key", method: "PUT", path: "/v1/tables/t1", body: `{"attributes": {"id": "string"}, "indexes": ["id"]}`, status: 400},
		{name: "bad index name", method: "PUT", path: "/v1/tables/t1", body: `{"indexes": ["1x"]}`, status: 400},
		{name: "unknown type", method: "PUT", path: "/v1/tables/t1", body: `{"attributes": {"a": "integer"}}`, status: 400},
		{name: "float primary key", method: "PUT", path: "/v1/tables/t1", body: `{"attributes": {"id": "float"}}`, status: 400},
		{name: "bad attribute name", method: "PUT", path: "/v1/tables/t1", body: `{"attributes": {"1x": "int"}}`, status: 400},
		{name: "reserved attribute name", method: "PUT", path: "/v1/tables/t1", body: `{"attributes": {"_x": "int"}}`, status: 400},
		{name: "unknown schema field", method: "PUT", path: "/v1/tables/t1", body: `{"atributes": {"a": "int"}}`, status: 400},
		{name: "schema field type", method: "PUT", path: "/v1/tables/t1", body: `{"primary_key": 5}`, status: 400},
		{name: "attributes as list", method: "PUT", path: "/v1/tables/t1", body: `{"attributes": ["a"]}`, status: 400},
		{name: "schema name mismatch", method: "PUT", path: "/v1/tables/t1", body: `{"name": "t2"}`, status: 400},
		{name: "empty schema body", method: "PUT", path: "/v1/tables/t1", status: 400},
		{name: "malformed schema", method: "PUT", path: "/v1/tables/t1", body: `{"attributes": {`, status: 400},
		{name: "schema not an object", method: "PUT", path: "/v1/tables/t1", body: `[]`, status: 400},
		{name: "schema trailing data", method: "PUT", path: "/v1/tables/t1", body: `{} {}`, status: 400},
		{name: "oversized schema", method: "PUT", path: "/v1/tables/t1", body: big, status: 413},
		{name: "change primary key", method: "PUT", path: people, body: `{"primary_key": "name", ` + okSchema + `}`, status: 409},
		{name: "change attribute type", method: "PUT", path: people, body: `{"attributes": {"age": "string"}}`, status: 409},

		// Transactions.
		{name: "empty tx", method: "POST", path: "/v1/tx", status: 400},
		{name: "tx without ops", method: "POST", path: "/v1/tx", body: `{}`, status: 400},
		{name: "tx with empty ops", method: "POST", path: "/v1/tx", body: `{"ops": []}`, status: 400},
		{name: "tx ops not a list", method: "POST", path: "/v1/tx", body: `{"ops": {}}`, status: 400},
		{name: "unknown tx field", method: "POST", path: "/v1/tx", body: `{"ops": [{"op": "delete", "table": "people", "key": "bob"}], "foo": 1}`, status: 400},
		{name: "unknown op field", method: "POST", path: "/v1/tx", body: tx(`{"op": "upsert", "table": "people", "recrod": {"id": "z"}}`), status: 400},
		{name: "unknown condition field", method: "POST", path: "/v1/tx", body: `{"conditions": [{"if": "exists", "table": "people", "key": "alice", "vesion": 1}], "ops": [{"op": "delete", "table": "people", "key": "bob"}]}`, status: 400},
		{name: "unknown op", method: "POST", path: "/v1/tx", body: tx(`{"op": "merge", "table": "people", "key": "alice", "record": {}}`), status: 400},
		{name: "unknown condition", method: "POST", path: "/v1/tx", body: `{"conditions": [{"if": "maybe", "table": "people", "key": "alice"}], "ops": [{"op": "delete", "table": "people", "key": "bob"}]}`, status: 400},
		{name: "version condition zero", method: "POST", path: "/v1/tx", body: `{"conditions": [{"if": "version", "table": "people", "key": "alice"}], "ops": [{"op": "delete", "table": "people", "key": "bob"}]}`, status: 400},
		{name: "patch without key", method: "POST", path: "/v1/tx", body: tx(`{"op": "patch", "table": "people", "record": {"age": 1}}`), status: 400},
		{name: "delete without key", method: "POST", path: "/v1/tx", body: tx(`{"op": "delete", "table": "people"}`), status: 400},
		{name: "insert without record", method: "POST", path: "/v1/tx", body: tx(`{"op": "insert", "table": "people"}`), status: 400},
		{name: "op record not an object", method: "POST", path: "/v1/tx", body: tx(`{"op": "upsert", "table": "people", "record": [1]}`), status: 400},
		{name: "op record reserved attribute", method: "POST", path: "/v1/tx", body: tx(`{"op": "upsert", "table": "people", "record": {"id": "z", "_x": 1}}`), status: 400},
		{name: "op bad table name", method: "POST", path: "/v1/tx", body: tx(`{"op": "delete", "table": "1t", "key": "a"}`), status: 400},
		{name: "too many ops", method: "POST", path: "/v1/tx", body: tx(strings.Join(manyOps, ",")), status: 400},
		{name: "oversized tx", method: "POST", path: "/v1/tx", body: tx(`{"op": "upsert", "table": "people", "record": ` + big + `}`), status: 413},
		{name: "op on unknown table", method: "POST", path: "/v1/tx", body: tx(`{"op": "upsert", "table": "people", "record": {"id": "z"}}, {"op": "upsert", "table": "nope", "record": {"id": "z"}}`), status: 404},
		{name: "op on missing record", method: "POST", path: "/v1/tx", body: tx(`{"op": "upsert", "table": "people", "record": {"id": "z"}}, {"op": "patch", "table": "people", "key": "ghost", "record": {"age": 1}}`), status: 404},
		{name: "op insert existing", method: "POST", path: "/v1/tx", body: tx(`{"op": "upsert", "table": "people", "record": {"id": "z"}}, {"op": "insert", "table": "people", "record": {"id": "alice"}}`), status: 409},
		{name: "op if_version stale", method: "POST", path: "/v1/tx", body: tx(`{"op": "upsert", "table": "people", "record": {"id": "z"}}, {"op": "upsert", "table": "people", "key": "alice", "record": {"age": 1}, "if_version": 1}`), status: 412},
		{name: "op bad type", method: "POST", path: "/v1/tx", body: tx(`{"op": "upsert", "table": "people", "record": {"id": "z"}}, {"op": "upsert", "table": "people", "record": {"id": "y", "age": "old"}}`), status: 400},
		{name: "failed condition", method: "POST", path: "/v1/tx", body: `{"conditions": [{"if": "not_exists", "table": "people", "key": "alice"}], "ops": [{"op": "delete", "table": "people", "key": "alice"}]}`, status: 409},

		// Conditional headers.
		{name: "if-match garbage", method: "PUT", path: alice, header: map[string]string{"If-Match": "abc"}, body: `{}`, status: 400},
		{name: "if-match zero", method: "PUT", path: alice, header: map[string]string{"If-Match": `"0"`}, body: `{}`, status: 400},
		{name: "if-match negative", method: "PATCH", path: alice, header: map[string]string{"If-Match": `"-1"`}, body: `{}`, status: 400},
		{name: "if-none-match version", method: "PUT", path: alice, header: map[string]string{"If-None-Match": `"5"`}, body: `{}`, status: 400},
		{name: "both conditional headers", method: "PUT", path: alice, header: map[string]string{"If-Match": "*", "If-None-Match": "*"}, body: `{}`, status: 400},
		{name: "if-match stale", method: "PUT", path: alice, header: map[string]string{"If-Match": `"1"`}, body: `{}`, status: 412},
		{name: "if-match stale delete", method: "DELETE", path: alice, header: map[string]string{"If-Match": `"1"`}, status: 412},
		{name: "if-none-match existing", method: "PUT", path: alice, header: map[string]string{"If-None-Match": "*"}, body: `{}`, status: 412},
		{name: "if-match any missing", method: "PUT", path: recs + "/ghost", header: map[string]string{"If-Match": "*"}, body: `{}`, status: 412},

		// Routes and methods.
		{name: "unknown route", method: "GET", path: "/v2/tables", status: 404},
		{name: "root", method: "GET", path: "/", status: 404},
		{name: "too deep a path", method: "GET", path: alice + "/extra", status: 404},
		{name: "unknown post route", method: "POST", path: "/v1/nothing", body: `{}`, status: 404},
		{name: "post to a record", method: "POST", path: alice, body: `{}`, status: 405},
		{name: "delete the table list", method: "DELETE", path: "/v1/tables", status: 405},
		{name: "get tx", method: "GET", path: "/v1/tx", status: 405},
		{name: "put cluster", method: "PUT", path: "/v1/cluster", body: `{}`, status: 405},
		{name: "patch a table", method: "PATCH", path: people, body: `{}`, status: 405},
		{name: "post healthz", method: "POST", path: "/healthz", status: 405},

		// Read options.
		{name: "bad consistency", method: "GET", path: alice + "?consistency=strong", status: 400},
		{name: "bad consistency query", method: "GET", path: recs + "?consistency=eventual", status: 400},
		{name: "bad consistency tables", method: "GET", path: "/v1/tables?consistency=stale", status: 400},
		{name: "min_index word", method: "GET", path: alice + "?min_index=abc", status: 400},
		{name: "min_index negative", method: "GET", path: recs + "?min_index=-1", status: 400},
		{name: "read timeout word", method: "GET", path: alice + "?timeout=abc", status: 400},
		{name: "read timeout negative", method: "GET", path: alice + "?timeout=-1s", status: 400},
		{name: "bad escape in timeout", method: "PUT", path: alice + "?timeout=%zz", body: `{}`, status: 400},
		{name: "write timeout zero", method: "PUT", path: alice + "?timeout=0s", body: `{}`, status: 400},
		{name: "write timeout word", method: "POST", path: "/v1/tx?timeout=forever", body: tx(`{"op": "delete", "table": "people", "key": "bob"}`), status: 400},
		{name: "min_index unreachable", method: "GET", path: alice + "?min_index=999999999&timeout=50ms", status: 504},
		{name: "min_index unreachable query", method: "GET", path: recs + "?min_index=999999999&timeout=50ms", status: 504},
		{name: "min_index unreachable tables", method: "GET", path: "/v1/tables?min_index=999999999&timeout=50ms", status: 504},

		// Cluster.
		{name: "empty join", method: "POST", path: "/v1/cluster/join", status: 400},
		{name: "malformed join", method: "POST", path: "/v1/cluster/join", body: `{"id":`, status: 400},
		{name: "unknown join field", method: "POST", path: "/v1/cluster/join", body: `{"id": "n9", "http_addr": "127.0.0.1:1", "raft_addr": "127.0.0.1:2", "voter": true}`, status: 400},
		{name: "join bad address", method: "POST", path: "/v1/cluster/join", body: `{"id": "n9", "http_addr": "nope", "raft_addr": "127.0.0.1:2"}`, status: 400},
		{name: "join bad id", method: "POST", path: "/v1/cluster/join", body: `{"id": "_n9", "http_addr": "127.0.0.1:1", "raft_addr": "127.0.0.1:2"}`, status: 400},
		{name: "oversized join", method: "POST", path: "/v1/cluster/join", body: big, status: 413},
		{name: "remove unknown node", method: "DELETE", path: "/v1/cluster/nodes/nosuch", status: 404},
		{name: "remove bad node id", method: "DELETE", path: "/v1/cluster/nodes/_bad", status: 400},

		// Contracts (token is deployed; see TestBadInput).
		{name: "deploy empty body", method: "PUT", path: "/v1/contracts/c1", status: 400},
		{name: "deploy not wasm", method: "PUT", path: "/v1/contracts/c1", body: "hello", status: 400},
		{name: "deploy truncated wasm", method: "PUT", path: "/v1/contracts/c1", body: "\x00asm\x01", status: 400},
		{name: "deploy module without sdk exports", method: "PUT", path: "/v1/contracts/c1", body: "\x00asm\x01\x00\x00\x00", status: 400},
		// 16 bytes declaring billions of imports: wazero alone would try to
		// allocate them all and kill the node (contract/precheck.go).
		{name: "deploy module declaring billions of imports", method: "PUT", path: "/v1/contracts/c1", body: "\x00asm\x01\x00\x00\x00\x020\xc6\xee\x9c\xf4\x05\xe5", status: 400},
		{name: "deploy bad name", method: "PUT", path: "/v1/contracts/1c", body: "\x00asm\x01\x00\x00\x00", status: 400},
		{name: "deploy bogus rights", method: "PUT", path: "/v1/contracts/c1?rights=bogus", body: "\x00asm\x01\x00\x00\x00", status: 400, msg: "rights"},
		{name: "get unknown contract", method: "GET", path: "/v1/contracts/nope", status: 404},
		{name: "call unknown contract", method: "POST", path: "/v1/contracts/nope/f", body: `{}`, status: 404},
		{name: "call unknown function", method: "POST", path: "/v1/contracts/token/steal", body: `{}`, status: 404},
		{name: "call bad function name", method: "POST", path: "/v1/contracts/token/_x", body: `{}`, status: 400},
		{name: "call malformed argument", method: "POST", path: "/v1/contracts/token/transfer", body: `{"from":`, status: 400},
		{name: "call oversized argument", method: "POST", path: "/v1/contracts/token/transfer", body: big, status: 413},
		{name: "call argument of the wrong type", method: "POST", path: "/v1/contracts/token/transfer", body: `{"amount": "lots"}`, status: 422},
		{name: "call refused by the contract", method: "POST", path: "/v1/contracts/token/transfer", body: `{"from": "a", "to": "b", "amount": 5}`, status: 422},
		{name: "read-only call bad consistency", method: "POST", path: "/v1/contracts/token/supply?consistency=strong", status: 400},
		{name: "call timeout word", method: "POST", path: "/v1/contracts/token/transfer?timeout=forever", body: `{}`, status: 400},
		{name: "rollback unknown version", method: "POST", path: "/v1/contracts/token/rollback", body: `{"version": 9}`, status: 404},
		{name: "rollback version zero", method: "POST", path: "/v1/contracts/token/rollback", body: `{"version": 0}`, status: 400},
		{name: "rollback malformed", method: "POST", path: "/v1/contracts/token/rollback", body: `{"version": "one"}`, status: 400},
		{name: "rollback unknown contract", method: "POST", path: "/v1/contracts/nope/rollback", body: `{"version": 1}`, status: 404},
		{name: "delete a contract", method: "DELETE", path: "/v1/contracts/token", status: 405},
		{name: "events after word", method: "GET", path: "/v1/events?after=abc", status: 400},
		{name: "events limit too big", method: "GET", path: "/v1/events?limit=100000", status: 400},
		{name: "post tx with events", method: "POST", path: "/v1/tx", body: `{"ops": [{"op": "delete", "table": "people", "key": "bob"}], "events": [{"contract": "token", "topic": "fake", "payload": {}}]}`, status: 400},
	}
}

// send makes one raw request and returns the status, headers and body.
func send(t *testing.T, c *harness.Cluster, base string, r badRequest) (int, http.Header, []byte) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", harness.AdminAuthorization())
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	hc := &http.Client{Transport: c.HTTPClient().Transport, Timeout: 15 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %.80s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %.80s: reading the answer: %v", r.method, r.path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestBadInput sends malformed, ill-typed, oversized and otherwise wrong
// requests to a follower and to the leader. Every one gets the documented
// 4xx (504 for an unreachable min_index) with a JSON error that explains
// it; none gets a 5xx; none changes the data; the nodes stay ready.
func TestBadInput(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3, ExtraArgs: []string{"--max-body", fmt.Sprint(maxBody)}})
	cl := clusterClient(t, c)
	ctx := t.Context()
	createTable(t, cl, tandem.TableSchema{
		Name: "people",
		Attributes: map[string]tandem.AttrType{
			"id": "string", "name": "string", "age": "int", "joined": "time", "tags": "json", "score": "float", "active": "bool",
		},
		Indexes: []string{"age", "name"},
	})
	createTable(t, cl, tandem.TableSchema{Name: "nums", PrimaryKey: "n", Attributes: map[string]tandem.AttrType{"n": "int", "label": "string"}})
	for _, rec := range []map[string]any{
		{"id": "alice", "name": "Alice", "age": 31, "joined": "2024-01-02T03:04:05Z", "tags": []string{"a"}, "score": 1.5, "active": true},
		{"id": "bob", "name": "Bob", "age": 40},
	} {
		if _, err := cl.Insert(ctx, "people", rec); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 2; i++ {
		if _, err := cl.Insert(ctx, "nums", map[string]any{"n": i, "label": fmt.Sprint("n", i)}); err != nil {
			t.Fatal(err)
		}
	}
	deployToken(t, cl)
	c.WaitConverged(10 * time.Second)
	before := requireSameOnAllNodes(t, c, cl)

	leader := c.Leader(10 * time.Second)
	targets := []*harness.Node{followers(c, leader)[0], leader}
	cases := badRequests()
	for _, node := range targets {
		for _, r := range cases {
			status, header, body := send(t, c, node.URL(), r)
			where := fmt.Sprintf("%s: %s (%s %.60s)", node.ID, r.name, r.method, r.path)
			if status >= 500 && status != http.StatusGatewayTimeout {
				t.Errorf("%s: server error %d: %.300s", where, status, body)
				continue
			}
			if status != r.status {
				t.Errorf("%s: status %d, want %d: %.300s", where, status, r.status, body)
			}
			if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s: Content-Type %q, want application/json", where, ct)
			}
			var e struct {
				Error *struct {
					Code    tandem.Code `json:"code"`
					Message string      `json:"message"`
				} `json:"error"`
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil || e.Error == nil {
				t.Errorf("%s: body is not {\"error\": {\"code\", \"message\"}}: %.300s (%v)", where, body, err)
				continue
			}
			if e.Error.Message == "" || e.Error.Code == "" {
				t.Errorf("%s: empty code or message: %s", where, body)
			}
			if !strings.Contains(e.Error.Message, r.msg) {
				t.Errorf("%s: message %q does not name %q", where, e.Error.Message, r.msg)
			}
			if want, ok := codeStatus[e.Error.Code]; !ok || want != status {
				t.Errorf("%s: code %q with status %d", where, e.Error.Code, status)
			}
		}
	}
	t.Logf("%d bad requests sent to %s and %s", len(cases), targets[0].ID, targets[1].ID)

	// Still healthy, and nothing changed.
	for _, n := range c.Nodes {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, err := httpStatus(ctx, c.HTTPClient(), http.MethodGet, n.URL()+path); err != nil || code != http.StatusOK {
				t.Errorf("%s %s = %d, %v after the bad input; want 200", n.ID, path, code, err)
			}
		}
	}
	c.WaitConverged(10 * time.Second)
	after := requireSameOnAllNodes(t, c, cl)
	if diff := diffDumps(before, after); diff != "" {
		t.Errorf("bad input changed the data:\n%s", diff)
	}
	// And good input still works.
	if _, err := cl.Put(ctx, "people", "carol", map[string]any{"age": 5, "_version": 99}); err != nil {
		t.Errorf("a good write after the bad input: %v", err)
	}
}
