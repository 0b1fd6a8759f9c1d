package store

import (
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"

	"github.com/tandemdb/tandem"
)

// A stored record value is the record's version (8 bytes, big-endian)
// followed by its canonical JSON: the tandem.Record re-marshalled by
// encoding/json (keys sorted, numbers as written, no HTML escaping) without
// the _version attribute (tandem.AppendCanonicalJSON, byte for byte what
// encoding/json writes).
const versionLen = 8

// encodeStored returns the stored value of rec written at version.
func encodeStored(version uint64, rec tandem.Record) ([]byte, error) {
	b := make([]byte, versionLen, versionLen+128)
	binary.BigEndian.PutUint64(b, version)
	b, err := tandem.AppendCanonicalJSON(b, rec)
	if err != nil {
		return nil, tandem.Errorf(tandem.CodeInvalid, "record cannot be encoded: %v", err)
	}
	return b, nil
}

// splitStored splits a stored value into version and JSON.
func splitStored(val []byte) (uint64, []byte, error) {
	if len(val) < versionLen+2 {
		return 0, nil, errBadRecord
	}
	return binary.BigEndian.Uint64(val), val[versionLen:], nil
}

// decodeJSON decodes canonical record JSON.
func decodeJSON(js []byte) (tandem.Record, error) {
	v, err := tandem.ParseJSON(js)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errBadRecord
	}
	return tandem.Record(m), nil
}

// appendVersioned appends the record JSON js with "_version": version added
// as its first attribute, the form in which records leave the store.
func appendVersioned(b []byte, version uint64, js []byte) []byte {
	b = append(b, `{"_version":`...)
	b = strconv.AppendUint(b, version, 10)
	if len(js) > 2 { // not "{}"
		b = append(b, ',')
	}
	return append(b, js[1:]...)
}

// appendProjected is appendVersioned keeping only the attributes in sel,
// which is sorted and includes the primary key.
func appendProjected(b []byte, version uint64, js []byte, sel []string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, err
	}
	b = append(b, `{"_version":`...)
	b = strconv.AppendUint(b, version, 10)
	for _, name := range sel {
		raw, ok := m[name]
		if !ok {
			continue
		}
		// Attribute names are validated identifiers: no escaping needed.
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = append(b, raw...)
	}
	return append(b, '}'), nil
}

// appendAttr appends the order-preserving encoding of v, the value of an
// attribute of declared type t ("" if undeclared), or nil if absent. Values
// of undeclared (and json) attributes are encoded by their JSON kind, all
// numbers as float64.
func appendAttr(b []byte, t tandem.AttrType, v any) []byte {
	if v == nil {
		return appendNull(b)
	}
	switch t {
	case tandem.TypeInt:
		if n, ok := v.(json.Number); ok {
			if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				return appendInt(b, i)
			}
		}
	case tandem.TypeTime:
		if s, ok := v.(string); ok {
			if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return appendTime(b, tm)
			}
		}
	}
	switch v := v.(type) {
	case bool:
		return appendBool(b, v)
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return appendJSONText(b, []byte(v))
		}
		return appendFloat(b, f)
	case string:
		return appendString(b, v)
	default:
		js, err := json.Marshal(v)
		if err != nil {
			return appendNull(b)
		}
		return appendJSONText(b, js)
	}
}

// encodePK returns the encoding of a canonical primary key string, which
// has been checked with tandem.ValidateKey.
func encodePK(sc *tandem.TableSchema, key string) []byte {
	return appendPK(make([]byte, 0, len(key)+3), sc, key)
}

// appendPK appends the encoding of a canonical primary key string.
func appendPK(b []byte, sc *tandem.TableSchema, key string) []byte {
	if sc.KeyType() == tandem.TypeInt {
		i, _ := strconv.ParseInt(key, 10, 64)
		return appendInt(b, i)
	}
	return appendString(b, key)
}
