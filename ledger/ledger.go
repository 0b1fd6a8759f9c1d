package ledger

import (
	"crypto/sha256"
	"encoding/binary"
)

// Next returns the chain hash after applying the entry data at index, given
// the hash prev of everything before it. The hash before the first entry
// (genesis) is the zero value.
func Next(prev [32]byte, index uint64, data []byte) [32]byte {
	h := sha256.New()
	var ix [8]byte
	binary.BigEndian.PutUint64(ix[:], index)
	h.Write(prev[:])
	h.Write(ix[:])
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
