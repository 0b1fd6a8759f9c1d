package node

import (
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// TestContractRights: the leader derives a caller's rights from its own
// replicated users and roles; insecure mode allows everything, an unknown
// caller nothing.
func TestContractRights(t *testing.T) {
	s, err := store.Open(store.Options{Dir: t.TempDir(), CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entry := &tandem.Entry{Time: 1, Commands: []tandem.Command{
		{Type: tandem.CmdPutRole, Role: &tandem.Role{Name: "nurse", Permissions: []tandem.Permission{
			{Action: tandem.ActTableRead, Resource: "patients", Except: []string{"diagnosis"}}}}},
		{Type: tandem.CmdCreateUser, User: &tandem.User{Name: "nurse1", PasswordHash: "x", Roles: []string{"nurse"}}},
	}}
	data, err := tandem.EncodeEntry(entry)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Apply([]store.LogEntry{{Index: 1, Data: data, Entry: entry}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res[0] {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	sc := &tandem.TableSchema{Name: "patients", PrimaryKey: "id"}
	rec := []byte(`{"_version":1,"diagnosis":"flu","id":"p1","name":"Ann"}`)

	n := &Node{store: s}
	got, err := n.contractRights("nurse1").FilterRecord(sc, rec)
	if err != nil || string(got) != `{"_version":1,"id":"p1","name":"Ann"}` {
		t.Errorf("nurse1 reads %s, %v; want it without the diagnosis", got, err)
	}
	if err := n.contractRights("nurse1").CheckOp(sc, &tandem.Op{Op: tandem.OpDelete, Table: "patients", Key: "p1"}); tandem.ErrorCode(err) != tandem.CodeForbidden {
		t.Errorf("nurse1 delete: %v; want forbidden", err)
	}
	if err := n.contractRights("ghost").CheckRead(sc); tandem.ErrorCode(err) != tandem.CodeForbidden {
		t.Errorf("unknown caller reads: %v; want forbidden", err)
	}

	n.opts.Insecure = true
	if got, err := n.contractRights("anonymous").FilterRecord(sc, rec); err != nil || string(got) != string(rec) {
		t.Errorf("insecure: reads %s, %v; want everything", got, err)
	}
}
