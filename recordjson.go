package tandem

import (
	"bytes"
	"fmt"

	segjson "github.com/segmentio/encoding/json"
)

// Record JSON is decoded on every node for every write it applies (and once
// more by the node that takes the request), and re-encoded in canonical
// form for storage. encoding/json did that in about 2.5 µs (decode) and
// 1.1 µs (encode) for a 256-byte record, ~12% of a node's CPU under write
// load; segmentio/encoding does the same in 0.4 and 0.5 µs.
//
// Every node must accept exactly the records every other node, and every
// earlier release, accepted, and store the same bytes: a difference would
// fork the replicated state. So these functions reproduce encoding/json's
// observable behaviour, which FuzzRecordJSONMatchesStdlib checks against
// encoding/json itself: the same inputs rejected (including more than
// maxJSONDepth nested arrays and objects, which segmentio does not limit),
// the same decoded values (numbers as json.Number, invalid UTF-8 as
// U+FFFD), the same canonical bytes (keys sorted, no HTML escaping).

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// ParseJSON decodes one JSON value with numbers as json.Number. Like
// encoding/json's Decoder followed by More, it accepts trailing data only
// if it is white space or starts with '}' or ']' (the behaviour the store
// has had since its first release, kept so that every release accepts the
// same records).
func ParseJSON(data []byte) (any, error) {
	if err := checkJSONDepth(data); err != nil {
		return nil, err
	}
	var v any
	rest, err := segjson.Parse(data, &v, segjson.UseNumber)
	if err != nil {
		return nil, err
	}
	if i := bytes.IndexFunc(rest, func(r rune) bool { return r != ' ' && r != '\t' && r != '\r' && r != '\n' }); i >= 0 && rest[i] != '}' && rest[i] != ']' {
		return nil, fmt.Errorf("invalid character %q after top-level value", rest[i])
	}
	return v, nil
}

// checkJSONDepth rejects data with more than maxJSONDepth open arrays and
// objects at once in the first top-level value, counting brackets outside
// strings. segmentio/encoding has no limit (and slows down badly on very
// deep input); encoding/json stops at this one. Trailing data is not
// counted (encoding/json never parses it), and malformed data passes: the
// parser rejects it.
func checkJSONDepth(data []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > maxJSONDepth {
				return fmt.Errorf("exceeded max depth: more than %d nested arrays and objects", maxJSONDepth)
			}
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return nil // the first top-level value ends here
			}
		}
	}
	return nil
}

// AppendCanonicalJSON appends the canonical encoding of v, a value built
// from ParseJSON's types (maps, slices, strings, json.Number, bools, nil):
// object keys sorted, nothing HTML-escaped, no trailing newline. It is
// byte-for-byte what encoding/json's Encoder with SetEscapeHTML(false)
// writes, minus the newline.
func AppendCanonicalJSON(b []byte, v any) ([]byte, error) {
	if r, ok := v.(Record); ok {
		v = map[string]any(r)
	}
	return segjson.Append(b, v, segjson.SortMapKeys)
}
