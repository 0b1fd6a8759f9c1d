package checker_test

import (
	"strings"
	"testing"

	"github.com/tandemdb/tandem/tests/chaos/checker"
)

// tokenHistory is a small valid history: accounts a and b minted 100 each
// at indexes 2 and 3; t1 (ok, index 5) and t5 (ok, index 8) move a to b,
// t2 (unknown) applied at index 6, t3 refused, t4 (unknown) not applied.
type tokenHistory struct {
	setup     checker.TokenSetup
	transfers []checker.TokenTransfer
	reads     []checker.TokenRead
	finals    []checker.TokenState
}

func newTokenHistory() *tokenHistory {
	h := &tokenHistory{setup: checker.TokenSetup{Initial: map[string]int64{"a": 100, "b": 100}, Index: 3}}
	h.transfers = []checker.TokenTransfer{
		{ID: "t1", From: "a", To: "b", Amount: 10, Call: 10, Return: 20, Outcome: checker.Ok, Index: 5, FromBalance: 90, ToBalance: 110},
		{ID: "t2", From: "b", To: "a", Amount: 5, Call: 15, Return: 30, Outcome: checker.Unknown},
		{ID: "t3", From: "a", To: "b", Amount: 500, Call: 25, Return: 28, Outcome: checker.Fail, Code: checker.CodeRefused, FromBalance: 90},
		{ID: "t4", From: "a", To: "b", Amount: 7, Call: 35, Return: 45, Outcome: checker.Unknown},
		{ID: "t5", From: "a", To: "b", Amount: 1, Call: 32, Return: 40, Outcome: checker.Ok, Index: 8, FromBalance: 94, ToBalance: 106},
	}
	h.reads = []checker.TokenRead{
		{Kind: checker.TokenBalance, Consistency: checker.Linearizable, Call: 21, Return: 22, Index: 5, Balances: map[string]int64{"a": 90}},
		{Kind: checker.TokenBalance, Consistency: checker.Local, Call: 41, Return: 42, Index: 5, Balances: map[string]int64{"a": 90}}, // local: may lag
		{Kind: checker.TokenTable, Consistency: checker.Local, Call: 41, Return: 42, Index: 6, Balances: map[string]int64{"a": 95, "b": 105}},
		{Kind: checker.TokenSupply, Consistency: checker.Local, Call: 41, Return: 42, Index: 8, Supply: 200},
	}
	for _, node := range []string{"n1", "n2"} {
		h.finals = append(h.finals, checker.TokenState{
			Node:     node,
			Balances: map[string]int64{"a": 94, "b": 106},
			Called:   map[string]int64{"a": 94, "b": 106},
			Supply:   200,
			Events: []checker.TokenEvent{
				{Index: 2, Topic: "mint", To: "a", Amount: 100},
				{Index: 3, Topic: "mint", To: "b", Amount: 100},
				{Index: 5, Topic: "transfer", From: "a", To: "b", Amount: 10},
				{Index: 6, Topic: "transfer", From: "b", To: "a", Amount: 5},
				{Index: 8, Topic: "transfer", From: "a", To: "b", Amount: 1},
			},
		})
	}
	return h
}

// final changes every node's final state.
func (h *tokenHistory) final(f func(st *checker.TokenState)) {
	for i := range h.finals {
		f(&h.finals[i])
	}
}

func (h *tokenHistory) setBalances(a, b int64) {
	h.final(func(st *checker.TokenState) {
		st.Balances = map[string]int64{"a": a, "b": b}
		st.Called = map[string]int64{"a": a, "b": b}
	})
}

func (h *tokenHistory) addEvent(ev checker.TokenEvent) {
	h.final(func(st *checker.TokenState) { st.Events = append(st.Events, ev) })
}

func TestTokenChecks(t *testing.T) {
	tests := []struct {
		name   string
		change func(h *tokenHistory)
		want   string // "" for no violation
	}{
		{"valid", func(h *tokenHistory) {}, ""},
		{"unknown applied after the last acknowledgement", func(h *tokenHistory) {
			h.addEvent(checker.TokenEvent{Index: 9, Topic: "transfer", From: "a", To: "b", Amount: 7})
			h.setBalances(87, 113)
		}, ""},
		{"unknown applied in the entry of an acknowledgement it could precede", func(h *tokenHistory) {
			h.addEvent(checker.TokenEvent{Index: 8, Seq: 1, Topic: "transfer", From: "a", To: "b", Amount: 7})
			h.setBalances(87, 113)
		}, ""},
		{"unknown applied before it was called", func(h *tokenHistory) {
			h.transfers[3].Call = 42 // after t5 (index 8) returned
			h.addEvent(checker.TokenEvent{Index: 8, Seq: 1, Topic: "transfer", From: "a", To: "b", Amount: 7})
			h.setBalances(87, 113)
		}, "belongs to no transfer"},
		{"conflicted transfer applied", func(h *tokenHistory) {
			h.transfers = append(h.transfers, checker.TokenTransfer{ID: "t6", From: "a", To: "b", Amount: 2, Call: 50, Return: 55, Outcome: checker.Fail, Code: checker.CodeConflict})
			h.addEvent(checker.TokenEvent{Index: 9, Topic: "transfer", From: "a", To: "b", Amount: 2})
			h.setBalances(92, 108)
		}, "belongs to no transfer"},
		{"unknown transfer applied twice", func(h *tokenHistory) {
			h.addEvent(checker.TokenEvent{Index: 9, Topic: "transfer", From: "a", To: "b", Amount: 7})
			h.addEvent(checker.TokenEvent{Index: 10, Topic: "transfer", From: "a", To: "b", Amount: 7})
			h.setBalances(80, 120)
		}, "belongs to no transfer"},
		{"acknowledged transfer lost", func(h *tokenHistory) {
			h.final(func(st *checker.TokenState) { st.Events = st.Events[:4] })
			h.setBalances(95, 105)
		}, "has no event at its index 8"},
		{"acknowledged with other balances than committed", func(h *tokenHistory) {
			h.transfers[4].FromBalance = 93
		}, "answered balances a=93 b=106 at index 8; in commit order its event leaves 94 and 106"},
		{"balances moved without events", func(h *tokenHistory) {
			h.setBalances(89, 111)
		}, "the events give a a balance of 94"},
		{"not explained by any subset", func(h *tokenHistory) {
			h.setBalances(88, 112)
		}, "plus any subset of the 2 transfers with an unknown outcome (left over after the acknowledged ones: a -1, b +1)"},
		{"overdraft", func(h *tokenHistory) {
			h.transfers = append(h.transfers, checker.TokenTransfer{ID: "t7", From: "a", To: "b", Amount: 200, Call: 50, Return: 60, Outcome: checker.Unknown})
			h.addEvent(checker.TokenEvent{Index: 9, Topic: "transfer", From: "a", To: "b", Amount: 200})
			h.setBalances(-106, 306)
		}, "overdraws a, which held 94"},
		{"money created", func(h *tokenHistory) {
			h.addEvent(checker.TokenEvent{Index: 9, Topic: "mint", To: "a", Amount: 1})
			h.setBalances(95, 106)
		}, "add up to 201, want 200"},
		{"nodes differ", func(h *tokenHistory) {
			h.finals[1].Balances = map[string]int64{"a": 95, "b": 105}
		}, "n2 holds balances"},
		{"an event missing on one node", func(h *tokenHistory) {
			h.finals[1].Events = append(h.finals[1].Events[:3:3], h.finals[1].Events[4])
		}, "n2's event 3 is transfer event 8.0"},
		{"an entry's events cut short", func(h *tokenHistory) {
			h.final(func(st *checker.TokenState) { st.Events[4].Seq = 1 })
		}, "events are not in commit order, or one is missing"},
		{"contract disagrees with the table", func(h *tokenHistory) {
			h.finals[0].Called["b"] = 105
		}, "the contract's balance of b is 105, the token_accounts table holds 106"},
		{"stale linearizable read", func(h *tokenHistory) {
			h.reads[0].Call, h.reads[0].Return = 41, 42 // after t5 returned
		}, "returned map[a:90], which no committed state it may have seen holds (index 8 to the end)"},
		{"read from the future", func(h *tokenHistory) {
			h.reads[1].Call, h.reads[1].Return, h.reads[1].Balances = 11, 12, map[string]int64{"a": 94}
		}, "(index 5 to before 8)"},
		{"min_index read below its index", func(h *tokenHistory) {
			h.reads[1].Consistency, h.reads[1].MinIndex = checker.MinIndex, 8
		}, "(index 8 to the end)"},
		{"torn table read", func(h *tokenHistory) {
			h.reads[2].Balances = map[string]int64{"a": 90, "b": 105}
		}, "add up to 195"},
		{"table read of no committed state", func(h *tokenHistory) {
			h.reads[2].Balances = map[string]int64{"a": 94, "b": 106}
			h.reads[2].Return = 31 // before t5 was called: index 8 is out of reach
		}, "which no committed state it may have seen holds"},
		{"wrong supply", func(h *tokenHistory) { h.reads[3].Supply = 199 }, "supply 199; 200 was minted"},
		{"refusal from a stale state", func(h *tokenHistory) {
			h.transfers[2].Call, h.transfers[2].Return = 41, 43 // a held 94 by then
		}, "refused because a held 90, but no committed state between its call and its return (index 8 to the end) has that"},
		{"refusal that the balance covers", func(h *tokenHistory) {
			h.transfers[2].Amount = 50
		}, "covers the amount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTokenHistory()
			tt.change(h)
			res := checker.CheckToken(h.setup, h.transfers, h.reads, h.finals)
			got := strings.Join(res.Violations, "\n")
			if tt.want == "" {
				if got != "" {
					t.Fatalf("got violations\n%s\nwant none (notes %q)", got, res.Notes)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("got violations\n%s\nwant one containing %q", got, tt.want)
			}
		})
	}
}
