package ledger_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/tandemdb/tandem/ledger"
)

func TestNext(t *testing.T) {
	h1 := ledger.Next([32]byte{}, 1, []byte("a"))
	// SHA-256 of 32 zero bytes, index 1 big-endian, then "a".
	in := make([]byte, 0, 41)
	in = append(in, make([]byte, 32)...)
	in = append(in, 0, 0, 0, 0, 0, 0, 0, 1, 'a')
	if want := sha256.Sum256(in); h1 != want {
		t.Fatalf("Next = %x, want %x", h1, want)
	}

	tests := []struct {
		name  string
		prev  [32]byte
		index uint64
		data  string
	}{
		{"other index", [32]byte{}, 2, "a"},
		{"other data", [32]byte{}, 1, "b"},
		{"other prev", h1, 1, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if h := ledger.Next(tt.prev, tt.index, []byte(tt.data)); h == h1 {
				t.Fatalf("hash %s collides with the base case", hex.EncodeToString(h[:]))
			}
		})
	}
}
