//go:build wasip1

// Command raw is a test module that speaks the host ABI without the SDK,
// to break it on purpose: invalid JSON results, pointers outside memory,
// no result at all.
package main

import "unsafe"

//go:wasmimport tandem host_call
func hostCall(req unsafe.Pointer, n uint32) uint32

//go:wasmimport tandem host_read
func hostRead(buf unsafe.Pointer)

//go:wasmimport tandem set_result
func setResult(ptr unsafe.Pointer, n uint32, isErr uint32)

var buf = make([]byte, 1<<16)

//go:wasmexport tandem_alloc
func alloc(size uint32) unsafe.Pointer { return unsafe.Pointer(&buf[0]) }

//go:wasmexport tandem_describe
func describe() {
	b := []byte(`[{"name":"garbage"},{"name":"badptr"},{"name":"badread"},{"name":"noresult"},{"name":"badrequest"}]`)
	setResult(unsafe.Pointer(&b[0]), uint32(len(b)), 0)
}

//go:wasmexport tandem_invoke
func invoke(fn unsafe.Pointer, fnLen uint32, arg unsafe.Pointer, argLen uint32) uint32 {
	switch string(unsafe.Slice((*byte)(fn), fnLen)) {
	case "garbage":
		b := []byte("{not json")
		setResult(unsafe.Pointer(&b[0]), uint32(len(b)), 0)
	case "badptr":
		hostCall(unsafe.Pointer(uintptr(0xfffffff0)), 100)
	case "badread":
		b := []byte{1, 0, 0, 0} // env (contract/wire.go)
		hostCall(unsafe.Pointer(&b[0]), uint32(len(b)))
		hostRead(unsafe.Pointer(uintptr(0xffffffff)))
	case "badrequest":
		b := []byte{99, 0, 0, 0} // no such op
		hostCall(unsafe.Pointer(&b[0]), uint32(len(b)))
	case "noresult":
	}
	return 0
}

func main() {}
