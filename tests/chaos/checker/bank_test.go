package checker_test

import (
	"strings"
	"testing"

	"github.com/tandemdb/tandem/tests/chaos/checker"
)

func TestBankFinal(t *testing.T) {
	initial := map[string]int64{"a": 100, "b": 100}
	attempts := []checker.Transfer{
		{ID: "t1", From: "a", To: "b", Amount: 10, Outcome: checker.Ok},
		{ID: "t2", From: "b", To: "a", Amount: 5, Outcome: checker.Unknown},
		{ID: "t3", From: "a", To: "b", Amount: 7, Outcome: checker.Fail},
	}
	rec := func(ids ...string) map[string]checker.Transfer {
		m := map[string]checker.Transfer{}
		for _, id := range ids {
			for _, a := range attempts {
				if a.ID == id {
					m[id] = checker.Transfer{ID: id, From: a.From, To: a.To, Amount: a.Amount}
				}
			}
		}
		return m
	}
	tests := []struct {
		name      string
		balances  map[string]int64
		transfers map[string]checker.Transfer
		want      string
	}{
		{"acknowledged only", map[string]int64{"a": 90, "b": 110}, rec("t1"), ""},
		{"unknown applied", map[string]int64{"a": 95, "b": 105}, rec("t1", "t2"), ""},
		{"acknowledged missing", map[string]int64{"a": 100, "b": 100}, rec(), "acknowledged transfer t1"},
		{"failed applied", map[string]int64{"a": 83, "b": 117}, rec("t1", "t3"), "its transaction failed"},
		{"money without its record", map[string]int64{"a": 85, "b": 115}, rec("t1"), "account a has 85"},
		{"money created", map[string]int64{"a": 90, "b": 111}, rec("t1"), "add up to 201"},
		{"negative", map[string]int64{"a": -10, "b": 210}, map[string]checker.Transfer{"t1": {ID: "t1", From: "a", To: "b", Amount: 110}}, "balance -10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checker.CheckBankFinal(checker.BankState{Node: "n1", Balances: tt.balances, Transfers: tt.transfers}, initial, attempts)
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("got %q, want no violation", got)
				}
				return
			}
			if !strings.Contains(strings.Join(got, "\n"), tt.want) {
				t.Fatalf("got %q, want a violation containing %q", got, tt.want)
			}
		})
	}
}
