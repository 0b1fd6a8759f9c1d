package tandem

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// AttrType is the declared type of a table attribute.
type AttrType string

// Attribute types. A declared attribute is type-checked on every write;
// undeclared attributes are stored as given.
const (
	TypeString AttrType = "string"
	TypeInt    AttrType = "int"   // a JSON number with no fraction, within int64
	TypeFloat  AttrType = "float" // any JSON number
	TypeBool   AttrType = "bool"
	TypeTime   AttrType = "time" // an RFC 3339 string
	TypeJSON   AttrType = "json" // any JSON value; not indexable
)

// Valid reports whether t is a known type.
func (t AttrType) Valid() bool {
	switch t {
	case TypeString, TypeInt, TypeFloat, TypeBool, TypeTime, TypeJSON:
		return true
	}
	return false
}

// Limits on names and shapes. They keep keys short and error messages sane.
const (
	MaxNameLen       = 64
	MaxAttributes    = 256
	MaxIndexes       = 32
	MaxKeyLen        = 512 // bytes of a primary key value
	VersionAttribute = "_version"
)

// ValidateName checks a table or attribute name: a letter followed by
// letters, digits, '_' or '-', at most MaxNameLen bytes. Names starting with
// '_' are reserved for Tandem.
func ValidateName(kind, name string) error {
	if name == "" {
		return Errorf(CodeInvalid, "%s name is empty", kind)
	}
	if len(name) > MaxNameLen {
		return Errorf(CodeInvalid, "%s name %.20q... is longer than %d bytes", kind, name, MaxNameLen)
	}
	if !validName(name) {
		return Errorf(CodeInvalid, "%s name %q must start with a letter and contain only letters, digits, '_' and '-'", kind, name)
	}
	return nil
}

// validName reports whether name matches ^[A-Za-z][A-Za-z0-9_-]*$. It is
// written out because every applied transaction checks its table names,
// and the regular expression was 1% of a node's CPU under a write load.
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return name != ""
}

// TableSchema describes a table. PrimaryKey names the attribute whose value
// identifies a record; it must be declared string or int, or be undeclared
// (then it is a string).
type TableSchema struct {
	Name       string              `json:"name"`
	PrimaryKey string              `json:"primary_key"`
	Attributes map[string]AttrType `json:"attributes,omitempty"`
	Indexes    []string            `json:"indexes,omitempty"`
	// Version is the log index of the entry that last created or changed the
	// table. Set by the state machine; ignored on input.
	Version uint64 `json:"version,omitempty"`
}

// KeyType returns the type of the primary key: TypeString or TypeInt.
func (s *TableSchema) KeyType() AttrType {
	if t := s.Attributes[s.PrimaryKey]; t == TypeInt {
		return TypeInt
	}
	return TypeString
}

// Validate checks the schema on its own and fills defaults (primary key
// "id"). It returns a CodeInvalid error naming the first problem.
func (s *TableSchema) Validate() error {
	if err := ValidateName("table", s.Name); err != nil {
		return err
	}
	if s.PrimaryKey == "" {
		s.PrimaryKey = "id"
	}
	if err := ValidateName("primary key", s.PrimaryKey); err != nil {
		return err
	}
	if len(s.Attributes) > MaxAttributes {
		return Errorf(CodeInvalid, "table %q declares %d attributes; the limit is %d", s.Name, len(s.Attributes), MaxAttributes)
	}
	for name, t := range s.Attributes {
		if err := ValidateName("attribute", name); err != nil {
			return err
		}
		if !t.Valid() {
			return Errorf(CodeInvalid, "attribute %q has unknown type %q (want one of string, int, float, bool, time, json)", name, t)
		}
	}
	if t, ok := s.Attributes[s.PrimaryKey]; ok && t != TypeString && t != TypeInt {
		return Errorf(CodeInvalid, "primary key %q must be of type string or int, not %s", s.PrimaryKey, t)
	}
	if len(s.Indexes) > MaxIndexes {
		return Errorf(CodeInvalid, "table %q declares %d indexes; the limit is %d", s.Name, len(s.Indexes), MaxIndexes)
	}
	seen := make(map[string]bool, len(s.Indexes))
	for _, ix := range s.Indexes {
		t, ok := s.Attributes[ix]
		switch {
		case ix == s.PrimaryKey:
			return Errorf(CodeInvalid, "index %q: the primary key is always indexed", ix)
		case !ok:
			return Errorf(CodeInvalid, "index %q: not a declared attribute (declare it in \"attributes\" with a type)", ix)
		case t == TypeJSON:
			return Errorf(CodeInvalid, "index %q: attributes of type json cannot be indexed", ix)
		case seen[ix]:
			return Errorf(CodeInvalid, "index %q is listed twice", ix)
		}
		seen[ix] = true
	}
	slices.Sort(s.Indexes)
	return nil
}

// HasIndex reports whether attr has a secondary index.
func (s *TableSchema) HasIndex(attr string) bool { return slices.Contains(s.Indexes, attr) }

// Record is a decoded JSON object. Numbers are json.Number so that int64
// values survive unchanged.
type Record map[string]any

// DecodeRecord parses a JSON object. It rejects anything that is not a
// single object, and attribute names starting with '_' other than _version
// (which is dropped: versions travel in ETag and conditions).
func DecodeRecord(data []byte) (Record, error) {
	v, err := ParseJSON(data)
	if err != nil {
		return nil, Errorf(CodeInvalid, "record is not valid JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, Errorf(CodeInvalid, "record must be a JSON object, not %s", jsonKind(v))
	}
	for k := range m {
		if k == VersionAttribute {
			delete(m, k)
			continue
		}
		if len(k) > 0 && k[0] == '_' {
			return nil, Errorf(CodeInvalid, "attribute %q: names starting with '_' are reserved", k)
		}
		if k == "" {
			return nil, Errorf(CodeInvalid, "attribute name is empty")
		}
	}
	return Record(m), nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// CheckValue checks that v, a value decoded by DecodeRecord, has type t.
// Null is accepted for every type: it means "no value" and is not indexed.
func CheckValue(t AttrType, v any) error {
	if v == nil {
		return nil
	}
	switch t {
	case TypeString:
		if _, ok := v.(string); ok {
			return nil
		}
	case TypeInt:
		if n, ok := v.(json.Number); ok {
			if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				return nil
			}
			return fmt.Errorf("want an integer within int64, got %s", n)
		}
	case TypeFloat:
		if n, ok := v.(json.Number); ok {
			f, err := strconv.ParseFloat(string(n), 64)
			if err == nil && !math.IsInf(f, 0) {
				return nil
			}
			return fmt.Errorf("want a finite number, got %s", n)
		}
	case TypeBool:
		if _, ok := v.(bool); ok {
			return nil
		}
	case TypeTime:
		if s, ok := v.(string); ok {
			if _, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return nil
			}
			return fmt.Errorf("want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", s)
		}
	case TypeJSON:
		return nil
	}
	return fmt.Errorf("want %s, got %s", t, jsonKind(v))
}

// Check type-checks rec against the schema's declared attributes and
// returns its primary key in canonical string form.
func (s *TableSchema) Check(rec Record) (key string, err error) {
	for name, v := range rec {
		if t, ok := s.Attributes[name]; ok {
			if err := CheckValue(t, v); err != nil {
				return "", Errorf(CodeInvalid, "table %q, attribute %q: %v", s.Name, name, err)
			}
		}
	}
	pk, ok := rec[s.PrimaryKey]
	if !ok || pk == nil {
		return "", Errorf(CodeInvalid, "table %q: record has no primary key attribute %q", s.Name, s.PrimaryKey)
	}
	return s.KeyString(pk)
}

// KeyString returns the canonical string form of a primary key value.
func (s *TableSchema) KeyString(pk any) (string, error) {
	var key string
	switch s.KeyType() {
	case TypeInt:
		n, ok := pk.(json.Number)
		if !ok {
			return "", Errorf(CodeInvalid, "table %q: primary key %q must be an integer", s.Name, s.PrimaryKey)
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return "", Errorf(CodeInvalid, "table %q: primary key %q must be an integer within int64, got %s", s.Name, s.PrimaryKey, n)
		}
		key = strconv.FormatInt(i, 10)
	default:
		str, ok := pk.(string)
		if !ok {
			return "", Errorf(CodeInvalid, "table %q: primary key %q must be a string, got %s", s.Name, s.PrimaryKey, jsonKind(pk))
		}
		key = str
	}
	return key, ValidateKey(s, key)
}

// ValidateKey checks a primary key given as a string (from a URL path).
func ValidateKey(s *TableSchema, key string) error {
	if key == "" {
		return Errorf(CodeInvalid, "table %q: primary key is empty", s.Name)
	}
	if len(key) > MaxKeyLen {
		return Errorf(CodeInvalid, "table %q: primary key is longer than %d bytes", s.Name, MaxKeyLen)
	}
	if s.KeyType() == TypeInt {
		i, err := strconv.ParseInt(key, 10, 64)
		if err != nil || strconv.FormatInt(i, 10) != key {
			return Errorf(CodeInvalid, "table %q: primary key %q is not an integer in canonical form", s.Name, key)
		}
	}
	return nil
}

// KeyValue returns the JSON value of a canonical primary key string, used to
// fill the primary key attribute of a record written by key.
func (s *TableSchema) KeyValue(key string) any {
	if s.KeyType() == TypeInt {
		return json.Number(key)
	}
	return key
}

// Patch merges changes into rec, the record with primary key key: a null
// value removes an attribute, and the primary key may be repeated but
// neither removed nor changed. The result is checked against the schema.
func (s *TableSchema) Patch(key string, rec, changes Record) error {
	for k, v := range changes {
		if k == s.PrimaryKey {
			if v == nil {
				return Errorf(CodeInvalid, "table %q: the primary key %q cannot be removed", s.Name, k)
			}
			if ks, err := s.KeyString(v); err != nil || ks != key {
				return Errorf(CodeInvalid, "table %q: the primary key %q cannot change", s.Name, k)
			}
		}
		if v == nil {
			delete(rec, k)
		} else {
			rec[k] = v
		}
	}
	_, err := s.Check(rec)
	return err
}
