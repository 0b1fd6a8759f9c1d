package client

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tandemdb/tandem"
)

// WriteResult is the outcome of a record write.
type WriteResult struct {
	Key     string `json:"key"`     // the record's primary key
	Version uint64 `json:"version"` // the record's new version; 0 after a delete
	Index   uint64 `json:"index"`   // the log index the write committed at (Tandem-Index)
}

// Record is a record as read.
type Record struct {
	Version uint64          // from the ETag
	Index   uint64          // what the node had applied when it served the read (Tandem-Index)
	JSON    json.RawMessage // the record, including its "_version" attribute
}

// Decode unmarshals the record's JSON into v.
func (r *Record) Decode(v any) error { return json.Unmarshal(r.JSON, v) }

// WriteOption makes a record write conditional or changes how long it waits.
type WriteOption func(*writeOptions)

type writeOptions struct {
	ifMatch     string
	ifNoneMatch string
	timeout     time.Duration
}

// IfMatch makes a write apply only if the record is at the given version
// (If-Match: "N"); otherwise it fails with CodePreconditionFailed.
func IfMatch(version uint64) WriteOption {
	return func(o *writeOptions) { o.ifMatch = `"` + strconv.FormatUint(version, 10) + `"` }
}

// IfExists makes a write apply only if the record exists (If-Match: *).
func IfExists() WriteOption {
	return func(o *writeOptions) { o.ifMatch = "*" }
}

// IfNotExists makes a write apply only if the record does not exist
// (If-None-Match: *).
func IfNotExists() WriteOption {
	return func(o *writeOptions) { o.ifNoneMatch = "*" }
}

// CommitTimeout sets how long the server waits for the write to commit
// (?timeout=; the server's default is 10s, its maximum 60s). When it passes
// the call fails with CodeTimeout and the outcome is unknown.
func CommitTimeout(d time.Duration) WriteOption {
	return func(o *writeOptions) { o.timeout = d }
}

func (c *call) applyWrite(opts []WriteOption) {
	if len(opts) == 0 {
		return
	}
	var o writeOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.ifMatch != "" {
		c.header = append(c.header, headerField{"If-Match", o.ifMatch})
	}
	if o.ifNoneMatch != "" {
		c.header = append(c.header, headerField{"If-None-Match", o.ifNoneMatch})
	}
	if o.timeout > 0 {
		c.query = url.Values{"timeout": {o.timeout.String()}}
	}
}

// ReadOption chooses the consistency of a read; see docs/api.md. Without
// one, reads are linearizable.
type ReadOption func(*readOptions)

type readOptions struct {
	consistency tandem.Consistency
	minIndex    uint64
}

// Local reads the node's state as it is, possibly stale, with no leader
// round trip.
func Local() ReadOption {
	return func(o *readOptions) { o.consistency = tandem.ReadLocal }
}

// Linearizable asks for a read that sees every write acknowledged before it
// started. It is the server's default.
func Linearizable() ReadOption {
	return func(o *readOptions) { o.consistency = tandem.ReadLinearizable }
}

// MinIndex reads the node's state once it has applied index n, typically
// the Index of one's own write: read-your-writes on any node without a
// leader round trip.
func MinIndex(n uint64) ReadOption {
	return func(o *readOptions) { o.minIndex = n }
}

// readQuery adds the read options to q, which it may allocate.
func readQuery(q url.Values, opts []ReadOption) url.Values {
	if len(opts) == 0 {
		return q
	}
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	if q == nil && (o.consistency != "" || o.minIndex > 0) {
		q = make(url.Values, 2)
	}
	if o.consistency != "" {
		q.Set("consistency", string(o.consistency))
	}
	if o.minIndex > 0 {
		q.Set("min_index", strconv.FormatUint(o.minIndex, 10))
	}
	return q
}

// encodeRecord returns the JSON of a record given as any value, or as
// json.RawMessage or []byte, which are sent as they are.
func encodeRecord(record any) ([]byte, error) {
	switch r := record.(type) {
	case json.RawMessage:
		return r, nil
	case []byte:
		return r, nil
	case nil:
		return nil, invalid("record is nil")
	}
	b, err := json.Marshal(record)
	if err != nil {
		return nil, fmt.Errorf("client: encode record: %w", err)
	}
	return b, nil
}

func recordsPath(table string) (string, error) {
	if table == "" {
		return "", invalid("table name is empty")
	}
	return "/v1/tables/" + url.PathEscape(table) + "/records", nil
}

func recordPath(table, key string) (string, error) {
	p, err := recordsPath(table)
	if err != nil {
		return "", err
	}
	if key == "" {
		return "", invalid("primary key is empty")
	}
	return p + "/" + url.PathEscape(key), nil
}

// Insert creates a record whose key is its primary key attribute. It fails
// with CodeConflict if the key exists.
func (c *Client) Insert(ctx context.Context, table string, record any) (WriteResult, error) {
	p, err := recordsPath(table)
	if err != nil {
		return WriteResult{}, err
	}
	return c.write(ctx, &call{method: http.MethodPost, path: p}, record)
}

// Put creates or replaces the record with the given key (upsert).
func (c *Client) Put(ctx context.Context, table, key string, record any, opts ...WriteOption) (WriteResult, error) {
	p, err := recordPath(table, key)
	if err != nil {
		return WriteResult{}, err
	}
	cl := &call{method: http.MethodPut, path: p}
	cl.applyWrite(opts)
	return c.write(ctx, cl, record)
}

// Patch merges the attributes of record into the existing record with the
// given key; a null attribute removes it. It fails with CodeNotFound if the
// record does not exist.
func (c *Client) Patch(ctx context.Context, table, key string, record any, opts ...WriteOption) (WriteResult, error) {
	p, err := recordPath(table, key)
	if err != nil {
		return WriteResult{}, err
	}
	cl := &call{method: http.MethodPatch, path: p}
	cl.applyWrite(opts)
	return c.write(ctx, cl, record)
}

// Delete removes the record with the given key. It fails with CodeNotFound
// if the record does not exist.
func (c *Client) Delete(ctx context.Context, table, key string, opts ...WriteOption) (WriteResult, error) {
	p, err := recordPath(table, key)
	if err != nil {
		return WriteResult{}, err
	}
	cl := &call{method: http.MethodDelete, path: p}
	cl.applyWrite(opts)
	return c.write(ctx, cl, nil)
}

func (c *Client) write(ctx context.Context, cl *call, record any) (WriteResult, error) {
	if cl.method != http.MethodDelete {
		b, err := encodeRecord(record)
		if err != nil {
			return WriteResult{}, err
		}
		cl.body = b
	}
	rep, err := c.do(ctx, cl)
	if err != nil {
		return WriteResult{}, err
	}
	var body struct {
		Key     string `json:"key"`
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return WriteResult{}, fmt.Errorf("client: %s %s: decode response: %w", cl.method, cl.path, err)
	}
	res := WriteResult{Key: body.Key, Version: body.Version, Index: rep.index()}
	switch {
	case cl.method == http.MethodDelete:
		res.Version = 0 // the record has none; the server may report the delete's index
	case res.Version == 0:
		res.Version = rep.etag()
	}
	return res, nil
}

// Get reads the record with the given key. It fails with CodeNotFound if
// the record does not exist.
func (c *Client) Get(ctx context.Context, table, key string, opts ...ReadOption) (Record, error) {
	p, err := recordPath(table, key)
	if err != nil {
		return Record{}, err
	}
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: p, query: readQuery(nil, opts), retry: retryTransport})
	if err != nil {
		return Record{}, err
	}
	return Record{Version: rep.etag(), Index: rep.index(), JSON: rep.body}, nil
}

// Query returns one page of the records of table that match params, whose
// names and values are those of docs/api.md (filters such as
// "balance"="gt.10", and "sort", "limit", "cursor", "select", "count").
// params is not modified.
func (c *Client) Query(ctx context.Context, table string, params url.Values, opts ...ReadOption) (*tandem.QueryResult, error) {
	p, err := recordsPath(table)
	if err != nil {
		return nil, err
	}
	q := make(url.Values, len(params)+2)
	for k, v := range params {
		q[k] = v
	}
	rep, err := c.do(ctx, &call{method: http.MethodGet, path: p, query: readQuery(q, opts), retry: retryTransport})
	if err != nil {
		return nil, err
	}
	var res tandem.QueryResult
	if err := json.Unmarshal(rep.body, &res); err != nil {
		return nil, fmt.Errorf("client: query %s: decode response: %w", table, err)
	}
	return &res, nil
}

// QueryPages runs Query and then follows the cursors of the pages it
// returns, yielding each page. It stops after the last page, at the first
// error (yielded with a nil page), or when the loop breaks.
func (c *Client) QueryPages(ctx context.Context, table string, params url.Values, opts ...ReadOption) iter.Seq2[*tandem.QueryResult, error] {
	return func(yield func(*tandem.QueryResult, error) bool) {
		q := make(url.Values, len(params)+1)
		for k, v := range params {
			q[k] = v
		}
		for {
			res, err := c.Query(ctx, table, q, opts...)
			if err == nil && res.Next != "" && res.Next == q.Get("cursor") {
				res, err = nil, fmt.Errorf("client: query %s: the server returned cursor %q twice", table, res.Next)
			}
			if !yield(res, err) || err != nil || res.Next == "" {
				return
			}
			q.Set("cursor", res.Next)
		}
	}
}

// Tx runs a transaction and returns the log index it committed at. A failed
// condition is a CodeConflict error whose message names it; a failed op
// fails with the op's own code.
func (c *Client) Tx(ctx context.Context, tx tandem.Tx) (uint64, error) {
	b, err := json.Marshal(tx)
	if err != nil {
		return 0, fmt.Errorf("client: encode tx: %w", err)
	}
	rep, err := c.do(ctx, &call{method: http.MethodPost, path: "/v1/tx", body: b})
	if err != nil {
		return 0, err
	}
	var body struct {
		Index uint64 `json:"index"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return 0, fmt.Errorf("client: tx: decode response: %w", err)
	}
	if body.Index == 0 {
		body.Index = rep.index()
	}
	return body.Index, nil
}
