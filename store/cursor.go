package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"

	"github.com/tandemdb/tandem"
)

// A cursor is base64url (unpadded) of:
//
//	byte 1 (format) | 8-byte query fingerprint | uvarint n | n bytes sort value | primary key
//
// where the sort value and primary key are those of the last row returned,
// in the order-preserving encoding. The fingerprint covers the table, sort,
// direction and filters, so a cursor is rejected by any other query.
const (
	cursorFormat = 1
	fpLen        = 8
)

// position is a row's place in a query's order.
type position struct {
	sort []byte // nil when ordering by primary key
	pk   []byte
}

// fingerprint hashes what a cursor depends on.
func fingerprint(table, sortAttr string, desc bool, filters []tandem.Filter, or [][]tandem.Filter) [fpLen]byte {
	h := sha256.New()
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	list := func(fs []tandem.Filter) {
		b = binary.AppendUvarint(b, uint64(len(fs)))
		for _, f := range fs {
			str(f.Attr)
			str(string(f.Op))
			b = binary.AppendUvarint(b, uint64(len(f.Values)))
			for _, v := range f.Values {
				str(v)
			}
		}
		h.Write(b)
		b = b[:0]
	}
	str(table)
	str(sortAttr)
	if desc {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	list(filters)
	for _, g := range or {
		list(g)
	}
	var fp [fpLen]byte
	copy(fp[:], h.Sum(nil))
	return fp
}

func encodeCursor(fp [fpLen]byte, pos position) string {
	b := make([]byte, 0, 1+fpLen+2+len(pos.sort)+len(pos.pk))
	b = append(b, cursorFormat)
	b = append(b, fp[:]...)
	b = binary.AppendUvarint(b, uint64(len(pos.sort)))
	b = append(b, pos.sort...)
	b = append(b, pos.pk...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor decodes a cursor of the query with fingerprint fp. hasSort
// tells whether the query sorts by an attribute other than the key.
func decodeCursor(s string, fp [fpLen]byte, hasSort bool) (position, error) {
	bad := tandem.Errorf(tandem.CodeInvalid, "cursor is malformed")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1+fpLen+1 || b[0] != cursorFormat {
		return position{}, bad
	}
	if !bytes.Equal(b[1:1+fpLen], fp[:]) {
		return position{}, tandem.Errorf(tandem.CodeInvalid, "cursor belongs to a different query (table, filters and sort must not change between pages)")
	}
	b = b[1+fpLen:]
	n, m := binary.Uvarint(b)
	if m <= 0 || n > uint64(len(b)-m) {
		return position{}, bad
	}
	b = b[m:]
	pos := position{pk: b[n:]}
	if n > 0 {
		pos.sort = b[:n]
	}
	if hasSort != (pos.sort != nil) || !wellFormed(pos.sort) || !wellFormed(pos.pk) || len(pos.pk) == 0 {
		return position{}, bad
	}
	return pos, nil
}

// wellFormed reports whether b is empty or exactly one encoded value.
func wellFormed(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	n, err := valueLen(b)
	return err == nil && n == len(b)
}

// comparePos orders two positions: by sort value, then primary key.
func comparePos(a, b position) int {
	if c := bytes.Compare(a.sort, b.sort); c != 0 {
		return c
	}
	return bytes.Compare(a.pk, b.pk)
}
