package multiplex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Request is one request frame.
type Request struct {
	ID     uint64
	Method string
	Target string // path and query, as in an HTTP request line
	Header []Field
	Body   []byte
}

// Response is one response frame.
type Response struct {
	ID     uint64
	Status int
	Header []Field
	Body   []byte
}

// Field is one header field. A name may repeat.
type Field struct{ Name, Value string }

// FeaturesHeader names, in an upgrade request and in its answer, the
// optional parts of the protocol that side takes part in, as a
// comma-separated list. A feature is used on a connection only when both
// named it, so either end may be of an older release.
const FeaturesHeader = "Tandem-Multiplex"

// FeatureCancel: the client may send cancel frames (AppendCancel), and the
// server then ends the named request's context and sends no response for
// it.
const FeatureCancel = "cancel"

// hasFeature reports whether h's FeaturesHeader names feature.
func hasFeature(h http.Header, feature string) bool {
	for _, v := range h.Values(FeaturesHeader) {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), feature) {
				return true
			}
		}
	}
	return false
}

// maxFields bounds the header fields of one frame, as http.Server's
// MaxHeaderBytes bounds a request's.
const maxFields = 100

// AppendRequest appends r's frame to b.
func AppendRequest(b []byte, r *Request) []byte {
	b = binary.AppendUvarint(b, r.ID)
	b = appendString(b, r.Method)
	b = appendString(b, r.Target)
	b = appendFields(b, r.Header)
	return appendBytes(b, r.Body)
}

// AppendResponse appends r's frame to b.
func AppendResponse(b []byte, r *Response) []byte {
	b = binary.AppendUvarint(b, r.ID)
	b = binary.AppendUvarint(b, uint64(r.Status))
	b = appendFields(b, r.Header)
	return appendBytes(b, r.Body)
}

// AppendCancel appends to b a cancel frame for the request with id: a
// request frame with an empty method and target, no header fields and no
// body. Send it only on a connection whose server named FeatureCancel in
// its FeaturesHeader; on others it is a malformed request.
func AppendCancel(b []byte, id uint64) []byte {
	return AppendRequest(b, &Request{ID: id})
}

// IsCancel reports whether r is a cancel frame (AppendCancel).
func (r *Request) IsCancel() bool {
	return r.Method == "" && r.Target == "" && len(r.Header) == 0 && len(r.Body) == 0
}

// ReadRequest decodes the first request frame of b and returns the rest.
// Strings and Body point into b.
func ReadRequest(b []byte) (Request, []byte, error) {
	var r Request
	d := decoder{b: b}
	r.ID = d.uvarint("id")
	r.Method = d.string("method")
	r.Target = d.string("target")
	r.Header = d.fields()
	r.Body = d.bytes("body")
	if d.err == nil && r.ID == 0 {
		d.err = errors.New("multiplex: request id 0")
	}
	return r, d.b, d.err
}

// ReadResponse decodes the first response frame of b and returns the rest.
func ReadResponse(b []byte) (Response, []byte, error) {
	var r Response
	d := decoder{b: b}
	r.ID = d.uvarint("id")
	status := d.uvarint("status")
	r.Header = d.fields()
	r.Body = d.bytes("body")
	if d.err == nil && (status < 100 || status > 999) {
		d.err = fmt.Errorf("multiplex: response status %d", status)
	}
	r.Status = int(status)
	return r, d.b, d.err
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendBytes(b, p []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(p))), p...)
}

func appendFields(b []byte, fs []Field) []byte {
	b = binary.AppendUvarint(b, uint64(len(fs)))
	for _, f := range fs {
		b = appendString(appendString(b, f.Name), f.Value)
	}
	return b
}

// decoder reads fields until the first error, which sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("multiplex: bad frame: %s is not a varint", what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("multiplex: bad frame: %s of %d bytes, %d left", what, n, len(d.b))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string(what string) string { return string(d.bytes(what)) }

func (d *decoder) fields() []Field {
	n := d.uvarint("header count")
	if d.err != nil {
		return nil
	}
	if n > maxFields {
		d.err = fmt.Errorf("multiplex: bad frame: %d header fields, at most %d", n, maxFields)
		return nil
	}
	fs := make([]Field, 0, n)
	for range n {
		f := Field{Name: d.string("header name"), Value: d.string("header value")}
		if d.err != nil {
			return nil
		}
		fs = append(fs, f)
	}
	return fs
}
