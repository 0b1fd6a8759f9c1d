// Package wire is the host_call wire format shared by the contract host
// (package contract) and the guest SDK (package sdk). It is binary because
// encoding/json costs about 100 µs per small document inside a Go
// WebAssembly guest, which made it most of a call's time.
//
//	request  = op(1) a(str) b(str) c(str)
//	str      = length(uvarint) bytes
//
//	op       a       b       c
//	env      -       -       -
//	get      table   key     -
//	put      table   -       record JSON
//	insert   table   -       record JSON
//	patch    table   key     changes JSON
//	delete   table   key     -
//	query    table   query   -
//	emit     topic   -       payload JSON
//
//	response = 0 payload | 1 code(str) message(str)
//	payload: env: caller(str) now(varint Unix ns); get: found(1) record(str);
//	query: n(uvarint) record(str)*n next(str) hasCount(1) count(uvarint);
//	others: nothing.
package wire

import (
	"encoding/binary"
	"errors"
)

// Request operations.
const (
	OpEnv byte = iota + 1
	OpGet
	OpPut
	OpInsert
	OpPatch
	OpDelete
	OpQuery
	OpEmit
)

// Response status bytes.
const (
	StatusOK    byte = 0
	StatusError byte = 1
)

// ErrMalformed is the error of a truncated or corrupt message.
var ErrMalformed = errors.New("wire: malformed message")

// AppendRequest appends the encoding of a request.
func AppendRequest(b []byte, op byte, x, y, z string) []byte {
	b = append(b, op)
	return AppendStr(AppendStr(AppendStr(b, x), y), z)
}

// AppendStr appends a length-prefixed string.
func AppendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Reader decodes a message; the first error sticks (Err) and later reads
// return zero values.
type Reader struct {
	B   []byte
	Err error
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.Err != nil || len(r.B) == 0 {
		r.Err = ErrMalformed
		return 0
	}
	c := r.B[0]
	r.B = r.B[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.B)
	if r.Err != nil || n <= 0 {
		r.Err = ErrMalformed
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.B)
	if r.Err != nil || n <= 0 {
		r.Err = ErrMalformed
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Bytes reads a length-prefixed byte string (aliasing the input).
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.Err != nil || n > uint64(len(r.B)) {
		r.Err = ErrMalformed
		return nil
	}
	v := r.B[:n:n]
	r.B = r.B[n:]
	return v
}

// Str reads a length-prefixed string.
func (r *Reader) Str() string { return string(r.Bytes()) }
