package tandem_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tandemdb/tandem"
)

// stdlibParse is how records were decoded before ParseJSON: the reference
// every release must agree with (see recordjson.go).
func stdlibParse(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errTrailing
	}
	return v, nil
}

var errTrailing = json.Unmarshal([]byte("x"), new(any))

// stdlibCanonical is how stored records were encoded before
// AppendCanonicalJSON.
func stdlibCanonical(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func checkSameAsStdlib(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := stdlibParse(data)
	got, err := tandem.ParseJSON(data)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%.200q: ParseJSON error %v, encoding/json error %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%.200q: ParseJSON gave %#v, encoding/json %#v", data, got, want)
	}
	enc, err := tandem.AppendCanonicalJSON([]byte("prefix"), got)
	if err != nil {
		t.Fatalf("%.200q: AppendCanonicalJSON: %v", data, err)
	}
	if w := append([]byte("prefix"), stdlibCanonical(want)...); !bytes.Equal(enc, w) {
		t.Fatalf("%.200q: canonical %q, encoding/json %q", data, enc, w)
	}
}

// FuzzRecordJSONMatchesStdlib: every node, of every release, must accept
// the same records and store the same bytes for them.
func FuzzRecordJSONMatchesStdlib(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, "{\"a\":\"\xff\xfe\"}", `{"a":[1,{"b":"\u2028<>&"}]}`, `{"a":1e5,"b":-0.5E-3,"c":-0}`,
		`{"\u00e9":1,"e":2,"Z":3}`, "{\"a\":\"\x01\x7f\"}", `{"a":"\ud83d\ude00\ud800"}`, `{"a":1} x`,
		`{"a":1}}`, `{"a":1}]x`, `{"a":1}{}`, `{"a":1,"a":2}`, `{"a":01}`, `{"a":1,}`, ` [1] `, `"s"`,
		`nul`, `{"a":tru}`, `{"a":1e400}`, `{"a":"\/\b\f"}`, `{"a":"\"[{"}`, `{"a":"\\"}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkSameAsStdlib(t, data) })
}

// TestRecordJSONDepth: encoding/json refuses more than 10000 nested arrays
// and objects; ParseJSON must draw the line at the same place (and not
// spend minutes on deeper input, as segmentio/encoding alone would).
func TestRecordJSONDepth(t *testing.T) {
	nest := func(n int, open, close string) []byte {
		return []byte(`{"a":` + strings.Repeat(open, n-1) + strings.Repeat(close, n-1) + `}`)
	}
	for _, n := range []int{9999, 10000, 10001, 10002} {
		checkSameAsStdlib(t, nest(n, "[", "]"))
		checkSameAsStdlib(t, []byte(`{"a":`+strings.Repeat(`{"b":`, n-1)+"1"+strings.Repeat("}", n-1)+`}`))
	}
	if _, err := tandem.ParseJSON(nest(10000, "[", "]")); err != nil {
		t.Fatalf("depth 10000 refused: %v", err)
	}
	if _, err := tandem.ParseJSON(nest(10001, "[", "]")); err == nil {
		t.Fatal("depth 10001 accepted")
	}
	// A deep value after the first one is never parsed, by either.
	checkSameAsStdlib(t, append([]byte(`{"a":1}]`), nest(20000, "[", "]")...))
	if _, err := tandem.ParseJSON(nest(200000, "[", "]")); err == nil {
		t.Fatal("depth 200000 accepted")
	}
	// Brackets inside strings do not count.
	checkSameAsStdlib(t, []byte(`{"a":"`+strings.Repeat("[", 20000)+`"}`))
}
