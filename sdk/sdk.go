//go:build wasip1

package sdk

import (
	"errors"
	"fmt"
	"sort"
	"time"

	// A drop-in encoding/json: 3x faster in WebAssembly (docs/contracts.md).
	json "github.com/segmentio/encoding/json"

	"github.com/tandemdb/tandem/internal/wire"
)

// Error is an error from the host, with Tandem's error code (for example
// "not_found", "invalid", "conflict", "contract_fault"; "forbidden" when a
// contract deployed with caller rights does what the caller may not).
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an error for the caller: the call fails with
// "contract_error" and this message, and nothing the call wrote is kept.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

type entry struct {
	readOnly bool
	run      func(ctx *Context, arg []byte) ([]byte, error)
}

// registry holds the exported functions; init functions fill it before
// the host makes its first call.
var (
	registry = map[string]entry{}
	names    []string
)

// Export makes fn callable as name. Arguments and results are JSON; an
// empty argument decodes as the zero T.
func Export[T, R any](name string, fn func(ctx *Context, arg T) (R, error)) {
	register(name, false, fn)
}

// ExportReadOnly makes fn callable as name without a transaction: it runs
// locally and may only read.
func ExportReadOnly[T, R any](name string, fn func(ctx *Context, arg T) (R, error)) {
	register(name, true, fn)
}

func register[T, R any](name string, readOnly bool, fn func(ctx *Context, arg T) (R, error)) {
	if _, dup := registry[name]; dup {
		panic("sdk: function " + name + " exported twice")
	}
	registry[name] = entry{readOnly: readOnly, run: func(ctx *Context, raw []byte) ([]byte, error) {
		var arg T
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &arg); err != nil {
				return nil, fmt.Errorf("bad argument: %v", err)
			}
		}
		res, err := fn(ctx, arg)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	}}
	names = append(names, name)
	sort.Strings(names)
}

func dispatch(fn string, arg []byte) ([]byte, error) {
	e, ok := registry[fn]
	if !ok {
		return nil, fmt.Errorf("no function %q", fn)
	}
	return e.run(&Context{}, arg)
}

// Context is the function's view of the database during one call. It is
// valid only during the call.
type Context struct {
	env *environment
}

type environment struct {
	Caller string
	Now    time.Time
}

func (c *Context) environment() *environment {
	if c.env == nil {
		r, err := call(wire.OpEnv, "", "", nil)
		if err == nil {
			c.env = &environment{Caller: r.Str(), Now: time.Unix(0, r.Varint()).UTC()}
			err = r.Err
		}
		if err != nil {
			panic("sdk: cannot read the call's environment: " + err.Error())
		}
	}
	return c.env
}

// Caller is the identity that made the call ("anonymous" until the
// cluster authenticates clients).
func (c *Context) Caller() string { return c.environment().Caller }

// Now is the call's timestamp, taken once when the call started.
func (c *Context) Now() time.Time { return c.environment().Now }

// Get reads the record of table with primary key key (its canonical
// string form: "42" for the integer 42). The record JSON includes its
// "_version". found is false if there is none.
func (c *Context) Get(table, key string) (record json.RawMessage, found bool, err error) {
	r, err := call(wire.OpGet, table, key, nil)
	if err != nil {
		return nil, false, err
	}
	found = r.Byte() == 1
	record = r.Bytes()
	if r.Err != nil {
		return nil, false, r.Err
	}
	if !found {
		return nil, false, nil
	}
	return record, true, nil
}

// GetInto reads a record like Get and decodes it into v.
func (c *Context) GetInto(table, key string, v any) (found bool, err error) {
	rec, found, err := c.Get(table, key)
	if err != nil || !found {
		return found, err
	}
	return true, json.Unmarshal(rec, v)
}

// Put creates or replaces a record (its primary key is in the record).
func (c *Context) Put(table string, record any) error {
	return write(wire.OpPut, table, "", record)
}

// write sends a request whose third field is v as JSON.
func write(op byte, a, b string, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = call(op, a, b, js)
	return err
}

// Insert creates a record; it fails with code "conflict" if the key exists.
func (c *Context) Insert(table string, record any) error {
	return write(wire.OpInsert, table, "", record)
}

// Patch merges changes into an existing record; a null value removes an
// attribute. It fails with code "not_found" if the record does not exist.
func (c *Context) Patch(table, key string, changes any) error {
	return write(wire.OpPatch, table, key, changes)
}

// Delete removes a record; it fails with code "not_found" if there is none.
func (c *Context) Delete(table, key string) error {
	_, err := call(wire.OpDelete, table, key, nil)
	return err
}

// Query runs a query in the REST syntax of GET /v1/tables/{t}/records
// (docs/api.md), for example "balance=gt.100&sort=balance&limit=10". It
// must carry a limit (at most 1000), so that the records it may touch are
// bounded; the records include "_version". next is the cursor for the
// following page ("" on the last one).
func (c *Context) Query(table, query string) (records []json.RawMessage, next string, err error) {
	r, err := call(wire.OpQuery, table, query, nil)
	if err != nil {
		return nil, "", err
	}
	n := r.Uvarint()
	if n > uint64(len(r.B)) {
		return nil, "", wire.ErrMalformed
	}
	records = make([]json.RawMessage, 0, n)
	for i := uint64(0); i < n; i++ {
		records = append(records, json.RawMessage(r.Bytes()))
	}
	next = r.Str()
	return records, next, r.Err
}

// Emit records an event with the call's transaction (JSON payload).
func (c *Context) Emit(topic string, payload any) error {
	if payload == nil {
		return errors.New("sdk: event payload is nil")
	}
	return write(wire.OpEmit, topic, "", payload)
}

// Log writes a line to the node's log, tagged with the contract and call.
func (c *Context) Log(msg string) {
	b := []byte(msg)
	hostLog(bytesPtr(b), uint32(len(b)))
}
