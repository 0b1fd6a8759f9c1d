package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tandemdb/tandem/bench"
)

// Options shape a Target. Zero fields take the documented defaults.
type Options struct {
	// Prefix is put before every key, default "bench/".
	Prefix string
	// ConnsPerEndpoint is the number of client connections opened to each
	// endpoint, default 4. Client i of a run uses connection i modulo the
	// number of connections.
	ConnsPerEndpoint int
	// Balanced gives each connection every endpoint, to let the client move
	// to another member when one fails; otherwise each connection talks to
	// one member only, like Tandem's pinned clients.
	Balanced bool
	// Timeout bounds each operation, default 30s.
	Timeout time.Duration
	// DialTimeout bounds the first connection, default 5s.
	DialTimeout time.Duration
}

// Target drives an etcd cluster. It is safe for concurrent use; Close it
// when done.
type Target struct {
	endpoints []string
	opts      Options
	clients   []*clientv3.Client
}

var (
	_ bench.Target    = (*Target)(nil)
	_ bench.TxLimiter = (*Target)(nil)
)

// New connects to the etcd members at endpoints ("127.0.0.1:2379" or
// "http://127.0.0.1:2379").
func New(endpoints []string, opts Options) (*Target, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("bench/etcd: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = "bench/"
	}
	if opts.ConnsPerEndpoint == 0 {
		opts.ConnsPerEndpoint = 4
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	t := &Target{endpoints: append([]string(nil), endpoints...), opts: opts}
	for range opts.ConnsPerEndpoint {
		for i, ep := range endpoints {
			eps := []string{ep}
			if opts.Balanced {
				// Start each connection on a different member.
				eps = append(append([]string(nil), endpoints[i:]...), endpoints[:i]...)
			}
			c, err := clientv3.New(clientv3.Config{
				Endpoints:   eps,
				DialTimeout: opts.DialTimeout,
				Logger:      zap.NewNop(),
			})
			if err != nil {
				t.Close()
				return nil, fmt.Errorf("bench/etcd: connect to %s: %w", ep, err)
			}
			t.clients = append(t.clients, c)
		}
	}
	return t, nil
}

// Close closes every connection.
func (t *Target) Close() error {
	var errs []error
	for _, c := range t.clients {
		errs = append(errs, c.Close())
	}
	t.clients = nil
	return errors.Join(errs...)
}

// Prepare checks that the cluster answers.
func (t *Target) Prepare(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	if _, err := t.clients[0].Get(ctx, t.opts.Prefix+"probe"); err != nil {
		return fmt.Errorf("bench/etcd: %w", classify(err))
	}
	return nil
}

// Conn returns client i's connection.
func (t *Target) Conn(i int) bench.Conn {
	return &conn{c: t.clients[i%len(t.clients)], prefix: t.opts.Prefix, timeout: t.opts.Timeout}
}

// Endpoints returns the members' client URLs.
func (t *Target) Endpoints() []string { return append([]string(nil), t.endpoints...) }

// MaxTxRecords is etcd's default --max-txn-ops.
func (t *Target) MaxTxRecords() int { return 128 }

type conn struct {
	c       *clientv3.Client
	prefix  string
	timeout time.Duration
}

func (c *conn) Put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.c.Put(ctx, c.prefix+key, string(value))
	return classify(err)
}

func (c *conn) Get(ctx context.Context, key string, cons bench.Consistency) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var opts []clientv3.OpOption
	if cons == bench.Local {
		opts = append(opts, clientv3.WithSerializable())
	}
	resp, err := c.c.Get(ctx, c.prefix+key, opts...)
	if err != nil {
		return classify(err)
	}
	if len(resp.Kvs) == 0 {
		return &codeError{code: "not_found", err: fmt.Errorf("bench/etcd: no key %s%s", c.prefix, key)}
	}
	return nil
}

func (c *conn) Tx(ctx context.Context, kvs []bench.KV) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ops := make([]clientv3.Op, len(kvs))
	for i, kv := range kvs {
		ops[i] = clientv3.OpPut(c.prefix+kv.Key, string(kv.Value))
	}
	_, err := c.c.Txn(ctx).Then(ops...).Commit()
	return classify(err)
}

// codeError carries the gRPC code of a failure, for bench.Result.Errors.
type codeError struct {
	code string
	err  error
}

func (e *codeError) Error() string     { return e.err.Error() }
func (e *codeError) Unwrap() error     { return e.err }
func (e *codeError) ErrorCode() string { return e.code }

// classify names err by its gRPC code ("unavailable",
// "deadline_exceeded", ...). A context error is left as it is, so that the
// load generator counts it as a client timeout.
func classify(err error) error {
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	if code == codes.Unknown || code == codes.OK {
		return err // not a gRPC failure: counted as a transport error
	}
	return &codeError{code: snake(code.String()), err: err}
}

// snake turns "DeadlineExceeded" into "deadline_exceeded".
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
