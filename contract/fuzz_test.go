package contract_test

import (
	"context"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/contract"
)

// FuzzValidate feeds arbitrary deploy bodies to the module validation that
// PUT /v1/contracts/{name} runs before anything is replicated. Whatever
// the bytes, it must not panic, and a module it refuses must be refused as
// the client's mistake (CodeInvalid: a 400), never as a server failure.
// The seeds (replayed by every `go test`) are hand-assembled modules: empty,
// truncated, with a mistyped export, and plain garbage.
func FuzzValidate(f *testing.F) {
	magic := []byte("\x00asm\x01\x00\x00\x00")
	// A module exporting tandem_invoke as a function of no arguments.
	mistyped := append(append([]byte{}, magic...),
		0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
		0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
		0x07, 0x11, 0x01, 0x0d, 't', 'a', 'n', 'd', 'e', 'm', '_', 'i', 'n', 'v', 'o', 'k', 'e', 0x00, 0x00, // export
		0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: an empty body
	)
	for _, seed := range [][]byte{nil, magic[:4], magic, mistyped, mistyped[:len(mistyped)-3], []byte("not wasm at all"), append(append([]byte{}, magic...), 0xff, 0xff, 0xff)} {
		f.Add(seed)
	}
	ctx := context.Background()
	rt, err := contract.New(ctx, contract.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		fns, err := rt.Validate(ctx, wasm)
		if err != nil {
			if c := tandem.ErrorCode(err); c != tandem.CodeInvalid {
				t.Fatalf("module refused with code %q, want %q: %v", c, tandem.CodeInvalid, err)
			}
			return
		}
		d := &tandem.ContractDeploy{Name: "fuzz", Wasm: wasm, SHA256: tandem.WasmSHA256(wasm), Functions: fns}
		if err := tandem.ValidateContractDeploy(d); err != nil {
			t.Fatalf("a module that validates gives a deploy that does not: %v", err)
		}
	})
}
