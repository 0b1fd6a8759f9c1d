package cluster_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// TestReplicationAndForwarding writes through followers and reads on other
// nodes: a follower forwards writes to the leader, the write's
// Tandem-Index gives read-your-writes on any node, and every node ends up
// serving the same records at the same versions.
func TestReplicationAndForwarding(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3})
	cl := clusterClient(t, c)
	ctx := t.Context()

	leader := c.Leader(10 * time.Second)
	fs := followers(c, leader)
	writer, reader := cl.Node(nodeIndex(t, c, fs[0])), cl.Node(nodeIndex(t, c, fs[1]))

	// Tables are created through a follower too.
	tableIdx := createTable(t, reader, tandem.TableSchema{
		Name:       "accounts",
		Attributes: map[string]tandem.AttrType{"id": "string", "owner": "string", "balance": "int"},
		Indexes:    []string{"balance"},
	})
	createTable(t, writer, tandem.TableSchema{
		Name:       "transfers",
		Attributes: map[string]tandem.AttrType{"id": "string", "amount": "int"},
	})
	if _, err := writer.Table(ctx, "accounts", client.MinIndex(tableIdx)); err != nil {
		t.Fatalf("table created on %s not visible on %s at its index: %v", fs[1].ID, fs[0].ID, err)
	}

	// A write through a follower is visible on a third node at its index.
	put, err := writer.Put(ctx, "accounts", "alice", map[string]any{"owner": "Alice", "balance": 100})
	if err != nil {
		t.Fatalf("put through follower %s: %v", fs[0].ID, err)
	}
	if put.Index == 0 || put.Version != put.Index {
		t.Fatalf("put answered %+v; want a version equal to its Tandem-Index", put)
	}
	var alice struct {
		ID      string `json:"id"`
		Owner   string `json:"owner"`
		Balance int    `json:"balance"`
		Version uint64 `json:"_version"`
	}
	rec := getJSON(t, reader, "accounts", "alice", &alice, client.MinIndex(put.Index))
	if alice.ID != "alice" || alice.Owner != "Alice" || alice.Balance != 100 || alice.Version != put.Version || rec.Version != put.Version {
		t.Fatalf("%s at index %d read %s (ETag version %d); want alice's write at version %d", fs[1].ID, put.Index, rec.JSON, rec.Version, put.Version)
	}
	if rec.Index < put.Index {
		t.Fatalf("read served at applied index %d, below min_index %d", rec.Index, put.Index)
	}

	// Every kind of write, each through a follower.
	ins, err := writer.Insert(ctx, "accounts", map[string]any{"id": "bob", "owner": "Bob", "balance": 50})
	if err != nil || ins.Key != "bob" || ins.Version == 0 {
		t.Fatalf("insert bob: %+v, %v", ins, err)
	}
	if _, err := reader.Insert(ctx, "accounts", map[string]any{"id": "carol", "owner": "Carol", "balance": 7}); err != nil {
		t.Fatalf("insert carol: %v", err)
	}
	patch, err := reader.Patch(ctx, "accounts", "carol", map[string]any{"balance": 8, "owner": nil})
	if err != nil {
		t.Fatalf("patch carol: %v", err)
	}
	var carol map[string]any
	getJSON(t, writer, "accounts", "carol", &carol, client.MinIndex(patch.Index))
	if _, has := carol["owner"]; has || carol["balance"] != float64(8) {
		t.Fatalf("carol after patch = %v; want balance 8 and no owner", carol)
	}
	if _, err := writer.Insert(ctx, "accounts", map[string]any{"id": "dave", "balance": 1}); err != nil {
		t.Fatalf("insert dave: %v", err)
	}
	del, err := reader.Delete(ctx, "accounts", "dave")
	if err != nil {
		t.Fatalf("delete dave: %v", err)
	}
	if _, err := writer.Get(ctx, "accounts", "dave", client.MinIndex(del.Index)); !client.IsCode(err, tandem.CodeNotFound) {
		t.Fatalf("dave after delete: %v; want not_found", err)
	}

	// A transaction across two tables, through a follower.
	before := getJSON(t, writer, "accounts", "alice", nil)
	txIdx, err := writer.Tx(ctx, tandem.Tx{
		Conditions: []tandem.Condition{
			{Kind: tandem.CondVersion, Table: "accounts", Key: "alice", Version: before.Version},
			{Kind: tandem.CondNotExists, Table: "transfers", Key: "t1"},
		},
		Ops: []tandem.Op{
			{Op: tandem.OpPatch, Table: "accounts", Key: "alice", Record: json.RawMessage(`{"balance": 90}`)},
			{Op: tandem.OpPatch, Table: "accounts", Key: "bob", Record: json.RawMessage(`{"balance": 60}`)},
			{Op: tandem.OpInsert, Table: "transfers", Record: json.RawMessage(`{"id": "t1", "amount": 10}`)},
		},
	})
	if err != nil {
		t.Fatalf("tx through follower: %v", err)
	}
	for _, want := range []struct {
		table, key string
		attr       string
		val        float64
	}{{"accounts", "alice", "balance", 90}, {"accounts", "bob", "balance", 60}, {"transfers", "t1", "amount", 10}} {
		var got map[string]any
		r := getJSON(t, reader, want.table, want.key, &got, client.MinIndex(txIdx))
		if got[want.attr] != want.val || r.Version != txIdx {
			t.Fatalf("%s/%s after tx at %d: %s (version %d); want %s=%v at version %d", want.table, want.key, txIdx, r.JSON, r.Version, want.attr, want.val, txIdx)
		}
	}

	// Failing conditions: 409 naming the condition, nothing applied.
	staleTx := func(conds []tandem.Condition) tandem.Tx {
		return tandem.Tx{Conditions: conds, Ops: []tandem.Op{
			{Op: tandem.OpPatch, Table: "accounts", Key: "alice", Record: json.RawMessage(`{"balance": 0}`)},
			{Op: tandem.OpInsert, Table: "transfers", Record: json.RawMessage(`{"id": "t2", "amount": 90}`)},
		}}
	}
	for _, tc := range []struct {
		name  string
		conds []tandem.Condition
		want  []string
	}{
		{"stale version", []tandem.Condition{{Kind: tandem.CondVersion, Table: "accounts", Key: "alice", Version: before.Version}},
			[]string{"condition 0", "accounts/alice"}},
		{"second condition", []tandem.Condition{
			{Kind: tandem.CondExists, Table: "accounts", Key: "alice"},
			{Kind: tandem.CondNotExists, Table: "transfers", Key: "t1"}},
			[]string{"condition 1", "transfers/t1"}},
		{"missing record", []tandem.Condition{{Kind: tandem.CondExists, Table: "accounts", Key: "nobody"}},
			[]string{"condition 0", "accounts/nobody"}},
	} {
		_, err := writer.Tx(ctx, staleTx(tc.conds))
		ce := wantAPIError(t, err, http.StatusConflict)
		if ce.Code != tandem.CodeConflict {
			t.Errorf("%s: code %q, want conflict", tc.name, ce.Code)
		}
		for _, w := range tc.want {
			if !strings.Contains(ce.Message, w) {
				t.Errorf("%s: message %q does not name %q", tc.name, ce.Message, w)
			}
		}
	}
	// A failing op also undoes the ops before it.
	_, err = writer.Tx(ctx, tandem.Tx{Ops: []tandem.Op{
		{Op: tandem.OpPatch, Table: "accounts", Key: "alice", Record: json.RawMessage(`{"balance": 0}`)},
		{Op: tandem.OpInsert, Table: "transfers", Record: json.RawMessage(`{"id": "t1", "amount": 1}`)},
	}})
	if ce := wantAPIError(t, err, http.StatusConflict); !strings.Contains(ce.Message, "op 1") {
		t.Errorf("failed op: message %q does not name op 1", ce.Message)
	}
	for i := range c.Nodes {
		var a map[string]any
		r := getJSON(t, cl.Node(i), "accounts", "alice", &a) // linearizable
		if a["balance"] != float64(90) || r.Version != txIdx {
			t.Errorf("%s: alice after rejected txs = %s (version %d); want balance 90 at version %d", c.Nodes[i].ID, r.JSON, r.Version, txIdx)
		}
		if _, err := cl.Node(i).Get(ctx, "transfers", "t2"); !client.IsCode(err, tandem.CodeNotFound) {
			t.Errorf("%s: transfers/t2 of a rejected tx: %v; want not_found", c.Nodes[i].ID, err)
		}
	}

	// Converged: every node's local state is identical, record by record.
	idx, hash := c.WaitConverged(20 * time.Second)
	t.Logf("converged at index %d, ledger %.12s", idx, hash)
	d := requireSameOnAllNodes(t, c, cl)
	if n := len(d.Records["accounts"]); n != 3 {
		t.Errorf("accounts holds %d records, want 3 (alice, bob, carol): %v", n, d.Records["accounts"])
	}
	for _, key := range []string{"alice", "bob", "carol"} {
		var first client.Record
		for i, n := range c.Nodes {
			r := getJSON(t, cl.Node(i), "accounts", key, nil, client.Local())
			if i == 0 {
				first = r
			} else if string(r.JSON) != string(first.JSON) || r.Version != first.Version {
				t.Errorf("accounts/%s: %s serves %s v%d, %s serves %s v%d", key, c.Nodes[0].ID, first.JSON, first.Version, n.ID, r.JSON, r.Version)
			}
		}
	}
}
