package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// clusterClient returns a client for every node of c in c.Nodes order, so
// that cl.Node(i) talks to c.Nodes[i].
func clusterClient(t *testing.T, c *harness.Cluster, opts ...client.Option) *client.Client {
	t.Helper()
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.URL()
	}
	cl, err := client.New(addrs, append(c.ClientOptions(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// nodeIndex returns the position of n in c.Nodes.
func nodeIndex(t *testing.T, c *harness.Cluster, n *harness.Node) int {
	t.Helper()
	i := slices.Index(c.Nodes, n)
	if i < 0 {
		t.Fatalf("node %s is not in the cluster", n.ID)
	}
	return i
}

// followers returns the running nodes other than leader.
func followers(c *harness.Cluster, leader *harness.Node) []*harness.Node {
	var out []*harness.Node
	for _, n := range c.Nodes {
		if n != leader && n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// createTable creates a table and fails the test if it cannot.
func createTable(t *testing.T, cl *client.Client, schema tandem.TableSchema) uint64 {
	t.Helper()
	got, idx, err := cl.CreateTable(t.Context(), schema)
	if err != nil {
		t.Fatalf("create table %s: %v", schema.Name, err)
	}
	if got.Name != schema.Name || got.Version == 0 || idx == 0 {
		t.Fatalf("create table %s: got %+v at index %d", schema.Name, got, idx)
	}
	return idx
}

// dumpTable returns every record of table on the node cl talks to, keyed by
// primary key, as the JSON the node serves.
func dumpTable(t *testing.T, cl *client.Client, table string, opts ...client.ReadOption) map[string]string {
	t.Helper()
	ctx := t.Context()
	schema, err := cl.Table(ctx, table, opts...)
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	out := map[string]string{}
	for page, err := range cl.QueryPages(ctx, table, url.Values{"limit": {"10000"}}, opts...) {
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		for _, raw := range page.Records {
			var rec map[string]any
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&rec); err != nil {
				t.Fatalf("dump %s: record %s: %v", table, raw, err)
			}
			key := fmt.Sprint(rec[schema.PrimaryKey])
			if _, dup := out[key]; dup {
				t.Fatalf("dump %s: key %q returned twice", table, key)
			}
			out[key] = string(raw)
		}
	}
	return out
}

// dump is a node's whole visible state: every table's schema and records.
type dump struct {
	Tables  map[string]tandem.TableSchema
	Records map[string]map[string]string
}

func dumpAll(t *testing.T, cl *client.Client, opts ...client.ReadOption) dump {
	t.Helper()
	tables, err := cl.Tables(t.Context(), opts...)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	d := dump{Tables: map[string]tandem.TableSchema{}, Records: map[string]map[string]string{}}
	for _, s := range tables {
		d.Tables[s.Name] = s
		d.Records[s.Name] = dumpTable(t, cl, s.Name, opts...)
	}
	return d
}

// diffDumps describes how b differs from a, or returns "".
func diffDumps(a, b dump) string {
	var out string
	add := func(format string, args ...any) {
		if len(out) < 2000 {
			out += fmt.Sprintf(format, args...) + "\n"
		}
	}
	for name, sa := range a.Tables {
		sb, ok := b.Tables[name]
		if !ok {
			add("table %s missing", name)
			continue
		}
		ja, _ := json.Marshal(sa)
		jb, _ := json.Marshal(sb)
		if string(ja) != string(jb) {
			add("table %s schema: %s vs %s", name, ja, jb)
		}
		for k, ra := range a.Records[name] {
			if rb, ok := b.Records[name][k]; !ok {
				add("%s/%s missing", name, k)
			} else if ra != rb {
				add("%s/%s: %s vs %s", name, k, ra, rb)
			}
		}
		for k, rb := range b.Records[name] {
			if _, ok := a.Records[name][k]; !ok {
				add("%s/%s unexpected: %s", name, k, rb)
			}
		}
	}
	for name := range b.Tables {
		if _, ok := a.Tables[name]; !ok {
			add("table %s unexpected", name)
		}
	}
	return out
}

// requireSameOnAllNodes checks that every running node serves the same
// tables and records from its local state, and returns that state.
func requireSameOnAllNodes(t *testing.T, c *harness.Cluster, cl *client.Client) dump {
	t.Helper()
	// The reads are local: first let every follower apply what the
	// leader committed (a follower a few milliseconds behind is not a
	// difference in data).
	c.WaitConverged(30 * time.Second)
	var first dump
	firstID := ""
	for i, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		d := dumpAll(t, cl.Node(i), client.Local())
		if firstID == "" {
			first, firstID = d, n.ID
			continue
		}
		if diff := diffDumps(first, d); diff != "" {
			t.Fatalf("%s and %s serve different data:\n%s", firstID, n.ID, diff)
		}
	}
	return first
}

// wantAPIError checks that err is an API error with the given HTTP status
// and a message, and returns it.
func wantAPIError(t *testing.T, err error, status int) *client.Error {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v, want an API error with status %d", err, status)
	}
	if ce.Status != status || ce.Message == "" {
		t.Fatalf("got status %d code %q message %q, want status %d and a message", ce.Status, ce.Code, ce.Message, status)
	}
	return ce
}

// outcomeUnknown reports whether a failed write may have been applied: the
// call timed out, lost its connection, or the server said it could not
// tell (503, 504). Any other API error is a definite rejection.
func outcomeUnknown(err error) bool {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return true
	}
	return ce.Status == http.StatusServiceUnavailable || ce.Status == http.StatusGatewayTimeout
}

// getJSON reads a record on the node cl talks to and decodes it.
func getJSON(t *testing.T, cl *client.Client, table, key string, v any, opts ...client.ReadOption) client.Record {
	t.Helper()
	rec, err := cl.Get(t.Context(), table, key, opts...)
	if err != nil {
		t.Fatalf("get %s/%s: %v", table, key, err)
	}
	if v != nil {
		if err := rec.Decode(v); err != nil {
			t.Fatalf("get %s/%s: decode %s: %v", table, key, rec.JSON, err)
		}
	}
	return rec
}

// waitFor polls cond every 50ms until it returns "" or d passes, then fails
// with cond's last explanation.
func waitFor(t *testing.T, d time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, d, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpStatus sends a bodiless request through hc and returns the status code.
func httpStatus(ctx context.Context, hc *http.Client, method, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
