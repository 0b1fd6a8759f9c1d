package tandem_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/tandemdb/tandem"
)

// Parsers of client input must never panic, and must reject with
// CodeInvalid and a message. Seeds live here so `go test` replays them in
// CI; `go test -fuzz FuzzX .` explores further.

func mustBeInvalid(t *testing.T, err error) {
	t.Helper()
	if tandem.ErrorCode(err) != tandem.CodeInvalid || tandem.ErrorMessage(err) == "" {
		t.Fatalf("rejection %v is not an invalid error with a message", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","n":1}`, `{}`, `[]`, `null`, `{"_version":3,"x":true}`, `{"_x":1}`,
		`{"a":{"b":[1,2,{"c":null}]}}`, `{"n":1e400}`, `{"s":"\ud800"}`, `{"a":1}{"b":2}`, `{"":1}`,
		`{"n":-9223372036854775809}`, "{\"t\":\"2026-01-02T15:04:05Z\"}", `{`,
	} {
		f.Add([]byte(s))
	}
	schema := &tandem.TableSchema{Name: "t", PrimaryKey: "id", Attributes: map[string]tandem.AttrType{
		"id": tandem.TypeString, "n": tandem.TypeInt, "f": tandem.TypeFloat, "b": tandem.TypeBool,
		"t": tandem.TypeTime, "j": tandem.TypeJSON, "s": tandem.TypeString,
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := tandem.DecodeRecord(data)
		if err != nil {
			mustBeInvalid(t, err)
			return
		}
		for k := range rec {
			if k == "" || strings.HasPrefix(k, "_") {
				t.Fatalf("accepted reserved or empty attribute %q", k)
			}
		}
		if _, err := schema.Check(rec); err != nil {
			mustBeInvalid(t, err)
		}
	})
}

func FuzzTableSchema(f *testing.F) {
	for _, s := range []string{
		`{"primary_key":"id","attributes":{"id":"string","n":"int"},"indexes":["n"]}`,
		`{"attributes":{"j":"json"},"indexes":["j"]}`, `{"indexes":["nope"]}`,
		`{"primary_key":"f","attributes":{"f":"float"}}`, `{"attributes":{"_x":"int"}}`, `{"attributes":{"a":"blob"}}`,
	} {
		f.Add("accounts", s)
	}
	f.Fuzz(func(t *testing.T, name, body string) {
		var sc tandem.TableSchema
		if json.Unmarshal([]byte(body), &sc) != nil {
			return
		}
		sc.Name = name
		if err := sc.Validate(); err != nil {
			mustBeInvalid(t, err)
			return
		}
		// A valid schema stays valid, unchanged, when validated again (the
		// state machine validates what the API already validated).
		again := sc
		if err := again.Validate(); err != nil {
			t.Fatalf("valid schema %+v became invalid: %v", sc, err)
		}
		for _, ix := range sc.Indexes {
			if typ := sc.Attributes[ix]; typ == "" || typ == tandem.TypeJSON || ix == sc.PrimaryKey {
				t.Fatalf("accepted index %q of type %q", ix, typ)
			}
		}
	})
}

func FuzzTxBody(f *testing.F) {
	for _, s := range []string{
		`{"ops":[{"op":"insert","table":"t","record":{"id":"a"}}]}`,
		`{"conditions":[{"if":"version","table":"t","key":"a","version":3}],"ops":[{"op":"delete","table":"t","key":"a"}]}`,
		`{"ops":[]}`, `{"ops":[{"op":"patch","table":"t","record":{}}]}`, `{"ops":[{"op":"smash","table":"t"}]}`,
		`{"conditions":[{"if":"maybe","table":"t","key":"a"}],"ops":[{"op":"delete","table":"t","key":"a"}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var tx tandem.Tx
		if json.Unmarshal([]byte(body), &tx) != nil {
			return
		}
		if err := tx.Validate(); err != nil {
			mustBeInvalid(t, err)
			return
		}
		// Whatever validates must survive the log encoding unchanged in
		// shape: same number of ops and conditions after a round trip.
		data, err := tandem.EncodeEntry(&tandem.Entry{Commands: []tandem.Command{{Type: tandem.CmdTx, Tx: &tx}}})
		if err != nil {
			t.Fatalf("valid tx does not encode: %v", err)
		}
		e, err := tandem.DecodeEntry(data)
		if err != nil {
			t.Fatalf("encoded tx does not decode: %v", err)
		}
		got := e.Commands[0].Tx
		if len(got.Ops) != len(tx.Ops) || len(got.Conditions) != len(tx.Conditions) {
			t.Fatalf("round trip changed the tx: %+v -> %+v", tx, got)
		}
	})
}

// FuzzValidateName checks the hand-written name check against the
// regular expression it replaced.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "A9", "a_b-c", "", "9a", "_a", "-a", "a b", "a.b", "é", "aé", "Z-", "a\x00"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	f.Fuzz(func(t *testing.T, name string) {
		err := tandem.ValidateName("table", name)
		want := re.MatchString(name) && len(name) <= tandem.MaxNameLen
		if (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v; the expression says valid=%v", name, err, want)
		}
		if err != nil {
			mustBeInvalid(t, err)
		}
	})
}
