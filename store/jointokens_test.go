package store_test

import (
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// TestJoinTokenLifecycle: a token is consumed once, judged expired by the
// entry's time (so every node agrees), and gone once deleted.
func TestJoinTokenLifecycle(t *testing.T) {
	s := openStore(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	index := uint64(0)
	apply := func(time int64, cmd tandem.Command) error {
		t.Helper()
		index++
		data, err := tandem.EncodeEntry(&tandem.Entry{Time: time, Commands: []tandem.Command{cmd}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Apply([]store.LogEntry{{Index: index, Data: data}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0][0].Err
	}
	create := func(id string, expires int64) tandem.Command {
		return tandem.Command{Type: tandem.CmdCreateJoinToken, JoinToken: &tandem.JoinToken{ID: id, SecretHash: "h", Expires: expires}}
	}
	use := func(id, node string) tandem.Command {
		return tandem.Command{Type: tandem.CmdUseJoinToken, JoinToken: &tandem.JoinToken{ID: id, UsedBy: node}}
	}
	steps := []struct {
		time     int64
		cmd      tandem.Command
		wantCode tandem.Code
	}{
		{100, create("a", 1000), ""},
		{100, create("a", 1000), tandem.CodeConflict},
		{100, create("past", 50), tandem.CodeInvalid},
		{200, use("a", "n2"), ""},
		{300, use("a", "n3"), tandem.CodeUnauthenticated}, // reused
		{400, create("b", 1000), ""},
		{1000, use("b", "n4"), tandem.CodeUnauthenticated}, // expired at the entry's time
		{1000, use("nope", "n4"), tandem.CodeUnauthenticated},
		{1000, tandem.Command{Type: tandem.CmdDeleteJoinToken, Name: "b"}, ""},
		{1000, tandem.Command{Type: tandem.CmdDeleteJoinToken, Name: "b"}, tandem.CodeNotFound},
	}
	for i, st := range steps {
		if got := tandem.ErrorCode(apply(st.time, st.cmd)); got != st.wantCode {
			t.Fatalf("step %d (%s): code %q, want %q", i, st.cmd.Type, got, st.wantCode)
		}
	}
	tok, err := s.JoinToken("a")
	if err != nil || tok.UsedBy != "n2" || tok.UsedAt != 200 || tok.Created != 100 {
		t.Fatalf("token a: %+v %v", tok, err)
	}
	all, err := s.JoinTokens()
	if err != nil || len(all) != 1 {
		t.Fatalf("tokens: %+v %v", all, err)
	}

	// A removed node is marked until it enrolls again.
	if err := apply(1000, tandem.Command{Type: tandem.CmdRemoveNode, Name: "n2"}); err != nil || !s.Removed("n2") || s.Removed("n3") {
		t.Fatalf("remove n2: %v, removed %v", err, s.Removed("n2"))
	}
	apply(1000, create("c", 5000))
	if err := apply(1100, use("c", "n2")); err != nil || s.Removed("n2") {
		t.Fatalf("n2 enrolled again: %v, still removed %v", err, s.Removed("n2"))
	}
}
