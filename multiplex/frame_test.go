package multiplex_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tandemdb/tandem/multiplex"
)

// sampleRequests covers the shapes a frame can take.
func sampleRequests() []multiplex.Request {
	return []multiplex.Request{
		{ID: 1, Method: "GET", Target: "/"},
		{ID: 2, Method: "POST", Target: "/tables/t/rows?limit=10", Body: []byte{0, 1, 0, 0xff, 0}},
		{ID: 300, Method: "PUT", Target: "/x", Header: []multiplex.Field{
			{Name: "X-A", Value: "1"},
			{Name: "X-A", Value: "2"},
			{Name: "Content-Type", Value: "application/json"},
			{Name: "", Value: ""},
		}, Body: []byte(`{"k":"v"}`)},
		{ID: 1<<64 - 1, Method: "DELETE", Target: "/" + strings.Repeat("long/", 1000) + "?q=" + strings.Repeat("z", 300)},
		{ID: 5, Method: "", Target: "", Body: bytes.Repeat([]byte{0}, 200)},
	}
}

func sampleResponses() []multiplex.Response {
	return []multiplex.Response{
		{ID: 1, Status: 200},
		{ID: 2, Status: 201, Header: []multiplex.Field{{Name: "ETag", Value: `"e"`}}, Body: []byte{0, 0, 0}},
		{ID: 300, Status: 100, Header: []multiplex.Field{
			{Name: "Set-Cookie", Value: "a=1"},
			{Name: "Set-Cookie", Value: "b=2"},
		}},
		{ID: 1<<64 - 1, Status: 999, Body: bytes.Repeat([]byte("body"), 5000)},
	}
}

// normalizeRequest makes nil and empty slices compare equal: the decoder
// returns empty, non-nil slices.
func normalizeRequest(r multiplex.Request) multiplex.Request {
	if len(r.Header) == 0 {
		r.Header = nil
	}
	if len(r.Body) == 0 {
		r.Body = nil
	}
	return r
}

func normalizeResponse(r multiplex.Response) multiplex.Response {
	if len(r.Header) == 0 {
		r.Header = nil
	}
	if len(r.Body) == 0 {
		r.Body = nil
	}
	return r
}

func TestRequestRoundTrip(t *testing.T) {
	want := sampleRequests()
	var buf []byte
	for i := range want {
		buf = multiplex.AppendRequest(buf, &want[i])
	}
	rest := buf
	for i, w := range want {
		var got multiplex.Request
		var err error
		got, rest, err = multiplex.ReadRequest(rest)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalizeRequest(got), normalizeRequest(w)) {
			t.Fatalf("frame %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left after the last frame", len(rest))
	}
}

func TestResponseRoundTrip(t *testing.T) {
	want := sampleResponses()
	var buf []byte
	for i := range want {
		buf = multiplex.AppendResponse(buf, &want[i])
	}
	rest := buf
	for i, w := range want {
		var got multiplex.Response
		var err error
		got, rest, err = multiplex.ReadResponse(rest)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(normalizeResponse(got), normalizeResponse(w)) {
			t.Fatalf("frame %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left after the last frame", len(rest))
	}
}

// TestReadTruncated cuts valid frames at every length: each prefix must
// fail to decode, without a panic.
func TestReadTruncated(t *testing.T) {
	for i, r := range sampleRequests() {
		b := multiplex.AppendRequest(nil, &r)
		for n := range len(b) {
			if _, _, err := multiplex.ReadRequest(b[:n]); err == nil {
				t.Fatalf("request %d cut to %d of %d bytes: no error", i, n, len(b))
			}
		}
	}
	for i, r := range sampleResponses() {
		b := multiplex.AppendResponse(nil, &r)
		for n := range len(b) {
			if _, _, err := multiplex.ReadResponse(b[:n]); err == nil {
				t.Fatalf("response %d cut to %d of %d bytes: no error", i, n, len(b))
			}
		}
	}
}

// frame builds a frame field by field: uint64 values are varints, strings
// are length-prefixed.
func frame(fields ...any) []byte {
	var b []byte
	for _, f := range fields {
		switch f := f.(type) {
		case uint64:
			b = binary.AppendUvarint(b, f)
		case string:
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		case []byte: // raw bytes
			b = append(b, f...)
		default:
			panic(fmt.Sprintf("frame: %T", f))
		}
	}
	return b
}

// headerFields returns n header fields in frame form.
func headerFields(n int) []any {
	fs := []any{uint64(n)}
	for i := range n {
		fs = append(fs, fmt.Sprintf("X-%d", i), "v")
	}
	return fs
}

func TestReadRequestErrors(t *testing.T) {
	withFields := func(n int) []byte {
		fs := append([]any{uint64(1), "GET", "/"}, headerFields(n)...)
		return frame(append(fs, "")...)
	}
	for _, tc := range []struct {
		name    string
		b       []byte
		wantErr string // "" means the frame is valid
	}{
		{"valid", frame(uint64(1), "GET", "/", uint64(0), ""), ""},
		{"id 0", frame(uint64(0), "GET", "/", uint64(0), ""), "id 0"},
		{"empty", nil, "id is not a varint"},
		{"id overflows", frame([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), "id is not a varint"},
		{"method longer than the rest", frame(uint64(1), uint64(10), []byte("GET")), "method of 10 bytes, 3 left"},
		{"target longer than the rest", frame(uint64(1), "GET", uint64(1<<40), []byte("/")), "target of 1099511627776 bytes, 1 left"},
		{"header value longer than the rest", frame(uint64(1), "GET", "/", uint64(1), "A", uint64(2), []byte("b")), "header value of 2 bytes, 1 left"},
		{"body longer than the rest", frame(uint64(1), "GET", "/", uint64(0), uint64(5), []byte("abcd")), "body of 5 bytes, 4 left"},
		{"huge body length", frame(uint64(1), "GET", "/", uint64(0), uint64(1<<64-1)), "body of 18446744073709551615 bytes, 0 left"},
		{"max fields", withFields(multiplex.MaxFields), ""},
		{"too many fields", withFields(multiplex.MaxFields + 1), "101 header fields, at most 100"},
		{"huge field count", frame(uint64(1), "GET", "/", uint64(1<<62)), "header fields, at most 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := multiplex.ReadRequest(tc.b)
			checkErr(t, err, tc.wantErr)
		})
	}
}

func TestReadResponseErrors(t *testing.T) {
	withFields := func(n int) []byte {
		fs := append([]any{uint64(1), uint64(200)}, headerFields(n)...)
		return frame(append(fs, "")...)
	}
	for _, tc := range []struct {
		name    string
		b       []byte
		wantErr string
	}{
		{"valid", frame(uint64(1), uint64(200), uint64(0), ""), ""},
		{"status 100", frame(uint64(1), uint64(100), uint64(0), ""), ""},
		{"status 999", frame(uint64(1), uint64(999), uint64(0), ""), ""},
		{"status 0", frame(uint64(1), uint64(0), uint64(0), ""), "response status 0"},
		{"status 99", frame(uint64(1), uint64(99), uint64(0), ""), "response status 99"},
		{"status 1000", frame(uint64(1), uint64(1000), uint64(0), ""), "response status 1000"},
		// int(status) would be negative: the range check must come first.
		{"status 2^64-1", frame(uint64(1), uint64(1<<64-1), uint64(0), ""), "response status 18446744073709551615"},
		{"empty", nil, "id is not a varint"},
		{"status missing", frame(uint64(1)), "status is not a varint"},
		{"body longer than the rest", frame(uint64(1), uint64(200), uint64(0), uint64(3), []byte("ab")), "body of 3 bytes, 2 left"},
		{"header name longer than the rest", frame(uint64(1), uint64(200), uint64(1), uint64(9)), "header name of 9 bytes, 0 left"},
		{"max fields", withFields(multiplex.MaxFields), ""},
		{"too many fields", withFields(multiplex.MaxFields + 1), "101 header fields, at most 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := multiplex.ReadResponse(tc.b)
			checkErr(t, err, tc.wantErr)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q, want one containing %q", err, want)
	}
}

// The rest after a frame is the next frame, untouched.
func TestReadLeavesRest(t *testing.T) {
	trailer := []byte{0xde, 0xad}
	b := append(multiplex.AppendRequest(nil, &multiplex.Request{ID: 7, Method: "GET", Target: "/"}), trailer...)
	if _, rest, err := multiplex.ReadRequest(b); err != nil || !bytes.Equal(rest, trailer) {
		t.Fatalf("ReadRequest: rest %x, err %v; want %x, nil", rest, err, trailer)
	}
	b = append(multiplex.AppendResponse(nil, &multiplex.Response{ID: 7, Status: 204}), trailer...)
	if _, rest, err := multiplex.ReadResponse(b); err != nil || !bytes.Equal(rest, trailer) {
		t.Fatalf("ReadResponse: rest %x, err %v; want %x, nil", rest, err, trailer)
	}
}

// small keeps seeds short: the fuzzer minimizes every new input, which is
// slow for the long frames of the round-trip tests.
func small[T any](frames []T, size func(T) int) []T {
	var out []T
	for _, fr := range frames {
		if size(fr) <= 64 {
			out = append(out, fr)
		}
	}
	return out
}

func FuzzReadRequest(f *testing.F) {
	var all []byte
	for _, r := range small(sampleRequests(), func(r multiplex.Request) int { return len(r.Target) + len(r.Body) }) {
		b := multiplex.AppendRequest(nil, &r)
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, rest, err := multiplex.ReadRequest(b)
		if err != nil {
			return
		}
		if len(rest) > len(b) {
			t.Fatalf("rest of %d bytes from %d", len(rest), len(b))
		}
		again := multiplex.AppendRequest(nil, &r)
		r2, rest2, err := multiplex.ReadRequest(again)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", r, err)
		}
		if len(rest2) != 0 {
			t.Fatalf("re-encoded frame leaves %d bytes", len(rest2))
		}
		if !reflect.DeepEqual(normalizeRequest(r), normalizeRequest(r2)) {
			t.Fatalf("re-encoding changed the frame:\n got %+v\nwant %+v", r2, r)
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	var all []byte
	for _, r := range small(sampleResponses(), func(r multiplex.Response) int { return len(r.Body) }) {
		b := multiplex.AppendResponse(nil, &r)
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, rest, err := multiplex.ReadResponse(b)
		if err != nil {
			return
		}
		if len(rest) > len(b) {
			t.Fatalf("rest of %d bytes from %d", len(rest), len(b))
		}
		again := multiplex.AppendResponse(nil, &r)
		r2, rest2, err := multiplex.ReadResponse(again)
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", r, err)
		}
		if len(rest2) != 0 {
			t.Fatalf("re-encoded frame leaves %d bytes", len(rest2))
		}
		if !reflect.DeepEqual(normalizeResponse(r), normalizeResponse(r2)) {
			t.Fatalf("re-encoding changed the frame:\n got %+v\nwant %+v", r2, r)
		}
	})
}

func TestCancelFrame(t *testing.T) {
	b := multiplex.AppendCancel([]byte("x"), 42)
	r, rest, err := multiplex.ReadRequest(b[1:])
	if err != nil || len(rest) != 0 {
		t.Fatalf("ReadRequest: %v, %d bytes left", err, len(rest))
	}
	if r.ID != 42 || !r.IsCancel() || r.Target != "" || len(r.Header) != 0 || len(r.Body) != 0 {
		t.Fatalf("cancel frame read as %+v", r)
	}
	for _, r := range []multiplex.Request{{ID: 1, Method: "GET", Target: "/"}, {ID: 1, Target: "/x"}, {ID: 1, Body: []byte("x")}} {
		if r.IsCancel() {
			t.Fatalf("%+v is a cancel frame", r)
		}
	}
}
