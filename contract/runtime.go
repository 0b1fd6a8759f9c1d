package contract

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Options configure a Runtime. Zero values get the documented defaults.
type Options struct {
	// CallTimeout bounds one call's wall-clock time (default 2s): waiting
	// for an instance, and the guest's requests to the host, which fail
	// the call once it has passed. The guest's own computation between
	// requests is bounded by MaxFuel.
	CallTimeout time.Duration
	// MaxFuel bounds the loop iterations one call, or one instance's
	// initialisation, may run in the guest (default 1e9: about a second
	// of a tight loop on the project's machine; loops doing more per
	// iteration run longer). See fuel.go for why this is counted in the
	// guest rather than checked by wazero.
	MaxFuel uint64
	// MemoryPages bounds an instance's linear memory in 64 KiB pages
	// (default 2048: 128 MiB).
	MemoryPages uint32
	// MaxWrites bounds the records one call may write (default
	// tandem.MaxTxOps).
	MaxWrites int
	// MaxReads bounds the distinct records one call may read, and
	// MaxQueries the queries it may run; together with the contract
	// condition they must fit tandem.MaxTxConditions (defaults 900 and 16).
	MaxReads   int
	MaxQueries int
	// MaxQueryLimit is the largest limit a contract query may ask for
	// (default 1000).
	MaxQueryLimit int
	// MaxArgSize bounds a call's argument and MaxResultSize its result
	// (defaults 1 MiB each).
	MaxArgSize    int
	MaxResultSize int
	// PoolSize is how many instances of one module exist at most, idle or
	// running (default 4): calls beyond it wait for a free instance rather
	// than pay for instantiating and initialising a Go module each time
	// (and on a small machine more would not run at once anyway).
	PoolSize int
	// RetainGrace is how long Retain keeps a module that no active
	// version uses after its last use (default 1 minute).
	RetainGrace time.Duration
	// Clock gives Context.Now (default time.Now).
	Clock func() time.Time
	// Rights returns a caller's permissions, for versions deployed with
	// caller rights (tandem.RightsCaller). It is asked on every execution,
	// on the node that executes (the leader, for a write call), so it sees
	// the replicated users and roles as of then. Nil: callers have no
	// rights, and caller-rights functions are refused every table access.
	Rights func(caller string) Rights
	// OnDenied, if set, is told of every host operation that the caller's
	// rights refused (caller-rights versions only), on the node that
	// executes, whether or not the function then handles the error: the
	// attempt is what an audit log records. An execution run again (it
	// went stale, or its transaction failed a condition) reports again.
	OnDenied func(req tandem.ContractCall, err error)
	Logger   *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.CallTimeout == 0 {
		o.CallTimeout = 2 * time.Second
	}
	if o.MaxFuel == 0 {
		o.MaxFuel = DefaultMaxFuel
	}
	if o.MemoryPages == 0 {
		o.MemoryPages = 2048
	}
	if o.MaxWrites == 0 {
		o.MaxWrites = tandem.MaxTxOps
	}
	if o.MaxReads == 0 {
		o.MaxReads = 900
	}
	if o.MaxQueries == 0 {
		o.MaxQueries = 16
	}
	if o.MaxQueryLimit == 0 {
		o.MaxQueryLimit = 1000
	}
	if o.MaxArgSize == 0 {
		o.MaxArgSize = 1 << 20
	}
	if o.MaxResultSize == 0 {
		o.MaxResultSize = 1 << 20
	}
	if o.PoolSize == 0 {
		o.PoolSize = 4
	}
	if o.RetainGrace == 0 {
		o.RetainGrace = time.Minute
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.CallTimeout < 0 || o.MaxWrites < 0 || o.MaxReads < 0 || o.MaxQueries < 0 || o.MaxArgSize < 0 || o.MaxResultSize < 0 || o.PoolSize < 0 || o.RetainGrace < 0:
		return o, errors.New("contract: limits must not be negative")
	case o.MemoryPages > 65536:
		return o, errors.New("contract: memory limit is above 65536 pages (4 GiB)")
	case o.MaxWrites > tandem.MaxTxOps:
		return o, fmt.Errorf("contract: max writes %d is above the transaction limit %d", o.MaxWrites, tandem.MaxTxOps)
	case o.MaxReads+o.MaxQueries+1 > tandem.MaxTxConditions:
		return o, fmt.Errorf("contract: max reads + max queries + 1 is above the transaction limit %d", tandem.MaxTxConditions)
	case o.MaxQueryLimit > tandem.MaxLimit:
		return o, fmt.Errorf("contract: max query limit is above %d", tandem.MaxLimit)
	}
	return o, nil
}

// Runtime compiles and runs contract modules. It is safe for concurrent
// use. Create it with New and Close it when done.
type Runtime struct {
	opts  Options
	log   *slog.Logger
	rt    wazero.Runtime
	cache wazero.CompilationCache

	mu        sync.Mutex
	closed    bool
	modules   map[string]*module      // by code hash
	compiling map[string]*compileWait // by code hash: compiles in progress
}

// New creates a runtime with the host module and WASI instantiated.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cache := wazero.NewCompilationCache()
	// Not WithCloseOnContextDone: the guest's computation is bounded by
	// the fuel its code counts (fuel.go), at a fraction of the cost.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(opts.MemoryPages))
	r := &Runtime{opts: opts, log: opts.Logger, rt: rt, cache: cache, modules: map[string]*module{}, compiling: map[string]*compileWait{}}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("contract: instantiate WASI: %w", err)
	}
	if err := r.instantiateHost(ctx); err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("contract: instantiate host module: %w", err)
	}
	return r, nil
}

// Close closes every module and instance. Safe to call twice.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.modules = nil
	r.mu.Unlock()
	return errors.Join(r.rt.Close(ctx), r.cache.Close(ctx))
}

// module is one compiled module with its pool of idle instances.
type module struct {
	hash      string
	compiled  wazero.CompiledModule
	functions []tandem.ContractFunction
	idle      chan *instance
	slots     chan struct{} // one per instance that exists; PoolSize in all
	// used is when a call or a validation last loaded the module (Unix
	// nanoseconds): Retain keeps it for a while after that.
	used atomic.Int64

	mu      sync.Mutex // orders put against retire
	retired bool       // closed by Retain: a returning instance is closed
}

// instance is one initialised instantiation of a module. It serves one
// call at a time.
type instance struct {
	mod      api.Module
	alloc    api.Function
	invoke   api.Function
	describe api.Function
	fuel     api.MutableGlobal // nil for a module that exports no functions
	stderr   *headBuffer
}

// refuel gives the instance a call's budget before entering the guest.
func (in *instance) refuel(budget uint64) {
	if in.fuel != nil {
		in.fuel.Set(budget)
	}
}

// spent reports whether the guest used up its fuel: the trap it then
// hits is the fuel check's, not the module's own.
func (in *instance) spent() bool { return in.fuel != nil && in.fuel.Get() == 0 }

func (in *instance) close(ctx context.Context) { _ = in.mod.Close(ctx) }

// requiredExports are what the SDK exports; a module without them is not a
// Tandem contract.
var requiredExports = []string{"tandem_alloc", "tandem_invoke", "tandem_describe"}

// Validate compiles wasm, checks that it is a Tandem contract and returns
// the functions it exports. Errors are CodeInvalid and say why. A valid
// module is kept compiled (by its hash): it is about to be deployed, and
// compiling a Go module takes a second or more.
func (r *Runtime) Validate(ctx context.Context, wasm []byte) ([]tandem.ContractFunction, error) {
	m, err := r.load(ctx, tandem.WasmSHA256(wasm), func() ([]byte, error) { return wasm, nil })
	if err != nil {
		return nil, err
	}
	return m.functions, nil
}

// Preload compiles the active version of every contract in infos that is
// not loaded yet (code returns a version's module), so that the first call
// after a deploy does not pay for compiling it. Errors are returned for
// the caller to log; a module that fails here fails its calls later.
func (r *Runtime) Preload(ctx context.Context, infos []tandem.ContractInfo, code func(name string, version uint64) ([]byte, error)) error {
	var errs []error
	for _, info := range infos {
		v := info.ActiveVersion()
		if v == nil {
			continue
		}
		r.mu.Lock()
		_, loaded := r.modules[v.SHA256]
		r.mu.Unlock()
		if loaded {
			continue
		}
		if _, err := r.load(ctx, v.SHA256, func() ([]byte, error) { return code(info.Name, v.Version) }); err != nil {
			errs = append(errs, fmt.Errorf("contract %s version %d: %w", info.Name, v.Version, err))
		}
	}
	return errors.Join(errs...)
}

// load returns the module of code hash, compiling it with the bytes code
// returns if it is not loaded yet. Concurrent loads of one module compile
// it once: the others wait for that compile (a Go module takes a second
// or more of CPU, and many calls may arrive at once for a version that is
// not compiled, after a restart or a rollback).
func (r *Runtime) load(ctx context.Context, hash string, code func() ([]byte, error)) (*module, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, tandem.Errorf(tandem.CodeUnavailable, "the contract runtime is closed")
	}
	if m := r.modules[hash]; m != nil {
		r.mu.Unlock()
		m.used.Store(time.Now().UnixNano())
		return m, nil
	}
	if w := r.compiling[hash]; w != nil {
		r.mu.Unlock()
		select {
		case <-w.done:
			if w.err != nil {
				return nil, w.err
			}
			w.m.used.Store(time.Now().UnixNano())
			return w.m, nil
		case <-ctx.Done():
			return nil, tandem.WrapError(tandem.CodeTimeout, ctx.Err(), "timed out waiting for the contract's module to compile")
		}
	}
	w := &compileWait{done: make(chan struct{})}
	r.compiling[hash] = w
	r.mu.Unlock()

	// Not cut short by this caller leaving: others may be waiting for it.
	m, err := r.compileCode(context.WithoutCancel(ctx), hash, code)
	r.mu.Lock()
	delete(r.compiling, hash)
	if err == nil && r.closed {
		_ = m.compiled.Close(ctx)
		m, err = nil, tandem.Errorf(tandem.CodeUnavailable, "the contract runtime is closed")
	}
	if err == nil {
		m.used.Store(time.Now().UnixNano())
		r.modules[hash] = m
	}
	r.mu.Unlock()
	w.m, w.err = m, err
	close(w.done)
	return m, err
}

// compileWait is a compile in progress that other loads wait for.
type compileWait struct {
	done chan struct{} // closed when m or err is set
	m    *module
	err  error
}

// compileCode checks code's bytes against hash and compiles them.
func (r *Runtime) compileCode(ctx context.Context, hash string, code func() ([]byte, error)) (*module, error) {
	wasm, err := code()
	if err != nil {
		return nil, err
	}
	if tandem.WasmSHA256(wasm) != hash {
		return nil, tandem.Errorf(tandem.CodeInternal, "stored contract code does not match its hash %s", hash)
	}
	return r.compile(ctx, hash, wasm)
}

// Retain closes every module whose code hash is not in keep and that no
// call or validation has loaded for RetainGrace, with its idle instances;
// instances still serving a call are closed when the call returns them.
// Without it every version ever deployed or validated stays compiled,
// with up to PoolSize instances of its memory, for the node's lifetime.
// A module closed here is compiled again if a call needs it (a rollback).
// The grace, longer than any call, keeps a module a call has just loaded
// and one validated for a deploy that has not applied yet. It returns how
// many modules it closed.
func (r *Runtime) Retain(ctx context.Context, keep map[string]bool) int {
	cutoff := time.Now().Add(-r.opts.RetainGrace).UnixNano()
	var drop []*module
	r.mu.Lock()
	for hash, m := range r.modules {
		if !keep[hash] && m.used.Load() < cutoff {
			delete(r.modules, hash)
			drop = append(drop, m)
		}
	}
	r.mu.Unlock()
	for _, m := range drop {
		m.retire(ctx)
		r.log.Info("contract: closed a module no active version uses", "sha256", m.hash)
	}
	return len(drop)
}

// Loaded returns how many modules are compiled.
func (r *Runtime) Loaded() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.modules)
}

// retire closes m's idle instances and its compiled code; instances in use
// are closed as they come back (put).
func (m *module) retire(ctx context.Context) {
	m.mu.Lock()
	m.retired = true
	for done := false; !done; {
		select {
		case in := <-m.idle:
			in.close(ctx)
			<-m.slots
		default:
			done = true
		}
	}
	m.mu.Unlock()
	// Safe with calls still running on its instances (wazero's
	// CompiledModule.Close).
	_ = m.compiled.Close(ctx)
}

// compile compiles wasm and asks a fresh instance to describe itself.
func (r *Runtime) compile(ctx context.Context, hash string, wasm []byte) (*module, error) {
	if err := checkVectorCounts(wasm); err != nil {
		return nil, err
	}
	wasm, err := instrument(wasm, r.opts.MaxFuel)
	if err != nil {
		return nil, tandem.WrapError(tandem.CodeInvalid, err, "the module does not compile: %v", err)
	}
	compiled, err := r.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, tandem.WrapError(tandem.CodeInvalid, err, "the module does not compile: %v", err)
	}
	exports := compiled.ExportedFunctions()
	for _, name := range requiredExports {
		if _, ok := exports[name]; !ok {
			_ = compiled.Close(ctx)
			return nil, tandem.Errorf(tandem.CodeInvalid, "the module does not export %s; build it with package sdk and -buildmode=c-shared", name)
		}
	}
	m := &module{hash: hash, compiled: compiled, idle: make(chan *instance, r.opts.PoolSize), slots: make(chan struct{}, r.opts.PoolSize)}
	fns, err := r.describe(ctx, m)
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, tandem.Errorf(tandem.CodeInvalid, "the module cannot describe its functions: %s", tandem.ErrorMessage(err))
	}
	m.functions = fns
	return m, nil
}

// instantiate creates and initialises an instance of m.
func (r *Runtime) instantiate(ctx context.Context, m *module) (*instance, error) {
	in := &instance{stderr: &headBuffer{max: 4096}}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module
		WithStartFunctions("_initialize").
		WithStdout(in.stderr).
		WithStderr(in.stderr)
	ctx, cancel := context.WithTimeout(ctx, r.opts.CallTimeout)
	defer cancel()
	mod, err := r.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		if outOfFuel(err) && in.stderr.String() == "" {
			// The fuel global cannot be read back from a failed
			// instantiation; a trap with nothing said is the fuel check.
			return nil, r.fuelFault("the module failed to initialise")
		}
		return nil, fault(err, in.stderr, "the module failed to initialise")
	}
	in.mod = mod
	in.fuel, _ = mod.ExportedGlobal(fuelExport).(api.MutableGlobal)
	in.alloc = mod.ExportedFunction("tandem_alloc")
	in.invoke = mod.ExportedFunction("tandem_invoke")
	in.describe = mod.ExportedFunction("tandem_describe")
	return in, nil
}

// get returns an idle instance of m, or a new one if fewer than PoolSize
// exist, or waits for one to be released.
func (r *Runtime) get(ctx context.Context, m *module) (*instance, error) {
	select {
	case in := <-m.idle:
		return in, nil
	default:
	}
	select {
	case in := <-m.idle:
		return in, nil
	case m.slots <- struct{}{}:
		// Under m.mu, so that Retain cannot close the compiled code
		// while an instance is being made from it.
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.retired {
			<-m.slots
			return nil, errRetired
		}
		in, err := r.instantiate(ctx, m)
		if err != nil {
			<-m.slots
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, tandem.WrapError(tandem.CodeTimeout, ctx.Err(), "timed out waiting for a free instance of the contract")
	}
}

// errRetired is get's answer for a module Retain closed after the call
// loaded it: the call loads it again (nothing has run yet).
var errRetired = errors.New("contract: module retired")

// put returns a cleanly finished instance to its pool, or closes it if
// the module has been retired meanwhile.
func (r *Runtime) put(m *module, in *instance) {
	in.stderr.reset()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.retired {
		in.close(context.Background())
		<-m.slots
		return
	}
	m.idle <- in // never blocks: at most PoolSize instances exist
}

// discard closes an instance that must not be reused and frees its slot.
func (r *Runtime) discard(ctx context.Context, m *module, in *instance) {
	in.close(ctx)
	<-m.slots
}

// describe runs tandem_describe on a fresh instance.
func (r *Runtime) describe(ctx context.Context, m *module) ([]tandem.ContractFunction, error) {
	in, err := r.instantiate(ctx, m)
	if err != nil {
		return nil, err
	}
	defer in.close(ctx)
	c := newCall(r, nil, "", "", nil, tandem.ContractFunction{Name: "tandem_describe", ReadOnly: true})
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, callKey{}, c), r.opts.CallTimeout)
	defer cancel()
	in.refuel(r.opts.MaxFuel)
	if _, err := in.describe.Call(ctx); err != nil {
		return nil, c.failure(in, err)
	}
	if c.fault != nil {
		return nil, c.fault
	}
	var fns []tandem.ContractFunction
	if c.result == nil || c.resultErr {
		return nil, tandem.Errorf(tandem.CodeContractFault, "tandem_describe returned no function list")
	}
	if err := decodeStrictJSON(c.result, &fns); err != nil {
		return nil, tandem.Errorf(tandem.CodeContractFault, "tandem_describe returned a bad function list: %v", err)
	}
	if err := tandem.ValidateContractFunctions(fns); err != nil {
		return nil, tandem.Errorf(tandem.CodeContractFault, "the module %s", tandem.ErrorMessage(err))
	}
	return fns, nil
}
