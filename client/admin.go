package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/tandemdb/tandem"
)

func tablePath(name string) (string, error) {
	if name == "" {
		return "", invalid("table name is empty")
	}
	return "/v1/tables/" + url.PathEscape(name), nil
}

// CreateTable creates the table schema.Name, or changes it if it exists (add
// attributes, add or drop indexes). It returns the schema as stored, with
// its version, and the log index of the change.
func (c *Client) CreateTable(ctx context.Context, schema tandem.TableSchema) (*tandem.TableSchema, uint64, error) {
	p, err := tablePath(schema.Name)
	if err != nil {
		return nil, 0, err
	}
	schema.Version = 0
	b, err := json.Marshal(schema)
	if err != nil {
		return nil, 0, fmt.Errorf("client: encode table: %w", err)
	}
	rep, err := c.do(ctx, &call{method: http.MethodPut, path: p, body: b})
	if err != nil {
		return nil, 0, err
	}
	t, err := decodeTable(rep)
	return t, rep.index(), err
}

// Table returns the schema of the named table.
func (c *Client) Table(ctx context.Context, name string, opts ...ReadOption) (*tandem.TableSchema, error) {
	p, err := tablePath(name)
	if err != nil {
		return nil, err
	}
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: p, query: readQuery(nil, opts), retry: retryTransport})
	if err != nil {
		return nil, err
	}
	return decodeTable(rep)
}

func decodeTable(rep *reply) (*tandem.TableSchema, error) {
	var body struct {
		Table *tandem.TableSchema `json:"table"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil || body.Table == nil {
		return nil, fmt.Errorf("client: decode table: response has no \"table\" object (%v)", err)
	}
	return body.Table, nil
}

// Tables returns the schemas of every table.
func (c *Client) Tables(ctx context.Context, opts ...ReadOption) ([]tandem.TableSchema, error) {
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/tables", query: readQuery(nil, opts), retry: retryTransport})
	if err != nil {
		return nil, err
	}
	var body struct {
		Tables []tandem.TableSchema `json:"tables"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return nil, fmt.Errorf("client: decode tables: %w", err)
	}
	return body.Tables, nil
}

// DropTable deletes the named table and all its records, and returns the
// log index of the change.
func (c *Client) DropTable(ctx context.Context, name string) (uint64, error) {
	p, err := tablePath(name)
	if err != nil {
		return 0, err
	}
	rep, err := c.do(ctx, &call{method: http.MethodDelete, path: p})
	if err != nil {
		return 0, err
	}
	return rep.index(), nil
}

// ClusterStatus is the answer of GET /v1/cluster.
type ClusterStatus struct {
	Leader string              `json:"leader"` // the leader's node ID, empty if none is known
	Nodes  []tandem.NodeStatus `json:"nodes"`
}

// Cluster returns the cluster's members as the node that answers sees them,
// each with its own applied index and ledger hash.
func (c *Client) Cluster(ctx context.Context) (*ClusterStatus, error) {
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: "/v1/cluster", retry: retryTransport})
	if err != nil {
		return nil, err
	}
	var st ClusterStatus
	if err := json.Unmarshal(rep.body, &st); err != nil {
		return nil, fmt.Errorf("client: decode cluster status: %w", err)
	}
	return &st, nil
}

// Join adds a voting node to the cluster. Joining again with the same
// addresses is harmless.
func (c *Client) Join(ctx context.Context, node tandem.NodeInfo) error {
	b, err := json.Marshal(node)
	if err != nil {
		return fmt.Errorf("client: encode node: %w", err)
	}
	_, err = c.do(ctx, &call{method: http.MethodPost, path: "/v1/cluster/join", body: b})
	return err
}

// RemoveNode removes a node from the Raft configuration and the node list.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	if id == "" {
		return invalid("node ID is empty")
	}
	_, err := c.do(ctx, &call{method: http.MethodDelete, path: "/v1/cluster/nodes/" + url.PathEscape(id)})
	return err
}

// Health returns nil if the node's process is up (GET /healthz). It asks
// one node and never another in its place: use Node(i).Health to check
// node i.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, &call{method: http.MethodGet, path: "/healthz", retry: retryNever})
	return err
}

// Ready returns nil if the node knows a leader and has caught up with it
// (GET /readyz), and a CodeUnavailable error if not. Like Health, it asks
// one node only.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, &call{method: http.MethodGet, path: "/readyz", retry: retryNever})
	return err
}
