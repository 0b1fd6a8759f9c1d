package store

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// Key prefixes. See doc.go for the layout.
const (
	prefixContract = "c/"
	prefixEvent    = "e/"
	prefixIndex    = "i/"
	prefixMeta     = "m/"
	prefixNode     = "n/"
	prefixRecord   = "r/"
	prefixSchema   = "s/"
	prefixWasm     = "w/"

	keyApplied   = prefixMeta + "applied"
	keyRestoring = prefixMeta + "restoring"
)

// recordPrefix returns the prefix of every record key of table.
func recordPrefix(table string) []byte {
	b := make([]byte, 0, len(prefixRecord)+len(table)+1+16)
	b = append(b, prefixRecord...)
	b = append(b, table...)
	return append(b, 0)
}

// recordKey returns the key of the record whose encoded primary key is pk.
func recordKey(table string, pk []byte) []byte {
	b := make([]byte, 0, len(prefixRecord)+len(table)+1+len(pk))
	b = append(b, prefixRecord...)
	b = append(b, table...)
	b = append(b, 0)
	return append(b, pk...)
}

// indexTablePrefix returns the prefix of every index entry of table.
func indexTablePrefix(table string) []byte {
	b := make([]byte, 0, len(prefixIndex)+len(table)+1)
	b = append(b, prefixIndex...)
	b = append(b, table...)
	return append(b, 0)
}

// indexPrefix returns the prefix of every entry of the index on attr.
func indexPrefix(table, attr string) []byte {
	b := make([]byte, 0, len(prefixIndex)+len(table)+len(attr)+2+16)
	b = append(b, prefixIndex...)
	b = append(b, table...)
	b = append(b, 0)
	b = append(b, attr...)
	return append(b, 0)
}

// indexKey returns the index entry of the record pk whose attribute value
// encodes as val.
func indexKey(prefix, val, pk []byte) []byte {
	b := make([]byte, 0, len(prefix)+len(val)+len(pk))
	b = append(b, prefix...)
	b = append(b, val...)
	return append(b, pk...)
}

func schemaKey(table string) []byte { return []byte(prefixSchema + table) }
func nodeKey(id string) []byte      { return []byte(prefixNode + id) }

// prefixEnd returns the smallest key greater than every key starting with
// p, or nil if there is none.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Type tags of the order-preserving value encoding. Values of different
// types order by tag; null sorts first.
const (
	tagNull   byte = 0x01
	tagBool   byte = 0x02 // then 0x00 or 0x01
	tagInt    byte = 0x03 // then 8 bytes: big-endian, sign bit flipped
	tagFloat  byte = 0x04 // then 8 bytes: IEEE 754 bits, flipped for order
	tagTime   byte = 0x05 // then 8 bytes seconds (as int) and 4 bytes nanoseconds
	tagString byte = 0x06 // then escaped bytes and a terminator
	tagJSON   byte = 0x07 // then canonical JSON text, escaped like a string
)

// String escaping: 0x00 becomes 0x00 0xff and the value ends with 0x00 0x01,
// so that a shorter string sorts first and the encoding is prefix-free
// (another value may follow it).
const (
	escByte   byte = 0x00
	escEsc    byte = 0xff
	escTerm   byte = 0x01
	intWidth       = 8
	timeWidth      = 12
)

var errBadEncoding = errors.New("store: malformed key encoding")

func appendNull(b []byte) []byte { return append(b, tagNull) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, tagBool, 1)
	}
	return append(b, tagBool, 0)
}

func appendInt(b []byte, v int64) []byte {
	b = append(b, tagInt)
	return binary.BigEndian.AppendUint64(b, uint64(v)^(1<<63))
}

func appendFloat(b []byte, f float64) []byte {
	if f == 0 {
		f = 0 // -0 and +0 are the same value
	}
	u := math.Float64bits(f)
	if u&(1<<63) != 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	b = append(b, tagFloat)
	return binary.BigEndian.AppendUint64(b, u)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, tagTime)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func appendString(b []byte, s string) []byte {
	b = append(b, tagString)
	return appendEscaped(b, s)
}

func appendJSONText(b []byte, s []byte) []byte {
	b = append(b, tagJSON)
	return appendEscaped(b, string(s))
}

// appendStringPrefix appends the encoding of every string starting with s,
// without the terminator: a key prefix for prefix scans.
func appendStringPrefix(b []byte, s string) []byte {
	b = append(b, tagString)
	b = appendEscaped(b, s)
	return b[:len(b)-2]
}

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == escByte {
			b = append(b, escByte, escEsc)
		} else {
			b = append(b, s[i])
		}
	}
	return append(b, escByte, escTerm)
}

// valueLen returns the length of the encoded value at the start of b.
func valueLen(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errBadEncoding
	}
	n := 0
	switch b[0] {
	case tagNull:
		n = 1
	case tagBool:
		n = 2
	case tagInt, tagFloat:
		n = 1 + intWidth
	case tagTime:
		n = 1 + timeWidth
	case tagString, tagJSON:
		for i := 1; i+1 < len(b); i++ {
			if b[i] != escByte {
				continue
			}
			switch b[i+1] {
			case escTerm:
				return i + 2, nil
			case escEsc:
				i++
			default:
				return 0, errBadEncoding
			}
		}
		return 0, errBadEncoding
	default:
		return 0, errBadEncoding
	}
	if len(b) < n {
		return 0, errBadEncoding
	}
	return n, nil
}

// decodeValue decodes the encoded value at the start of b, returning nil,
// bool, int64, float64, time.Time (UTC) or string (also for tagJSON), and
// the rest of b.
func decodeValue(b []byte) (any, []byte, error) {
	n, err := valueLen(b)
	if err != nil {
		return nil, nil, err
	}
	v, rest := b[:n], b[n:]
	switch v[0] {
	case tagNull:
		return nil, rest, nil
	case tagBool:
		return v[1] == 1, rest, nil
	case tagInt:
		return int64(binary.BigEndian.Uint64(v[1:]) ^ (1 << 63)), rest, nil
	case tagFloat:
		u := binary.BigEndian.Uint64(v[1:])
		if u&(1<<63) != 0 {
			u &^= 1 << 63
		} else {
			u = ^u
		}
		return math.Float64frombits(u), rest, nil
	case tagTime:
		sec := int64(binary.BigEndian.Uint64(v[1:]) ^ (1 << 63))
		nsec := int64(binary.BigEndian.Uint32(v[9:]))
		return time.Unix(sec, nsec).UTC(), rest, nil
	default:
		s := make([]byte, 0, n-3)
		for i := 1; i < n-2; i++ {
			s = append(s, v[i])
			if v[i] == escByte {
				i++
			}
		}
		return string(s), rest, nil
	}
}
