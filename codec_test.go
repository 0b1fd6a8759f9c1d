package tandem_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tandemdb/tandem"
)

func sampleEntries() []*tandem.Entry {
	v7, v0 := uint64(7), uint64(0)
	return []*tandem.Entry{
		{Time: 0},
		{Time: -5, Commands: []tandem.Command{}},
		{Time: 1700000000123456789, Commands: []tandem.Command{
			{Type: tandem.CmdTx, Tx: &tandem.Tx{
				Conditions: []tandem.Condition{
					{Kind: tandem.CondVersion, Table: "accounts", Key: "alice", Version: 12},
					{Kind: tandem.CondNotExists, Table: "t", Key: "k\x00\xff"},
					{Kind: tandem.CondExists, Table: "t", Key: "x"},
				},
				Ops: []tandem.Op{
					{Op: tandem.OpInsert, Table: "t", Key: "a", Record: json.RawMessage(`{"id":"a","n":1}`)},
					{Op: tandem.OpUpsert, Table: "t", Key: "b", Record: json.RawMessage(`{"v":"é"}`), IfVersion: &v7},
					{Op: tandem.OpPatch, Table: "t", Key: "c", Record: json.RawMessage(`{"n":null}`), IfVersion: &v0},
					{Op: tandem.OpDelete, Table: "t", Key: "d"},
				},
			}},
			{Type: tandem.CmdCreateTable, Table: &tandem.TableSchema{Name: "t", PrimaryKey: "id",
				Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}, Indexes: []string{"n"}}},
			{Type: tandem.CmdDropTable, Name: "old"},
			{Type: tandem.CmdSetNode, Node: &tandem.NodeInfo{ID: "n1", HTTPAddr: "127.0.0.1:7001", RaftAddr: "127.0.0.1:8001"}},
			{Type: tandem.CmdRemoveNode, Name: "n2"},
		}},
		// Security commands ride the JSON fallback.
		{Time: 9, Commands: []tandem.Command{
			{Type: tandem.CmdCreateUser, User: &tandem.User{Name: "ann", PasswordHash: "$argon2id$x", Roles: []string{"reader"}},
				Audit: []tandem.AuditEntry{{Time: 9, Node: "n1", Principal: "admin", Action: "create_user", Target: "ann", Outcome: tandem.AuditOK}}},
			{Type: tandem.CmdPutRole, Role: &tandem.Role{Name: "nurse", Permissions: []tandem.Permission{
				{Action: tandem.ActTableRead, Resource: "patients", Except: []string{"diagnosis"}}}}},
			{Type: tandem.CmdCreateAPIToken, APIToken: &tandem.APIToken{ID: "0123456789abcdef", Owner: "ann", Hash: "ab", Expires: 5}},
			{Type: tandem.CmdRevokeAPIToken, Name: "0123456789abcdef"},
			{Type: tandem.CmdAudit, Audit: []tandem.AuditEntry{{Time: 1, Principal: "x", Action: "login", Outcome: tandem.AuditUnauthenticated}}},
		}},
		{Time: 1, Commands: []tandem.Command{
			{Type: tandem.CmdTx, Tx: &tandem.Tx{
				Conditions: []tandem.Condition{
					{Kind: tandem.CondContract, Key: "token", Version: 3},
					{Kind: tandem.CondQuery, Table: "t", Query: &tandem.Query{Table: "t", Limit: 10,
						Filters: []tandem.Filter{{Attr: "n", Op: tandem.FilterGt, Values: []string{"5"}}}}, Hash: "abc"},
					{Kind: tandem.CondContent, Table: "t", Key: "a", Hash: "def"},
				},
				Ops:    []tandem.Op{{Op: tandem.OpUpsert, Table: "t", Key: "a", Record: json.RawMessage(`{"id":"a"}`)}},
				Events: []tandem.Event{{Contract: "token", Topic: "transfer", Payload: json.RawMessage(`{"amount":5}`)}},
			}},
			{Type: tandem.CmdTx, Tx: &tandem.Tx{
				Conditions: []tandem.Condition{{Kind: tandem.CondContract, Key: "token", Version: 1}},
				Ops:        []tandem.Op{},
				Events:     []tandem.Event{{Contract: "token", Topic: "noop", Payload: json.RawMessage(`null`)}},
			}},
			{Type: tandem.CmdDeployContract, Contract: &tandem.ContractDeploy{Name: "token", Wasm: []byte("\x00asm"),
				SHA256: "00", Functions: []tandem.ContractFunction{{Name: "transfer"}, {Name: "balance", ReadOnly: true}}}},
			{Type: tandem.CmdActivateContract, Name: "token", Version: 2},
		}},
	}
}

func TestEntryRoundTrip(t *testing.T) {
	for i, e := range sampleEntries() {
		data, err := tandem.EncodeEntry(e)
		if err != nil {
			t.Fatalf("entry %d: encode: %v", i, err)
		}
		got, err := tandem.DecodeEntry(data)
		if err != nil {
			t.Fatalf("entry %d: decode: %v", i, err)
		}
		if len(e.Commands) == 0 {
			e.Commands = []tandem.Command{} // both empty forms decode the same
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("entry %d: round trip\n got %+v\nwant %+v", i, got, e)
		}
		// Every truncation must be an error, never a panic or a silent success.
		for n := 0; n < len(data); n++ {
			if _, err := tandem.DecodeEntry(data[:n]); err == nil {
				t.Fatalf("entry %d: decoding the first %d of %d bytes succeeded", i, n, len(data))
			}
		}
	}
}

func TestEncodeRejectsBadCommands(t *testing.T) {
	bad := []tandem.Command{
		{Type: "nope"},
		{Type: tandem.CmdTx},
		{Type: tandem.CmdTx, Tx: &tandem.Tx{Ops: []tandem.Op{{Op: "smash", Table: "t"}}}},
		{Type: tandem.CmdSetNode},
	}
	for _, c := range bad {
		if _, err := tandem.EncodeEntry(&tandem.Entry{Commands: []tandem.Command{c}}); err == nil {
			t.Errorf("encoding %+v succeeded", c)
		}
	}
}

// FuzzDecodeEntry: the Raft entry decoder must never panic or allocate
// without bound on corrupt input, and whatever it accepts must re-encode to
// the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range sampleEntries() {
		data, err := tandem.EncodeEntry(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(formatV2Entry)
	// A query condition whose JSON has a non-canonical spelling.
	f.Add([]byte("\x03\x00\x01\x01\x01\x04\x01t\x00\x00\x1a{\"table\":\"t\",\"filters\":[]}\x01h\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := tandem.DecodeEntry(data)
		if err != nil {
			return
		}
		again, err := tandem.EncodeEntry(e)
		if err != nil {
			t.Fatalf("decoded entry does not re-encode: %v", err)
		}
		e2, err := tandem.DecodeEntry(again)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("re-encoded entry decodes differently: %v", err)
		}
	})
}

// formatV2Entry is an entry written by the previous format (before
// contract and query conditions and events): one tx with a version
// condition and an upsert. Logs on disk hold such entries.
var formatV2Entry = []byte("\x02\x02\x01\x01\x01\x02\x01t\x01a\x07\x01\x01\x01t\x01a\x0a{\"id\":\"a\"}\x00")

func TestDecodeFormatV2(t *testing.T) {
	e, err := tandem.DecodeEntry(formatV2Entry)
	if err != nil {
		t.Fatal(err)
	}
	want := &tandem.Entry{Time: 1, Commands: []tandem.Command{{Type: tandem.CmdTx, Tx: &tandem.Tx{
		Conditions: []tandem.Condition{{Kind: tandem.CondVersion, Table: "t", Key: "a", Version: 7}},
		Ops:        []tandem.Op{{Op: tandem.OpUpsert, Table: "t", Key: "a", Record: json.RawMessage(`{"id":"a"}`)}},
	}}}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("got %+v", e.Commands[0].Tx)
	}
	// Format 2 knew no contract or query conditions.
	bad := append([]byte{}, formatV2Entry...)
	bad[5] = 3
	if _, err := tandem.DecodeEntry(bad); err == nil {
		t.Fatal("format 2 entry with a contract condition decoded")
	}
}

// TestEncodeOldFormatWhenPossible: entries without contract features are
// written in format 2 (readable by the previous release), others in 3.
func TestEncodeOldFormatWhenPossible(t *testing.T) {
	v3 := 0
	for i, e := range sampleEntries() {
		data, err := tandem.EncodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		want := byte(2)
		if usesFormat3(e) {
			want = 3
			v3++
		}
		if data[0] != want {
			t.Errorf("entry %d written in format %d, want %d", i, data[0], want)
		}
	}
	if v3 == 0 {
		t.Error("no sample entry needs format 3")
	}
	data, err := tandem.EncodeEntry(&tandem.Entry{Time: 1, Commands: []tandem.Command{{Type: tandem.CmdTx, Tx: &tandem.Tx{
		Conditions: []tandem.Condition{{Kind: tandem.CondVersion, Table: "t", Key: "a", Version: 7}},
		Ops:        []tandem.Op{{Op: tandem.OpUpsert, Table: "t", Key: "a", Record: json.RawMessage(`{"id":"a"}`)}},
	}}}})
	if err != nil || string(data) != string(formatV2Entry) {
		t.Fatalf("encoded %q, %v; want the format 2 bytes %q", data, err, formatV2Entry)
	}
}

// usesFormat3 reports whether e has what only format 3 carries: events or
// contract, query or content conditions.
func usesFormat3(e *tandem.Entry) bool {
	for _, c := range e.Commands {
		if c.Tx == nil {
			continue
		}
		if len(c.Tx.Events) > 0 {
			return true
		}
		for _, cond := range c.Tx.Conditions {
			switch cond.Kind {
			case tandem.CondContract, tandem.CondQuery, tandem.CondContent:
				return true
			}
		}
	}
	return false
}

// TestCallerRightsDeployFormat: a deploy with caller rights is written in
// format 4, which a release without rights modes refuses to apply rather
// than dropping the rights; it round-trips, a deploy with contract rights
// keeps the older format, and an older-format entry that claims rights is
// refused.
func TestCallerRightsDeployFormat(t *testing.T) {
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	deploy := func(rights string) *tandem.Entry {
		return &tandem.Entry{Time: 1, Commands: []tandem.Command{{Type: tandem.CmdDeployContract, Contract: &tandem.ContractDeploy{
			Name: "c", Wasm: wasm, SHA256: tandem.WasmSHA256(wasm), Functions: []tandem.ContractFunction{{Name: "f"}}, Rights: rights}}}}
	}
	data, err := tandem.EncodeEntry(deploy(tandem.RightsCaller))
	if err != nil || data[0] != 4 {
		t.Fatalf("caller-rights deploy encoded in format %d, %v; want 4", data[0], err)
	}
	e, err := tandem.DecodeEntry(data)
	if err != nil || e.Commands[0].Contract.Rights != tandem.RightsCaller {
		t.Fatalf("decoded %+v, %v; want the caller rights back", e, err)
	}
	old, err := tandem.EncodeEntry(deploy(tandem.RightsContract))
	if err != nil || old[0] != 2 {
		t.Fatalf("contract-rights deploy encoded in format %d, %v; want 2", old[0], err)
	}
	forged := append([]byte{2}, data[1:]...)
	if _, err := tandem.DecodeEntry(forged); err == nil {
		t.Fatal("a format 2 entry deploying with caller rights decoded")
	}
}
