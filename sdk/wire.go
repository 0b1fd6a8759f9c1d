//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/tandemdb/tandem/internal/wire"
)

// call sends one request (internal/wire) and returns a reader of the
// response payload, or the host's error as an *Error.
func call(op byte, a, b string, c []byte) (*wire.Reader, error) {
	req := wire.AppendRequest(make([]byte, 0, 16+len(a)+len(b)+len(c)), op, a, b, string(c))
	n := hostCall(unsafe.Pointer(&req[0]), uint32(len(req)))
	resp := make([]byte, n+1)
	hostRead(unsafe.Pointer(&resp[0]))
	r := &wire.Reader{B: resp[:n]}
	switch r.Byte() {
	case wire.StatusOK:
		return r, r.Err
	case wire.StatusError:
		e := &Error{Code: r.Str(), Message: r.Str()}
		if r.Err != nil {
			return nil, r.Err
		}
		return nil, e
	}
	return nil, wire.ErrMalformed
}
