package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/tandemdb/tandem"
)

// laggingCluster is a node whose store catches up with the cluster when it
// confirms a linearizable read index.
type laggingCluster struct {
	fakeCluster
	contracts *laggingContracts
}

func (c laggingCluster) LocalReadable() error { return nil }
func (c laggingCluster) ReadIndex(context.Context) (uint64, error) {
	c.contracts.known = true
	return 7, nil
}
func (c laggingCluster) WaitApplied(context.Context, uint64) error { return nil }

// laggingContracts knows contract "token" only once the node caught up.
type laggingContracts struct {
	Contracts
	known           bool
	readOnly, calls int
}

func (c *laggingContracts) Get(name string) (*tandem.ContractInfo, error) {
	if !c.known || name != "token" {
		return nil, tandem.Errorf(tandem.CodeNotFound, "contract %q does not exist", name)
	}
	return &tandem.ContractInfo{Name: "token", Active: 1, Versions: []tandem.ContractVersion{{
		Version: 1, Functions: []tandem.ContractFunction{{Name: "balance", ReadOnly: true}, {Name: "transfer"}},
	}}}, nil
}

func (c *laggingContracts) ReadOnly(context.Context, tandem.ContractCall) (*tandem.CallResult, error) {
	c.readOnly++
	return &tandem.CallResult{Result: []byte(`1`)}, nil
}

func (c *laggingContracts) Call(context.Context, tandem.ContractCall) (*tandem.CallResult, error) {
	c.calls++
	return &tandem.CallResult{Result: []byte(`2`)}, nil
}

// TestReadOnlyCallOnALaggingNode: a node that does not know a contract yet
// (it lags behind its deploy) catches up to a linearizable read index
// before deciding how to run a call, so a read-only function runs here as
// a read, never on the leader as a write over in-flight state, even when
// the call asks for local consistency.
func TestReadOnlyCallOnALaggingNode(t *testing.T) {
	for _, path := range []string{"/v1/contracts/token/balance", "/v1/contracts/token/balance?consistency=local"} {
		cs := &laggingContracts{}
		s := New(Options{Cluster: laggingCluster{contracts: cs}, Contracts: cs})
		w := serve(s, http.MethodPost, path, "")
		if w.Code != http.StatusOK || cs.readOnly != 1 || cs.calls != 0 {
			t.Errorf("%s: %d %s; read-only runs %d, calls %d; want one read-only run", path, w.Code, w.Body, cs.readOnly, cs.calls)
		}
	}
	// A contract unknown even after catching up is the leader's to judge.
	cs := &laggingContracts{}
	s := New(Options{Cluster: laggingCluster{contracts: cs}, Contracts: cs})
	if w := serve(s, http.MethodPost, "/v1/contracts/other/f", ""); cs.calls != 1 {
		t.Errorf("unknown contract: %d %s; calls %d, want it passed on", w.Code, w.Body, cs.calls)
	}
}
