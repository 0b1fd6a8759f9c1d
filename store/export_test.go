package store

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// SetSortLimit lowers MaxSortRows for s, for tests.
func SetSortLimit(s *Store, n int) { s.sortLimit = n }

// Dump returns every key and value of the store in a readable form, one
// per line, for tests.
func Dump(s *Store) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var sb strings.Builder
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err.Error()
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		v, _ := it.ValueAndErr()
		sb.WriteString(dumpPair(it.Key(), v))
		sb.WriteByte('\n')
	}
	return sb.String()
}

func dumpPair(k, v []byte) string {
	switch {
	case string(k) == keyApplied:
		st, err := decodeApplied(v)
		if err != nil {
			return "m/applied " + err.Error()
		}
		return fmt.Sprintf("m/applied %d %s", st.index, hex.EncodeToString(st.hash[:4]))
	case strings.HasPrefix(string(k), prefixRecord):
		table, rest, _ := strings.Cut(string(k[len(prefixRecord):]), "\x00")
		version, js, _ := splitStored(v)
		return fmt.Sprintf("r/%s/%s v%d %s", table, dumpValues([]byte(rest)), version, js)
	case strings.HasPrefix(string(k), prefixIndex):
		parts := strings.SplitN(string(k[len(prefixIndex):]), "\x00", 3)
		if len(parts) != 3 {
			return fmt.Sprintf("%q (bad index key)", k)
		}
		return fmt.Sprintf("i/%s/%s/%s", parts[0], parts[1], dumpValues([]byte(parts[2])))
	case strings.HasPrefix(string(k), prefixWasm), strings.HasPrefix(string(k), prefixEvent):
		return fmt.Sprintf("%q %q", k, v)
	}
	return fmt.Sprintf("%s %s", k, v)
}

// dumpValues renders a sequence of encoded values separated by "/".
func dumpValues(b []byte) string {
	var parts []string
	for len(b) > 0 {
		v, rest, err := decodeValue(b)
		if err != nil {
			return fmt.Sprintf("%q (bad encoding)", b)
		}
		b = rest
		switch v := v.(type) {
		case nil:
			parts = append(parts, "null")
		case string:
			parts = append(parts, fmt.Sprintf("%q", v))
		case time.Time:
			parts = append(parts, v.Format(time.RFC3339Nano))
		default:
			parts = append(parts, fmt.Sprint(v))
		}
	}
	return strings.Join(parts, "/")
}
