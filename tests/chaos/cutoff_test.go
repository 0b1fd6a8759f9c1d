package chaos_test

import (
	"testing"

	"github.com/tandemdb/tandem/tests/chaos/checker"
)

// TestCheckCutOff feeds checkCutOff histories around an isolation of n1
// from 1s to 3s and a split leaving n3 and n4 on the minority side from 6s
// to 7s.
func TestCheckCutOff(t *testing.T) {
	const s = int64(1e9)
	faults := []faultEvent{
		{Kind: "isolate-leader", Node: "n1", Minority: []string{"n1"}, Start: s - s/10, CutFrom: s, CutUntil: 3 * s, End: 3*s + s/10},
		{Kind: "split", Node: "n3", Minority: []string{"n3", "n4"}, Start: 6 * s, CutFrom: 6 * s, CutUntil: 7 * s, End: 7 * s},
		{Kind: "bridge", Node: "n2", Start: 4 * s, End: 5 * s}, // no cut-off node
	}
	op := func(node, kind, cons string, call, ret int64, out checker.Outcome) checker.RegisterOp {
		return checker.RegisterOp{Key: "k", Node: node, Kind: kind, Consistency: cons, Call: call, Return: ret, Outcome: out}
	}
	for _, tc := range []struct {
		name string
		op   checker.RegisterOp
		bad  bool
	}{
		{"linearizable read answered while cut off", op("n1", checker.Read, checker.Linearizable, 2*s, 2*s+1, checker.Ok), true},
		{"write acknowledged while cut off", op("n1", checker.Write, "", 2*s, 2*s+1, checker.Ok), true},
		{"cas refused with 412 while cut off", op("n1", checker.CAS, "", 2*s, 2*s+1, checker.Fail), true},
		{"linearizable read answered after healing", op("n1", checker.Read, checker.Linearizable, 2*s, 3*s+1, checker.Ok), false},
		{"write unknown while cut off", op("n1", checker.Write, "", 2*s, 2*s+1, checker.Unknown), false},
		{"local read while cut off", op("n1", checker.Read, checker.Local, 2*s, 2*s+1, checker.Ok), false},
		{"write called before the cut took effect", op("n1", checker.Write, "", s-1, 2*s, checker.Ok), false},
		{"write on the majority side", op("n2", checker.Write, "", 2*s, 2*s+1, checker.Ok), false},
		{"write on a bridged node", op("n2", checker.Write, "", 4*s+1, 4*s+2, checker.Ok), false},
		{"write on the follower beside a cut-off leader", op("n4", checker.Write, "", 6*s+1, 6*s+2, checker.Ok), true},
		{"linearizable read on the cut-off leader of a split", op("n3", checker.Read, checker.Linearizable, 6*s+1, 6*s+2, checker.Ok), true},
		{"write on the majority side of a split", op("n5", checker.Write, "", 6*s+1, 6*s+2, checker.Ok), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := checkCutOff([]checker.RegisterOp{tc.op}, faults)
			if got := len(v) > 0; got != tc.bad {
				t.Errorf("violation: %v, want %v (%v)", got, tc.bad, v)
			}
		})
	}
}
