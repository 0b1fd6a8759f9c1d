//go:build wasip1

package sdk

import (
	"unsafe"

	// A drop-in encoding/json: 3x faster in WebAssembly (docs/contracts.md).
	json "github.com/segmentio/encoding/json"
)

// The host ABI (contract/abi.go is the other side). The host never calls
// back into the module while a host function runs: a request's response is
// parked on the host until the module asks for it with hostRead.

//go:wasmimport tandem host_call
func hostCall(req unsafe.Pointer, reqLen uint32) uint32

//go:wasmimport tandem host_read
func hostRead(buf unsafe.Pointer)

//go:wasmimport tandem set_result
func setResult(ptr unsafe.Pointer, n uint32, isErr uint32)

//go:wasmimport tandem log
func hostLog(ptr unsafe.Pointer, n uint32)

// Status codes of tandem_invoke.
const (
	statusOK    = 0
	statusError = 1
)

// arena holds the buffer the host last asked for with tandem_alloc, so the
// garbage collector keeps it until tandem_invoke has read it.
var arena []byte

//go:wasmexport tandem_alloc
func alloc(size uint32) unsafe.Pointer {
	arena = make([]byte, size+1) // never empty, so the pointer is valid
	return unsafe.Pointer(&arena[0])
}

//go:wasmexport tandem_invoke
func invoke(fnPtr unsafe.Pointer, fnLen uint32, argPtr unsafe.Pointer, argLen uint32) uint32 {
	fn := string(unsafe.Slice((*byte)(fnPtr), fnLen))
	arg := append([]byte(nil), unsafe.Slice((*byte)(argPtr), argLen)...)
	arena = nil
	res, err := dispatch(fn, arg)
	if err != nil {
		sendResult([]byte(err.Error()), true)
		return statusError
	}
	sendResult(res, false)
	return statusOK
}

//go:wasmexport tandem_describe
func describe() {
	list := make([]function, 0, len(registry))
	for _, name := range names {
		list = append(list, function{Name: name, ReadOnly: registry[name].readOnly})
	}
	b, _ := json.Marshal(list)
	sendResult(b, false)
}

type function struct {
	Name     string `json:"name"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

func sendResult(b []byte, isErr bool) {
	var e uint32
	if isErr {
		e = 1
	}
	setResult(bytesPtr(b), uint32(len(b)), e)
}

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}
