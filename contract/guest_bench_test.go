package contract_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/tandemdb/tandem/tests/harness"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// BenchmarkGuestJSON times one decode and one encode of a token account
// record inside a Go-built guest, on a bare wazero runtime with and
// without WithCloseOnContextDone (which Runtime needs for its call time
// limit), and natively for scale. It isolates what the guest's own work costs from the host:
// the module's host imports are stubs and only set_result is used.
func BenchmarkGuestJSON(b *testing.B) {
	wasm := harness.Contract(b, "contract/testdata/jsonloop")
	const perCall = 100
	b.Run("native", func(b *testing.B) { // the same work outside WebAssembly, for scale
		rec := []byte(`{"_version":12,"balance":1099511627776,"id":"a17"}`)
		for b.Loop() {
			var a struct {
				ID      string `json:"id"`
				Balance int64  `json:"balance"`
			}
			if err := json.Unmarshal(rec, &a); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/json-pair")
	})
	for _, check := range []bool{false, true} {
		b.Run("closeOnContextDone="+strconv.FormatBool(check), func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(check))
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			var result []byte
			i32 := api.ValueTypeI32
			stub := api.GoModuleFunc(func(context.Context, api.Module, []uint64) {})
			h := rt.NewHostModuleBuilder("tandem")
			h.NewFunctionBuilder().WithGoModuleFunction(stub, []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("host_call")
			h.NewFunctionBuilder().WithGoModuleFunction(stub, []api.ValueType{i32}, nil).Export("host_read")
			h.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, s []uint64) {
				result, _ = m.Memory().Read(api.DecodeU32(s[0]), api.DecodeU32(s[1]))
				result = append([]byte(nil), result...)
			}), []api.ValueType{i32, i32, i32}, nil).Export("set_result")
			h.NewFunctionBuilder().WithGoModuleFunction(stub, []api.ValueType{i32, i32}, nil).Export("log")
			if _, err := h.Instantiate(ctx); err != nil {
				b.Fatal(err)
			}
			mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
			if err != nil {
				b.Fatal(err)
			}
			alloc, invoke := mod.ExportedFunction("tandem_alloc"), mod.ExportedFunction("tandem_invoke")
			fn, arg := "json", strconv.Itoa(perCall)
			b.ResetTimer()
			for b.Loop() {
				res, err := alloc.Call(ctx, uint64(len(fn)+len(arg)))
				if err != nil {
					b.Fatal(err)
				}
				ptr := uint32(res[0])
				mod.Memory().WriteString(ptr, fn+arg)
				st, err := invoke.Call(ctx, uint64(ptr), uint64(len(fn)), uint64(ptr)+uint64(len(fn)), uint64(len(arg)))
				if err != nil || st[0] != 0 || string(result) != arg {
					b.Fatalf("invoke: status %v, result %q, error %v", st, result, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perCall), "ns/json-pair")
		})
	}
}
