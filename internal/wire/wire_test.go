package wire_test

import (
	"testing"

	"github.com/tandemdb/tandem/internal/wire"
)

func TestRoundTrip(t *testing.T) {
	b := wire.AppendRequest(nil, wire.OpPatch, "accounts", "alice", `{"balance":1}`)
	r := wire.Reader{B: b}
	if op, x, y, z := r.Byte(), r.Str(), r.Str(), r.Str(); op != wire.OpPatch || x != "accounts" || y != "alice" || z != `{"balance":1}` || r.Err != nil || len(r.B) != 0 {
		t.Fatalf("got %d %q %q %q, err %v, rest %q", op, x, y, z, r.Err, r.B)
	}
}

// FuzzReader: guests send the host arbitrary bytes; decoding must never
// panic, and every read past the end is an error.
func FuzzReader(f *testing.F) {
	f.Add(wire.AppendRequest(nil, wire.OpGet, "t", "k", ""))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := wire.Reader{B: data}
		r.Byte()
		r.Str()
		r.Varint()
		_ = r.Bytes()
		if r.Err == nil && len(r.B) > len(data) {
			t.Fatal("reader grew")
		}
	})
}
