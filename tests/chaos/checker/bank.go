package checker

import (
	"fmt"
	"sort"
)

// Transfer is one attempted transaction of the bank workload: move Amount
// from From to To, if both accounts are still at the versions read, and
// insert the transfer record ID in the same transaction.
type Transfer struct {
	ID      string  `json:"id"`
	From    string  `json:"from"`
	To      string  `json:"to"`
	Amount  int64   `json:"amount"`
	Node    string  `json:"node"`
	Call    int64   `json:"call"`
	Return  int64   `json:"return"`
	Outcome Outcome `json:"outcome"`
	Index   uint64  `json:"index,omitempty"`
	Err     string  `json:"err,omitempty"`
}

// BankRead is one read of every account, from one query.
type BankRead struct {
	Node        string           `json:"node"`
	Consistency string           `json:"consistency"`
	MinIndex    uint64           `json:"min_index,omitempty"`
	Call        int64            `json:"call"`
	Return      int64            `json:"return"`
	Index       uint64           `json:"index"`
	Balances    map[string]int64 `json:"balances"`
}

// CheckBankRead checks one snapshot of the accounts: all of them are
// there, none is negative, and they add up to total.
func CheckBankRead(r BankRead, accounts []string, total int64) []string {
	var out []string
	var sum int64
	for _, a := range accounts {
		b, ok := r.Balances[a]
		if !ok {
			out = append(out, fmt.Sprintf("%s read on %s at index %d: account %s is missing", r.Consistency, r.Node, r.Index, a))
			continue
		}
		if b < 0 {
			out = append(out, fmt.Sprintf("%s read on %s at index %d: account %s has balance %d", r.Consistency, r.Node, r.Index, a, b))
		}
		sum += b
	}
	if len(r.Balances) != len(accounts) {
		out = append(out, fmt.Sprintf("%s read on %s at index %d: %d accounts, want %d", r.Consistency, r.Node, r.Index, len(r.Balances), len(accounts)))
	}
	if sum != total {
		out = append(out, fmt.Sprintf("%s read on %s at index %d: balances %v add up to %d, want %d", r.Consistency, r.Node, r.Index, r.Balances, sum, total))
	}
	return out
}

// BankState is one node's final state: the balances, and the transfer
// records (ID to the transfer as stored).
type BankState struct {
	Node      string
	Balances  map[string]int64
	Transfers map[string]Transfer
}

// CheckBankFinal checks a node's state after the run against every
// transfer attempted: the total holds and no balance is negative; every
// acknowledged transfer is recorded and no definitely failed one is (an
// unknown one may be or not); every recorded transfer is one that was attempted, as it was
// attempted; and each balance is its initial amount plus what the recorded
// transfers moved, so money moved exactly when its transfer record was
// written.
func CheckBankFinal(st BankState, initial map[string]int64, attempts []Transfer) []string {
	var accounts []string
	var total int64
	for a, b := range initial {
		accounts = append(accounts, a)
		total += b
	}
	sort.Strings(accounts)
	out := CheckBankRead(BankRead{Node: st.Node, Consistency: "final", Balances: st.Balances}, accounts, total)
	add := func(format string, args ...any) { out = append(out, st.Node+": "+fmt.Sprintf(format, args...)) }

	byID := map[string]Transfer{}
	for _, t := range attempts {
		byID[t.ID] = t
	}
	for _, t := range attempts {
		_, present := st.Transfers[t.ID]
		switch {
		case t.Outcome == Ok && !present:
			add("acknowledged transfer %s (%d from %s to %s, index %d) is missing", t.ID, t.Amount, t.From, t.To, t.Index)
		case (t.Outcome == Fail || t.Outcome == NotSent) && present:
			add("transfer %s is recorded but its transaction failed (%s %s)", t.ID, t.Outcome, t.Err)
		}
	}
	want := map[string]int64{}
	for a, b := range initial {
		want[a] = b
	}
	ids := make([]string, 0, len(st.Transfers))
	for id := range st.Transfers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		got := st.Transfers[id]
		t, ok := byID[id]
		if !ok {
			add("transfer %s is recorded but was never attempted", id)
			continue
		}
		if got.From != t.From || got.To != t.To || got.Amount != t.Amount {
			add("transfer %s is recorded as %d from %s to %s; it was %d from %s to %s", id, got.Amount, got.From, got.To, t.Amount, t.From, t.To)
		}
		want[t.From] -= t.Amount
		want[t.To] += t.Amount
	}
	for _, a := range accounts {
		if st.Balances[a] != want[a] {
			add("account %s has %d; its initial balance and the recorded transfers give %d", a, st.Balances[a], want[a])
		}
	}
	return out
}
