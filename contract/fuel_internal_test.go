package contract

import (
	"context"
	"strings"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// loopModule is, hand-assembled:
//
//	(module
//	  (global (mut i32) (i32.const 0))
//	  (func (export "count") (param i32)
//	    (loop local.get 0 i32.const 1 i32.sub local.tee 0 br_if 0))
//	  (func (export "spin") (loop br 0)))
var loopModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x08, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00, // types
	0x03, 0x03, 0x02, 0x00, 0x01, // functions
	0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b, // globals
	0x07, 0x10, 0x02, 0x05, 'c', 'o', 'u', 'n', 't', 0x00, 0x00, 0x04, 's', 'p', 'i', 'n', 0x00, 0x01, // exports
	0x0a, 0x18, 0x02, // code
	0x0e, 0x00, 0x03, 0x40, 0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, 0x0b, 0x0b,
	0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b,
}

// TestFuel: the instrumented module counts one unit per loop iteration,
// exports its fuel after the module's own global, and traps when the
// fuel runs out; the uninstrumented one is valid too (the test module is
// what it says).
func TestFuel(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, loopModule); err != nil {
		t.Fatalf("the test module itself does not compile: %v", err)
	}
	wasm, err := instrument(loopModule, 100)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatalf("instrumented module: %v", err)
	}
	fuel, ok := mod.ExportedGlobal(fuelExport).(api.MutableGlobal)
	if !ok {
		t.Fatal("no mutable fuel global exported")
	}
	if got := fuel.Get(); got != 100 {
		t.Fatalf("initial fuel %d, want 100", got)
	}
	if _, err := mod.ExportedFunction("count").Call(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if got := fuel.Get(); got != 90 {
		t.Fatalf("after 10 iterations fuel is %d, want 90", got)
	}
	fuel.Set(1000)
	_, err = mod.ExportedFunction("spin").Call(ctx)
	if !outOfFuel(err) || fuel.Get() != 0 {
		t.Fatalf("spin: %v, fuel %d; want the fuel trap with fuel 0", err, fuel.Get())
	}
	// A module with nothing to run is left alone; garbage is refused.
	if got, err := instrument(loopModule[:8], 100); err != nil || len(got) != 8 {
		t.Fatalf("empty module: %d bytes, %v", len(got), err)
	}
	for _, bad := range [][]byte{nil, []byte("\x00asm"), loopModule[:len(loopModule)-3], append(append([]byte{}, loopModule[:len(loopModule)-9]...), 0xfd, 0x00, 0x0b, 0x0b, 0, 0, 0, 0, 0)} {
		if _, err := instrument(bad, 100); err == nil {
			t.Errorf("instrument(% x) succeeded", bad)
		}
	}
}

// FuzzInstrument: instrumenting never panics on what a client may deploy,
// and a module wazero accepts stays one it accepts.
func FuzzInstrument(f *testing.F) {
	f.Add(loopModule)
	f.Add(loopModule[:8])
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x0a\x01"))
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := instrument(wasm, 7)
		if checkVectorCounts(wasm) != nil {
			return // refused before compiling, as Runtime.compile does
		}
		orig, cerr := rt.CompileModule(ctx, wasm)
		if cerr != nil {
			return
		}
		orig.Close(ctx)
		if err != nil {
			if strings.Contains(err.Error(), "unsupported instruction") {
				return // valid, but uses an instruction Go does not emit (SIMD, ...)
			}
			t.Fatalf("a valid module was refused: %v", err)
		}
		m, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("instrumenting a valid module made it invalid: %v", err)
		}
		m.Close(ctx)
	})
}

// TestVectorCountsEmptySection: a vector section too short for its own
// count is refused before wazero reads the count from the bytes after it
// (this 16-byte module made wazero allocate 14 GB).
func TestVectorCountsEmptySection(t *testing.T) {
	err := checkVectorCounts([]byte("\x00asm\x01\x00\x00\x00\a\x00\xfbðr\r0"))
	if tandem.ErrorCode(err) != tandem.CodeInvalid || !strings.Contains(tandem.ErrorMessage(err), "too short for its entry count") {
		t.Fatalf("checkVectorCounts = %v; want an invalid module, too short for its count", err)
	}
}
