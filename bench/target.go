package bench

import (
	"context"
	"fmt"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
)

// Consistency is the guarantee a read asks of the store.
type Consistency int

const (
	// Local reads the state of the node asked, without a round trip to the
	// leader: Tandem's consistency=local, etcd's serializable reads.
	Local Consistency = iota
	// Linearizable reads see every write acknowledged before they began:
	// Tandem's default consistency, etcd's default reads.
	Linearizable
)

// KV is one record written by Conn.Tx.
type KV struct {
	Key   string
	Value []byte
}

// Conn is one client's handle on the store under test. A run gives each
// client its own Conn and calls it only from that client's goroutine; a
// Conn may share connections with others.
//
// Errors that implement ErrorCode() string are counted in Result.Errors
// under that code.
type Conn interface {
	// Put writes value under key.
	Put(ctx context.Context, key string, value []byte) error
	// Get reads key at consistency c.
	Get(ctx context.Context, key string, c Consistency) error
	// Tx writes every record of kvs, all or none.
	Tx(ctx context.Context, kvs []KV) error
}

// Target is a store a run drives: Tandem through its REST API
// (TandemTarget), or another store for comparison (bench/etcd).
type Target interface {
	// Prepare readies the store for the run, for instance by creating the
	// table the workloads write to. Run calls it once, first.
	Prepare(ctx context.Context) error
	// Conn returns the connection of client i, 0 ≤ i < Config.Clients.
	Conn(i int) Conn
	// Endpoints names where the store listens, for Result.Addrs.
	Endpoints() []string
}

// TxLimiter is implemented by targets that bound the number of records in
// one transaction; the preload keeps its batches within the bound.
type TxLimiter interface {
	MaxTxRecords() int
}

// TandemTarget drives Tandem through its REST API (package client). Each
// record is {"v": value}, with "id" as well in transactions.
type TandemTarget struct {
	c     *client.Client
	table string
	// balanced: connections are not pinned to a node.
	balanced bool
}

var (
	_ Target    = (*TandemTarget)(nil)
	_ TxLimiter = (*TandemTarget)(nil)
	_ Settler   = (*TandemTarget)(nil)
)

// Settler is implemented by targets whose nodes may lag behind what was
// written: Settle returns once every node has applied every write
// acknowledged before the call. Run calls it after the preload, so local
// reads find every preloaded key.
type Settler interface {
	Settle(ctx context.Context) error
}

// Settle reads the table's schema linearizably on every node: each waits
// until it has applied the leader's commit index.
func (t *TandemTarget) Settle(ctx context.Context) error {
	for i := range t.c.Addrs() {
		if _, err := t.c.Node(i).Table(ctx, t.table); err != nil {
			return fmt.Errorf("bench: wait for node %s to apply the preload: %w", t.c.Addrs()[i], err)
		}
	}
	return nil
}

// NewTandemTarget returns a target that writes to table through c. Unless
// balanced, client i sends every request to node i modulo the number of
// nodes; balanced, each request goes to the next node in turn and moves on
// when a node cannot be dialled, which is what a failover measurement needs.
func NewTandemTarget(c *client.Client, table string, balanced bool) *TandemTarget {
	return &TandemTarget{c: c, table: table, balanced: balanced}
}

// Prepare creates the table with primary key "id" (string) and attribute
// "v" (string), or keeps it if it exists with that shape.
func (t *TandemTarget) Prepare(ctx context.Context) error {
	schema := tandem.TableSchema{
		Name:       t.table,
		PrimaryKey: "id",
		Attributes: map[string]tandem.AttrType{"id": tandem.TypeString, "v": tandem.TypeString},
	}
	if _, _, err := t.c.CreateTable(ctx, schema); err != nil {
		return fmt.Errorf("bench: create table %s: %w", t.table, err)
	}
	return nil
}

// Conn returns client i's connection.
func (t *TandemTarget) Conn(i int) Conn {
	c := t.c
	if !t.balanced {
		c = c.Node(i % len(c.Addrs()))
	}
	return &tandemConn{c: c, table: t.table}
}

// Endpoints returns the nodes' base URLs.
func (t *TandemTarget) Endpoints() []string { return t.c.Addrs() }

// MaxTxRecords keeps a preload transaction near 1 MiB at the default
// value size, well under the body limit.
func (t *TandemTarget) MaxTxRecords() int { return 500 }

type tandemConn struct {
	c     *client.Client
	table string
	// last and body cache the record of the last value put: the workloads
	// write the same value over and over.
	last []byte
	body []byte
}

func (c *tandemConn) Put(ctx context.Context, key string, value []byte) error {
	if string(value) != string(c.last) || c.body == nil {
		c.last = value
		c.body = appendRecord(nil, "", value)
	}
	_, err := c.c.Put(ctx, c.table, key, c.body)
	return err
}

func (c *tandemConn) Get(ctx context.Context, key string, cons Consistency) error {
	var opts []client.ReadOption
	if cons == Local {
		opts = append(opts, client.Local())
	}
	_, err := c.c.Get(ctx, c.table, key, opts...)
	return err
}

func (c *tandemConn) Tx(ctx context.Context, kvs []KV) error {
	tx := tandem.Tx{Ops: make([]tandem.Op, len(kvs))}
	for i, kv := range kvs {
		tx.Ops[i] = tandem.Op{Op: tandem.OpUpsert, Table: c.table, Key: kv.Key, Record: appendRecord(nil, kv.Key, kv.Value)}
	}
	_, err := c.c.Tx(ctx, tx)
	return err
}

// appendRecord appends {"id":"key","v":"value"} to b, without "id" when
// key is empty. Keys and values are made of letters and digits, so they
// need no escaping.
func appendRecord(b []byte, key string, value []byte) []byte {
	b = append(b, '{')
	if key != "" {
		b = append(b, `"id":"`...)
		b = append(b, key...)
		b = append(b, `",`...)
	}
	b = append(b, `"v":"`...)
	b = append(b, value...)
	return append(b, `"}`...)
}
