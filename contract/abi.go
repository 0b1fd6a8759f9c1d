package contract

import (
	"context"
	"errors"
	"sync"

	"github.com/tandemdb/tandem"
	"github.com/tetratelabs/wazero/api"
)

// Bounds of the host ABI that are not configurable: a request is a small
// JSON document (a record is at most an argument's size), a log line is
// truncated, and a call may log only so often.
const (
	maxLogLine  = 1024
	maxLogLines = 100
)

// instantiateHost defines the "tandem" host module (doc.go, "Host ABI").
func (r *Runtime) instantiateHost(ctx context.Context) error {
	i32 := api.ValueTypeI32
	b := r.rt.NewHostModuleBuilder("tandem")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(r.hostCall), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("host_call")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(r.hostRead), []api.ValueType{i32}, nil).Export("host_read")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(r.setResult), []api.ValueType{i32, i32, i32}, nil).Export("set_result")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(r.hostLog), []api.ValueType{i32, i32}, nil).Export("log")
	_, err := b.Instantiate(ctx)
	return err
}

// faultPanic unwinds the guest after a contract fault; wazero turns a
// host function's panic into an error of the guest call, and the call's
// recorded fault is what the caller sees.
type faultPanic struct{ err error }

// callOf returns the call a host function serves. A module calling the
// host outside a call (from _initialize) is a fault: there is nothing to
// serve, and it would otherwise crash the host.
func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil {
		panic(faultPanic{})
	}
	return c
}

// read copies n bytes at ptr out of the guest's memory, or faults.
func (c *call) read(m api.Module, ptr, n uint32, max int, what string) []byte {
	if int(n) > max {
		panic(faultPanic{c.setFault("the module passed a %s of %d bytes; the limit is %d", what, n, max)})
	}
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(faultPanic{c.setFault("the module passed a %s outside its memory (%d bytes at %d)", what, n, ptr)})
	}
	return append([]byte(nil), b...)
}

func (r *Runtime) requestLimit() int { return r.opts.MaxArgSize + 64<<10 }

func (r *Runtime) hostCall(ctx context.Context, m api.Module, stack []uint64) {
	c := callOf(ctx)
	if err := ctx.Err(); err != nil {
		// Past the call's wall-clock limit, or its caller is gone: its
		// next request ends it (the computation in between is bounded by
		// fuel).
		if errors.Is(err, context.DeadlineExceeded) {
			panic(faultPanic{c.setFault("it ran past its time limit (%s)", r.opts.CallTimeout)})
		}
		if c.fault == nil {
			c.fault = tandem.WrapError(tandem.CodeTimeout, err, "the call was canceled")
		}
		panic(faultPanic{c.fault})
	}
	req := c.read(m, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), r.requestLimit(), "host request")
	c.pending = c.handle(req)
	if c.fault != nil {
		panic(faultPanic{c.fault})
	}
	stack[0] = api.EncodeU32(uint32(len(c.pending)))
}

func (r *Runtime) hostRead(ctx context.Context, m api.Module, stack []uint64) {
	c := callOf(ctx)
	ptr := api.DecodeU32(stack[0])
	if c.pending == nil {
		panic(faultPanic{c.setFault("the module read a host response without a request")})
	}
	if !m.Memory().Write(ptr, c.pending) {
		panic(faultPanic{c.setFault("the module passed a response buffer outside its memory (%d bytes at %d)", len(c.pending), ptr)})
	}
	c.pending = nil
}

func (r *Runtime) setResult(ctx context.Context, m api.Module, stack []uint64) {
	c := callOf(ctx)
	if c.result != nil {
		panic(faultPanic{c.setFault("the module set its result twice")})
	}
	c.result = c.read(m, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), r.opts.MaxResultSize, "result")
	c.resultErr = api.DecodeU32(stack[2]) != 0
}

func (r *Runtime) hostLog(ctx context.Context, m api.Module, stack []uint64) {
	c := callOf(ctx)
	n := min(api.DecodeU32(stack[1]), maxLogLine)
	line := c.read(m, api.DecodeU32(stack[0]), n, maxLogLine, "log line")
	c.logs++
	if c.logs > maxLogLines {
		return
	}
	r.log.Info("contract log", "contract", c.contract, "function", c.fn.Name, "msg", string(line))
}

// headBuffer keeps the first max bytes written to it: a module's stderr,
// where the Go runtime prints why it dies ("panic: ...", "fatal error:
// ...") before the goroutine dumps.
type headBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *headBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := t.max - len(t.b); room > 0 {
		t.b = append(t.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (t *headBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// reset forgets what was written (an instance going back to its pool).
func (t *headBuffer) reset() {
	t.mu.Lock()
	t.b = t.b[:0]
	t.mu.Unlock()
}
