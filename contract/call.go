package contract

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/internal/wire"
	"github.com/tandemdb/tandem/query"
	"github.com/tetratelabs/wazero/sys"
)

// View is the consistent committed state a call reads (store.View
// satisfies it).
type View interface {
	Table(name string) (*tandem.TableSchema, error)
	Get(table, key string) (tandem.RecordData, error)
	Query(q *tandem.Query) (*tandem.QueryResult, error)
	Contract(name string) (*tandem.ContractInfo, error)
	ContractCode(name string, version uint64) ([]byte, error)
	AppliedIndex() uint64
}

// Rights are a caller's permissions as a function deployed with caller
// rights (tandem.RightsCaller) is held to them: every host operation is
// checked as the REST record endpoints check the same request (package
// auth's ContractRights implements it from a principal's permissions).
// Errors are CodeForbidden and name the permission. Implementations must
// be safe for concurrent use.
type Rights interface {
	// CheckRead needs table.read on the table.
	CheckRead(sc *tandem.TableSchema) error
	// FilterRecord removes from a record's JSON the attributes the caller
	// may not read.
	FilterRecord(sc *tandem.TableSchema, js []byte) ([]byte, error)
	// CheckQuery needs table.read and refuses a query that filters, sorts
	// or selects on an attribute the caller may not read.
	CheckQuery(sc *tandem.TableSchema, q *tandem.Query) error
	// CheckOp checks one write: insert, upsert (a put: unrestricted
	// table.update and table.insert), patch or delete.
	CheckOp(sc *tandem.TableSchema, op *tandem.Op) error
}

// noRights refuses everything (no Options.Rights).
type noRights struct{}

func (noRights) CheckRead(sc *tandem.TableSchema) error { return forbidden(sc.Name) }
func (noRights) FilterRecord(sc *tandem.TableSchema, _ []byte) ([]byte, error) {
	return nil, forbidden(sc.Name)
}
func (noRights) CheckQuery(sc *tandem.TableSchema, _ *tandem.Query) error { return forbidden(sc.Name) }
func (noRights) CheckOp(sc *tandem.TableSchema, _ *tandem.Op) error       { return forbidden(sc.Name) }

// reportingRights passes every refusal of the rights it wraps to report
// (Options.OnDenied).
type reportingRights struct {
	Rights
	report func(error)
}

func (r reportingRights) check(err error) error {
	if tandem.ErrorCode(err) == tandem.CodeForbidden {
		r.report(err)
	}
	return err
}

func (r reportingRights) CheckRead(sc *tandem.TableSchema) error {
	return r.check(r.Rights.CheckRead(sc))
}

func (r reportingRights) FilterRecord(sc *tandem.TableSchema, js []byte) ([]byte, error) {
	out, err := r.Rights.FilterRecord(sc, js)
	return out, r.check(err)
}

func (r reportingRights) CheckQuery(sc *tandem.TableSchema, q *tandem.Query) error {
	return r.check(r.Rights.CheckQuery(sc, q))
}

func (r reportingRights) CheckOp(sc *tandem.TableSchema, op *tandem.Op) error {
	return r.check(r.Rights.CheckOp(sc, op))
}

func forbidden(table string) error {
	return tandem.Errorf(tandem.CodeForbidden, "the caller has no permissions on %q (this node checks no caller rights)", table)
}

// Outcome is what one execution of a function did.
type Outcome struct {
	Contract string
	Version  uint64
	Function tandem.ContractFunction
	Result   json.RawMessage
	// Conditions are what the result depends on: the contract's active
	// version, every record read (version, or absence) and every query's
	// answer.
	Conditions []tandem.Condition
	Ops        []tandem.Op // the final state of every record written
	Events     []tandem.Event
	ReadIndex  uint64 // an applied index the view included
}

// Tx is the transaction that commits the outcome if nothing it read has
// changed.
func (o *Outcome) Tx() *tandem.Tx {
	return &tandem.Tx{Conditions: o.Conditions, Ops: o.Ops, Events: o.Events}
}

// Execute runs one call against view. Errors: CodeNotFound (no such
// contract or function), CodeTooLarge (argument), CodeContractError (the
// function returned an error), CodeContractFault (it misbehaved),
// CodeUnavailable (runtime closed). Execute never proposes anything.
func (r *Runtime) Execute(ctx context.Context, view View, req tandem.ContractCall) (*Outcome, error) {
	if len(req.Arg) > r.opts.MaxArgSize {
		return nil, tandem.Errorf(tandem.CodeTooLarge, "the argument has %d bytes; the limit is %d", len(req.Arg), r.opts.MaxArgSize)
	}
	if len(req.Arg) > 0 && !json.Valid(req.Arg) {
		return nil, tandem.Errorf(tandem.CodeInvalid, "the argument is not valid JSON")
	}
	info, err := view.Contract(req.Contract)
	if err != nil {
		return nil, err
	}
	fn := info.Function(req.Function)
	if fn == nil {
		return nil, tandem.Errorf(tandem.CodeNotFound, "contract %q (version %d) has no function %q", req.Contract, info.Active, req.Function)
	}
	ver := info.ActiveVersion()
	c := newCall(r, view, req.Contract, req.Caller, req.Arg, *fn)
	if ver.Rights == tandem.RightsCaller {
		c.rights = noRights{}
		if r.opts.Rights != nil {
			c.rights = r.opts.Rights(req.Caller)
		}
		if r.opts.OnDenied != nil {
			c.rights = reportingRights{c.rights, func(err error) { r.opts.OnDenied(req, err) }}
		}
	}
	c.conds = append(c.conds, tandem.Condition{Kind: tandem.CondContract, Key: req.Contract, Version: ver.Version})
	for {
		m, err := r.load(ctx, ver.SHA256, func() ([]byte, error) { return view.ContractCode(req.Contract, ver.Version) })
		if err != nil {
			return nil, err
		}
		err = r.run(ctx, m, c)
		if errors.Is(err, errRetired) {
			continue // closed by Retain before the call began: load it again
		}
		if err != nil {
			return nil, err
		}
		break
	}
	out := &Outcome{
		Contract:   req.Contract,
		Version:    ver.Version,
		Function:   *fn,
		Result:     c.result,
		Conditions: c.conditions(),
		Events:     c.events,
		ReadIndex:  view.AppliedIndex(),
	}
	if out.Ops, err = c.ops(); err != nil {
		return nil, err
	}
	return out, nil
}

// run invokes the call's function on an instance of m.
func (r *Runtime) run(ctx context.Context, m *module, c *call) error {
	in, err := r.get(ctx, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, callKey{}, c), r.opts.CallTimeout)
	defer cancel()
	clean := false
	defer func() {
		if clean {
			r.put(m, in)
		} else {
			r.discard(context.Background(), m, in)
		}
	}()
	fn := c.fn.Name
	size := uint64(len(fn) + len(c.arg))
	in.refuel(r.opts.MaxFuel) // one budget for both entries
	res, err := in.alloc.Call(ctx, size)
	if err != nil {
		return c.failure(in, err)
	}
	ptr := uint32(res[0])
	mem := in.mod.Memory()
	if !mem.WriteString(ptr, fn) || !mem.Write(ptr+uint32(len(fn)), c.arg) {
		return tandem.Errorf(tandem.CodeContractFault, "tandem_alloc returned a buffer outside the module's memory")
	}
	if _, err := in.invoke.Call(ctx, uint64(ptr), uint64(len(fn)), uint64(ptr)+uint64(len(fn)), uint64(len(c.arg))); err != nil {
		return c.failure(in, err)
	}
	if c.fault != nil {
		return c.fault
	}
	clean = true
	if c.result == nil {
		return tandem.Errorf(tandem.CodeContractFault, "the function returned without a result")
	}
	if c.resultErr {
		return tandem.Errorf(tandem.CodeContractError, "%s", c.result)
	}
	if !json.Valid(c.result) {
		return tandem.Errorf(tandem.CodeContractFault, "the function returned invalid JSON")
	}
	return nil
}

type callKey struct{}

type recordKey struct{ table, key string }

// readState is what a call saw of a record before writing it: a committed
// version, a write still in flight (its content hash), or nothing.
type readState struct {
	version uint64 // 0: absent or in flight
	hash    string // of the in-flight write's content; "" otherwise
}

func (r readState) absent() bool { return r.version == 0 && r.hash == "" }

// write is the state a call left a record in; rec nil means deleted.
type write struct {
	sc  *tandem.TableSchema
	rec tandem.Record
}

// call is the host-side state of one execution. Host functions reach it
// through the context; one instance serves one call at a time, so it needs
// no lock.
type call struct {
	r        *Runtime
	view     View
	contract string
	caller   string
	now      time.Time
	arg      []byte
	fn       tandem.ContractFunction
	// rights are the caller's, for a version deployed with caller rights;
	// nil: the contract's own rights (no checks).
	rights Rights

	pending   []byte // the parked response of the last host_call
	result    []byte
	resultErr bool
	fault     error // sticky: the call has failed whatever the guest does

	reads   map[recordKey]readState
	order   []recordKey        // of reads, for deterministic conditions
	conds   []tandem.Condition // contract and query conditions
	queries int
	writes  map[recordKey]*write
	worder  []recordKey
	written map[string]bool // tables written
	// schemas caches the view's schemas: the view does not change during
	// the call, and View.Table copies the schema on every request.
	schemas map[string]*tandem.TableSchema
	events  []tandem.Event
	logs    int
}

func newCall(r *Runtime, view View, contract, caller string, arg []byte, fn tandem.ContractFunction) *call {
	return &call{
		r: r, view: view, contract: contract, caller: caller, arg: arg, fn: fn,
		now:    r.opts.Clock().UTC(),
		reads:  map[recordKey]readState{},
		writes: map[recordKey]*write{}, written: map[string]bool{},
		schemas: map[string]*tandem.TableSchema{},
	}
}

// setFault records a contract fault; the first one sticks.
func (c *call) setFault(format string, args ...any) error {
	if c.fault == nil {
		c.fault = tandem.Errorf(tandem.CodeContractFault, format, args...)
	}
	return c.fault
}

// failure classifies the error of a guest call on in.
func (c *call) failure(in *instance, err error) error {
	if c.fault != nil {
		return c.fault
	}
	if in.spent() && outOfFuel(err) {
		return c.r.fuelFault("the function failed")
	}
	return fault(err, in.stderr, "the function failed")
}

// outOfFuel reports whether err is a trap at an unreachable instruction,
// as the fuel check raises (the instance's global tells whether it was).
func outOfFuel(err error) bool {
	return err != nil && strings.Contains(err.Error(), "wasm error: unreachable")
}

func (r *Runtime) fuelFault(what string) error {
	return tandem.Errorf(tandem.CodeContractFault, "%s: it ran past its computation limit (%d loop iterations)", what, r.opts.MaxFuel)
}

func fault(err error, stderr *headBuffer, what string) error {
	var te *tandem.Error
	if errors.As(err, &te) {
		return te
	}
	var exit *sys.ExitError
	why := summary(stderr.String())
	if why != "" {
		why = ": " + why
	}
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return tandem.WrapError(tandem.CodeContractFault, err, "%s: it ran past its time limit", what)
		case sys.ExitCodeContextCanceled:
			return tandem.WrapError(tandem.CodeTimeout, err, "%s: the call was canceled", what)
		}
		return tandem.WrapError(tandem.CodeContractFault, err, "%s: it exited with code %d%s", what, exit.ExitCode(), why)
	}
	// A trap: wazero's message, without the wasm stack trace that follows.
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return tandem.WrapError(tandem.CodeContractFault, err, "%s: %s%s", what, msg, why)
}

// summary picks what the Go runtime said before dying ("panic: ..." or
// "fatal error: ...") out of a module's stderr, bounded.
func summary(stderr string) string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	s := strings.Join(out, "; ")
	if len(s) > 512 {
		s = s[:512] + "..."
	}
	return s
}

// conditions returns the call's conditions in a deterministic order: the
// contract's version, the queries, then the records in first-read order.
func (c *call) conditions() []tandem.Condition {
	out := append([]tandem.Condition(nil), c.conds...)
	for _, k := range c.order {
		switch r := c.reads[k]; {
		case r.hash != "":
			out = append(out, tandem.Condition{Kind: tandem.CondContent, Table: k.table, Key: k.key, Hash: r.hash})
		case r.version == 0:
			out = append(out, tandem.Condition{Kind: tandem.CondNotExists, Table: k.table, Key: k.key})
		default:
			out = append(out, tandem.Condition{Kind: tandem.CondVersion, Table: k.table, Key: k.key, Version: r.version})
		}
	}
	return out
}

// ops returns the final state of every record written, in first-write
// order: an upsert, or a delete of a record that exists in the committed
// state (deleting what the call itself created needs no op).
func (c *call) ops() ([]tandem.Op, error) {
	ops := make([]tandem.Op, 0, len(c.worder))
	for _, k := range c.worder {
		w := c.writes[k]
		if w.rec == nil {
			if r, read := c.reads[k]; read && r.absent() {
				continue
			}
			ops = append(ops, tandem.Op{Op: tandem.OpDelete, Table: k.table, Key: k.key})
			continue
		}
		js, err := json.Marshal(w.rec)
		if err != nil {
			return nil, tandem.WrapError(tandem.CodeContractFault, err, "record %s/%s cannot be encoded", k.table, k.key)
		}
		ops = append(ops, tandem.Op{Op: tandem.OpUpsert, Table: k.table, Key: k.key, Record: js})
	}
	return ops, nil
}

// handle serves one host_call request and returns the response bytes
// (wire.go). A request the function could handle (a missing record, a bad
// record) is answered with an error; a broken request or a limit is a
// fault.
func (c *call) handle(raw []byte) []byte {
	req, err := decodeRequest(raw)
	var payload []byte
	if err != nil {
		err = c.setFault("the module sent a malformed host request: %v", err)
	} else {
		payload, err = c.dispatch(&req)
	}
	if err != nil {
		var te *tandem.Error
		if !errors.As(err, &te) {
			te = tandem.WrapError(tandem.CodeInternal, err, "internal error")
		}
		return errorResponse(te)
	}
	return append([]byte{wire.StatusOK}, payload...)
}

func (c *call) dispatch(req *request) ([]byte, error) {
	switch req.op {
	case wire.OpEnv:
		return binary.AppendVarint(wire.AppendStr(nil, c.caller), c.now.UnixNano()), nil
	case wire.OpGet:
		return c.get(req.a, req.b)
	case wire.OpPut, wire.OpInsert:
		return nil, c.put(req.a, json.RawMessage(req.c), req.op == wire.OpInsert)
	case wire.OpPatch:
		return nil, c.patch(req.a, req.b, json.RawMessage(req.c))
	case wire.OpDelete:
		return nil, c.delete(req.a, req.b)
	case wire.OpQuery:
		return c.query(req.a, req.b)
	case wire.OpEmit:
		return nil, c.emit(req.a, json.RawMessage(req.c))
	}
	return nil, c.setFault("the module sent an unknown host request %d", req.op)
}

// current returns the record at (table, key) as the call sees it: its own
// write, else the committed record (recorded as read); nil if there is
// none.
func (c *call) current(sc *tandem.TableSchema, key string) (tandem.Record, error) {
	if w, ok := c.writes[recordKey{sc.Name, key}]; ok {
		return w.rec, nil
	}
	rd, found, err := c.readBase(sc, key)
	if err != nil || !found {
		return nil, err
	}
	v, err := tandem.DecodeRecordVersion(rd.JSON)
	if err != nil {
		return nil, tandem.WrapError(tandem.CodeInternal, err, "stored record %s/%s is unreadable", sc.Name, key)
	}
	return v.Record, nil
}

// currentJSON is current as JSON, for get: a committed record goes to the
// guest as stored, without decoding it into a map that nothing reads (that
// decode was a tenth of a transfer's host time).
func (c *call) currentJSON(sc *tandem.TableSchema, key string) ([]byte, error) {
	if w, ok := c.writes[recordKey{sc.Name, key}]; ok {
		if w.rec == nil {
			return nil, nil
		}
		return json.Marshal(w.rec)
	}
	rd, found, err := c.readBase(sc, key)
	if err != nil || !found {
		return nil, err
	}
	return rd.JSON, nil
}

// readBase reads the committed record at (table, key) and records its
// version (0 if absent) as read, the first time.
func (c *call) readBase(sc *tandem.TableSchema, key string) (tandem.RecordData, bool, error) {
	var (
		rd    tandem.RecordData
		state readState
		found bool
	)
	if pv, ok := c.view.(pendingReader); ok {
		if js, hash, hit := pv.pending(sc.Name, key); hit {
			rd, state, found = tandem.RecordData{JSON: js}, readState{hash: hash}, js != nil
			return rd, found, c.noteRead(sc.Name, key, state)
		}
	}
	rd, err := c.view.Get(sc.Name, key)
	found = err == nil
	if err != nil && tandem.ErrorCode(err) != tandem.CodeNotFound {
		return rd, false, err
	}
	return rd, found, c.noteRead(sc.Name, key, readState{version: rd.Version})
}

// noteRead records the first read of a record.
func (c *call) noteRead(table, key string, state readState) error {
	k := recordKey{table, key}
	if _, seen := c.reads[k]; seen {
		return nil
	}
	if len(c.reads) >= c.r.opts.MaxReads {
		return c.setFault("the call read more than %d records", c.r.opts.MaxReads)
	}
	c.reads[k] = state
	c.order = append(c.order, k)
	return nil
}

// table returns a table's schema and checks a key against it.
func (c *call) table(name, key string) (*tandem.TableSchema, error) {
	sc := c.schemas[name]
	if sc == nil {
		var err error
		if sc, err = c.view.Table(name); err != nil {
			return nil, err
		}
		c.schemas[name] = sc
	}
	if key != "" {
		if err := tandem.ValidateKey(sc, key); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

func (c *call) get(table, key string) ([]byte, error) {
	if key == "" {
		return nil, tandem.Errorf(tandem.CodeInvalid, "get needs a key")
	}
	sc, err := c.table(table, key)
	if err != nil {
		return nil, err
	}
	if c.rights != nil {
		if err := c.rights.CheckRead(sc); err != nil {
			return nil, err
		}
	}
	js, err := c.currentJSON(sc, key)
	if err != nil {
		return nil, err
	}
	if js == nil {
		return []byte{0, 0}, nil
	}
	if c.rights != nil {
		if js, err = c.rights.FilterRecord(sc, js); err != nil {
			return nil, err
		}
	}
	return wire.AppendStr([]byte{1}, string(js)), nil
}

// setWrite records the new state of a record.
func (c *call) setWrite(sc *tandem.TableSchema, key string, rec tandem.Record) error {
	if err := c.writable(sc.Name); err != nil {
		return err
	}
	k := recordKey{sc.Name, key}
	if w, ok := c.writes[k]; ok {
		w.rec = rec
		return nil
	}
	if len(c.writes) >= c.r.opts.MaxWrites {
		return c.setFault("the call wrote more than %d records", c.r.opts.MaxWrites)
	}
	c.writes[k] = &write{sc: sc, rec: rec}
	c.worder = append(c.worder, k)
	c.written[sc.Name] = true
	return nil
}

// writable faults a read-only function's attempt to write, before any
// other check could hide it behind an ordinary error.
func (c *call) writable(table string) error {
	if c.fn.ReadOnly {
		return c.setFault("read-only function %q tried to write to table %q", c.fn.Name, table)
	}
	return nil
}

// allowed checks a write against the caller's rights (none to check
// under the contract's own rights).
func (c *call) allowed(sc *tandem.TableSchema, op *tandem.Op) error {
	if c.rights == nil {
		return nil
	}
	return c.rights.CheckOp(sc, op)
}

func (c *call) put(table string, raw json.RawMessage, insert bool) error {
	if err := c.writable(table); err != nil {
		return err
	}
	sc, err := c.table(table, "")
	if err != nil {
		return err
	}
	rec, err := tandem.DecodeRecord(raw)
	if err != nil {
		return err
	}
	key, err := sc.Check(rec)
	if err != nil {
		return err
	}
	op := tandem.OpUpsert
	if insert {
		op = tandem.OpInsert
	}
	if err := c.allowed(sc, &tandem.Op{Op: op, Table: table, Key: key, Record: raw}); err != nil {
		return err
	}
	if insert {
		old, err := c.current(sc, key)
		if err != nil {
			return err
		}
		if old != nil {
			return tandem.Errorf(tandem.CodeConflict, "record %q already exists in table %q", key, table)
		}
	}
	return c.setWrite(sc, key, rec)
}

func (c *call) patch(table, key string, raw json.RawMessage) error {
	if err := c.writable(table); err != nil {
		return err
	}
	sc, err := c.table(table, key)
	if err != nil {
		return err
	}
	changes, err := tandem.DecodeRecord(raw)
	if err != nil {
		return err
	}
	if err := c.allowed(sc, &tandem.Op{Op: tandem.OpPatch, Table: table, Key: key, Record: raw}); err != nil {
		return err
	}
	old, err := c.current(sc, key)
	if err != nil {
		return err
	}
	if old == nil {
		return tandem.Errorf(tandem.CodeNotFound, "record %q does not exist in table %q", key, table)
	}
	rec := maps.Clone(old)
	if err := sc.Patch(key, rec, changes); err != nil {
		return err
	}
	return c.setWrite(sc, key, rec)
}

func (c *call) delete(table, key string) error {
	if err := c.writable(table); err != nil {
		return err
	}
	sc, err := c.table(table, key)
	if err != nil {
		return err
	}
	if err := c.allowed(sc, &tandem.Op{Op: tandem.OpDelete, Table: table, Key: key}); err != nil {
		return err
	}
	// Read the committed state even when the call wrote the record
	// itself: ops needs to know whether there is anything to delete at
	// apply, and a delete must never be blind.
	if _, _, err := c.readBase(sc, key); err != nil {
		return err
	}
	old, err := c.current(sc, key)
	if err != nil {
		return err
	}
	if old == nil {
		return tandem.Errorf(tandem.CodeNotFound, "record %q does not exist in table %q", key, table)
	}
	return c.setWrite(sc, key, nil)
}

func (c *call) query(table, raw string) ([]byte, error) {
	if len(c.conds)-1 >= c.r.opts.MaxQueries {
		return nil, c.setFault("the call ran more than %d queries", c.r.opts.MaxQueries)
	}
	sc, err := c.table(table, "")
	if err != nil {
		return nil, err
	}
	if c.written[table] {
		return nil, tandem.Errorf(tandem.CodeInvalid, "query on table %q after writing to it in the same call is not supported; query first", table)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, tandem.Errorf(tandem.CodeInvalid, "malformed query string: %v", err)
	}
	q, err := query.Parse(table, vals)
	if err != nil {
		return nil, err
	}
	if q.Limit == 0 || q.Limit > c.r.opts.MaxQueryLimit {
		return nil, tandem.Errorf(tandem.CodeInvalid, "a contract query needs a limit between 1 and %d", c.r.opts.MaxQueryLimit)
	}
	if c.rights != nil {
		if err := c.rights.CheckQuery(sc, q); err != nil {
			return nil, err
		}
	}
	res, err := c.view.Query(q)
	if err != nil {
		return nil, err
	}
	h, err := tandem.QueryHash(sc, res)
	if err != nil {
		return nil, tandem.WrapError(tandem.CodeInternal, err, "hash query result")
	}
	c.conds = append(c.conds, tandem.Condition{Kind: tandem.CondQuery, Table: table, Query: q, Hash: h})
	b := binary.AppendUvarint(nil, uint64(len(res.Records)))
	for _, r := range res.Records {
		if c.rights != nil { // after hashing: the condition is on what was read
			if r, err = c.rights.FilterRecord(sc, r); err != nil {
				return nil, err
			}
		}
		b = wire.AppendStr(b, string(r))
	}
	b = wire.AppendStr(b, res.Next)
	if res.Count == nil {
		return append(b, 0), nil
	}
	return binary.AppendUvarint(append(b, 1), uint64(*res.Count)), nil
}

func (c *call) emit(topic string, payload json.RawMessage) error {
	if c.fn.ReadOnly {
		return c.setFault("read-only function %q tried to emit an event", c.fn.Name)
	}
	if topic == "" || len(topic) > 256 {
		return tandem.Errorf(tandem.CodeInvalid, "an event topic must have 1 to 256 bytes")
	}
	if len(payload) > tandem.MaxEventSize || !json.Valid(payload) {
		return tandem.Errorf(tandem.CodeInvalid, "an event payload must be JSON of at most %d bytes", tandem.MaxEventSize)
	}
	if len(c.events) >= tandem.MaxEventsPerTx {
		return c.setFault("the call emitted more than %d events", tandem.MaxEventsPerTx)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, payload); err != nil {
		return tandem.Errorf(tandem.CodeInvalid, "event payload: %v", err)
	}
	c.events = append(c.events, tandem.Event{Contract: c.contract, Topic: topic, Payload: compact.Bytes()})
	return nil
}

func decodeStrictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}
