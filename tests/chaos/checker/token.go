package checker

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Error codes of token calls that failed for sure (Outcome Fail).
const (
	// CodeRefused is the contract's refusal (422 contract_error): the
	// balance did not cover the amount. Nothing was applied.
	CodeRefused = "contract_error"
	// CodeConflict is a call whose transaction kept failing its read
	// conditions (409 after the engine's re-executions). Nothing was
	// applied.
	CodeConflict = "conflict"
)

// TokenTransfer is one call of the token contract's transfer function.
type TokenTransfer struct {
	ID      string  `json:"id"`
	From    string  `json:"from"`
	To      string  `json:"to"`
	Amount  int64   `json:"amount"`
	Node    string  `json:"node"`
	Call    int64   `json:"call"`
	Return  int64   `json:"return"`
	Outcome Outcome `json:"outcome"`
	// Code is the error code of a Fail: CodeRefused, CodeConflict, or
	// contract_fault for a call that ran past its time limit (a paused
	// node); every Fail is a call that was not applied.
	Code string `json:"code,omitempty"`
	// Index is the commit index an ok call answered.
	Index uint64 `json:"index,omitempty"`
	// FromBalance and ToBalance are the balances an ok call answered (after
	// its transfer). For a refusal, FromBalance is the balance the refusal
	// names ("... has 37, needs 50").
	FromBalance int64  `json:"from_balance,omitempty"`
	ToBalance   int64  `json:"to_balance,omitempty"`
	Err         string `json:"err,omitempty"`
}

// Refused reports whether the contract refused the transfer.
func (t *TokenTransfer) Refused() bool { return t.Outcome == Fail && t.Code == CodeRefused }

func (t *TokenTransfer) String() string {
	return fmt.Sprintf("%s (%d from %s to %s on %s, called %.3fs, returned %.3fs)", t.ID, t.Amount, t.From, t.To, t.Node, float64(t.Call)/1e9, float64(t.Return)/1e9)
}

// Kinds of TokenRead.
const (
	TokenBalance = "balance" // the contract's read-only balance function
	TokenSupply  = "supply"  // the contract's read-only supply function
	TokenTable   = "table"   // a query of every account in token_accounts
)

// TokenRead is a read during the run: a read-only contract call, or a
// query of the accounts table.
type TokenRead struct {
	Kind        string `json:"kind"`
	Node        string `json:"node"`
	Consistency string `json:"consistency"`
	MinIndex    uint64 `json:"min_index,omitempty"`
	Call        int64  `json:"call"`
	Return      int64  `json:"return"`
	// Index is an applied index the read is known to include: the index a
	// read-only call answered, or the highest version of the records a
	// query returned.
	Index uint64 `json:"index"`
	// Balances: one account for a balance read, every account for a table
	// read.
	Balances map[string]int64 `json:"balances,omitempty"`
	Supply   int64            `json:"supply,omitempty"`
}

func (r *TokenRead) String() string {
	return fmt.Sprintf("%s read (%s) on %s [%.3fs, %.3fs] at index %d", r.Kind, r.Consistency, r.Node, float64(r.Call)/1e9, float64(r.Return)/1e9, r.Index)
}

// TokenEvent is one event of the token contract, in commit order: (Index,
// Seq) is its position (Seq among the events of one log entry).
type TokenEvent struct {
	Index  uint64 `json:"index"`
	Seq    uint32 `json:"seq"`
	Topic  string `json:"topic"` // "mint" or "transfer"
	From   string `json:"from,omitempty"`
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

func (e TokenEvent) String() string {
	if e.Topic == "transfer" {
		return fmt.Sprintf("transfer event %d.%d (%d from %s to %s)", e.Index, e.Seq, e.Amount, e.From, e.To)
	}
	return fmt.Sprintf("%s event %d.%d (%d to %s)", e.Topic, e.Index, e.Seq, e.Amount, e.To)
}

// TokenSetup is the state the workload made before the faults: Initial
// balances, minted by calls that all committed at or below Index.
type TokenSetup struct {
	Initial map[string]int64 `json:"initial"`
	Index   uint64           `json:"index"`
}

// TokenState is one node's state after the run.
type TokenState struct {
	Node string `json:"node"`
	// Balances are the token_accounts table, read directly.
	Balances map[string]int64 `json:"balances"`
	// Called are the balances the contract's balance function answered
	// (linearizable), Supply what its supply function answered.
	Called map[string]int64 `json:"called"`
	Supply int64            `json:"supply"`
	Events []TokenEvent     `json:"events"`
}

// TokenResult is what CheckToken found.
type TokenResult struct {
	Violations []string
	// Notes say how far the checks went, for the log.
	Notes []string
}

// maxSubsetStates bounds the search for the subset of unknown transfers
// that explains the final balances; past it only bounds are checked.
const maxSubsetStates = 20000

// CheckToken checks the token workload's history against the nodes' final
// states:
//
//   - every node: every account present, none negative, the total is the
//     supply minted; the contract's balance function agrees with the table
//     and its supply function with the total; every node holds the same
//     balances and the same events;
//   - without the events: the final balances are the initial ones plus the
//     effect of every acknowledged transfer plus the effect of some subset
//     of the transfers whose outcome is unknown (searched exactly while the
//     combinations stay few, else checked against bounds);
//   - with the events, which are committed with the transfers' writes:
//     replayed in commit order they give the final balances, no transfer
//     ever overdraws, every acknowledged transfer has its event at the
//     index it answered and answered the balances right after it, and every
//     other transfer event belongs to a distinct transfer with an unknown
//     outcome that was called before the event's commit (a refused, a
//     conflicted or an unsent transfer has none);
//   - refusals: the balance a refusal names is what the account held at
//     some committed state between its call and its return (no refusal from
//     in-flight or stale state), and it is below the amount;
//   - reads at every level: a balance or a table read returns the balances
//     of one committed state at or after the index it answered (and, for
//     linearizable reads, after every transfer acknowledged before it was
//     called; for min_index reads, after that index), and before any
//     transfer called after it returned; a supply read is the total.
func CheckToken(setup TokenSetup, transfers []TokenTransfer, reads []TokenRead, finals []TokenState) TokenResult {
	var res TokenResult
	add := func(v ...string) { res.Violations = append(res.Violations, v...) }
	if len(finals) == 0 {
		add("no node's final state could be read")
		return res
	}
	accounts := slices.Sorted(maps.Keys(setup.Initial))
	var total int64
	for _, b := range setup.Initial {
		total += b
	}
	ref := finals[0]
	for _, st := range finals {
		add(checkTokenState(st, accounts, total)...)
		if st.Node != ref.Node {
			add(compareTokenStates(ref, st)...)
		}
	}

	v, note := checkTokenSubset(accounts, setup.Initial, ref.Balances, transfers)
	add(v...)
	if note != "" {
		res.Notes = append(res.Notes, note)
	}

	tl, v := checkTokenEvents(setup, transfers, ref)
	add(v...)
	if tl == nil {
		res.Notes = append(res.Notes, "refusals and reads not checked: the events do not account for the balances")
		return res
	}
	add(tl.checkRefusals(setup, transfers)...)
	add(tl.checkReads(setup, reads, accounts, total)...)
	return res
}

// checkTokenState checks one node's final snapshot.
func checkTokenState(st TokenState, accounts []string, total int64) []string {
	out := CheckBankRead(BankRead{Node: st.Node, Consistency: "final token_accounts", Balances: st.Balances}, accounts, total)
	for _, a := range accounts {
		if got, ok := st.Called[a]; !ok {
			out = append(out, fmt.Sprintf("%s: the contract's balance of %s could not be read at the end", st.Node, a))
		} else if got != st.Balances[a] {
			out = append(out, fmt.Sprintf("%s: the contract's balance of %s is %d, the token_accounts table holds %d", st.Node, a, got, st.Balances[a]))
		}
	}
	if st.Supply != total {
		out = append(out, fmt.Sprintf("%s: the contract's supply is %d; %d was minted", st.Node, st.Supply, total))
	}
	return out
}

// compareTokenStates reports where node st differs from node ref.
func compareTokenStates(ref, st TokenState) []string {
	var out []string
	if !maps.Equal(ref.Balances, st.Balances) {
		out = append(out, fmt.Sprintf("%s holds balances %v, %s holds %v", st.Node, st.Balances, ref.Node, ref.Balances))
	}
	n := min(len(ref.Events), len(st.Events))
	for i := range n {
		if ref.Events[i] != st.Events[i] {
			out = append(out, fmt.Sprintf("%s's event %d is %v, %s's is %v", st.Node, i, st.Events[i], ref.Node, ref.Events[i]))
			return out
		}
	}
	if len(ref.Events) != len(st.Events) {
		out = append(out, fmt.Sprintf("%s lists %d events, %s lists %d", st.Node, len(st.Events), ref.Node, len(ref.Events)))
	}
	return out
}

// checkTokenSubset checks, without the events, that final = initial +
// the acknowledged transfers + some subset of the unknown ones.
func checkTokenSubset(accounts []string, initial, final map[string]int64, transfers []TokenTransfer) ([]string, string) {
	target := make([]int64, len(accounts))
	pos := map[string]int{}
	for i, a := range accounts {
		pos[a] = i
		target[i] = final[a] - initial[a]
	}
	var unknown []TokenTransfer
	for _, t := range transfers {
		switch t.Outcome {
		case Ok:
			target[pos[t.From]] += t.Amount
			target[pos[t.To]] -= t.Amount
		case Unknown:
			unknown = append(unknown, t)
		}
	}
	moves := make([][2]int, len(unknown)) // from, to
	amounts := make([]int64, len(unknown))
	for i, t := range unknown {
		moves[i], amounts[i] = [2]int{pos[t.From], pos[t.To]}, t.Amount
	}
	found, exact := subsetReaches(target, moves, amounts, maxSubsetStates)
	switch {
	case !found:
		return []string{fmt.Sprintf("the final balances %v are not the initial balances %v plus the %d acknowledged transfers plus any subset of the %d transfers with an unknown outcome (left over after the acknowledged ones: %s)",
			final, initial, countOutcome(transfers, Ok), len(unknown), describeDelta(accounts, target))}, ""
	case exact:
		return nil, fmt.Sprintf("the final balances are the initial ones plus every acknowledged transfer plus a subset of the %d unknown ones (searched exactly)", len(unknown))
	}
	return nil, fmt.Sprintf("the final balances are within the bounds that the acknowledged transfers and the %d unknown ones allow (too many combinations to search exactly)", len(unknown))
}

func countOutcome(ts []TokenTransfer, o Outcome) int {
	n := 0
	for _, t := range ts {
		if t.Outcome == o {
			n++
		}
	}
	return n
}

func describeDelta(accounts []string, delta []int64) string {
	var parts []string
	for i, a := range accounts {
		if delta[i] != 0 {
			parts = append(parts, fmt.Sprintf("%s %+d", a, delta[i]))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// subsetReaches reports whether some subset of the moves (amounts[i] from
// account moves[i][0] to moves[i][1]) changes the zero vector into target.
// It tracks the reachable partial sums, pruned by what the remaining moves
// can still add or take; if more than maxStates are needed it gives up
// with exact false, and found then only says the bounds hold.
func subsetReaches(target []int64, moves [][2]int, amounts []int64, maxStates int) (found, exact bool) {
	n := len(target)
	// pos[k][a] and neg[k][a]: what moves k... can still add to or take
	// from account a.
	pos := make([][]int64, len(moves)+1)
	neg := make([][]int64, len(moves)+1)
	pos[len(moves)], neg[len(moves)] = make([]int64, n), make([]int64, n)
	for k := len(moves) - 1; k >= 0; k-- {
		pos[k], neg[k] = slices.Clone(pos[k+1]), slices.Clone(neg[k+1])
		neg[k][moves[k][0]] -= amounts[k]
		pos[k][moves[k][1]] += amounts[k]
	}
	viable := func(s []int64, k int) bool {
		for a := range n {
			if s[a]+neg[k][a] > target[a] || s[a]+pos[k][a] < target[a] {
				return false
			}
		}
		return true
	}
	key := func(s []int64) string {
		b := make([]byte, 0, 8*n)
		for _, v := range s {
			b = binary.AppendVarint(b, v)
		}
		return string(b)
	}
	start := make([]int64, n)
	if !viable(start, 0) {
		return false, true
	}
	cur := map[string][]int64{key(start): start}
	for k := range moves {
		next := make(map[string][]int64, 2*len(cur))
		for _, s := range cur {
			if viable(s, k+1) {
				next[key(s)] = s
			}
			t := slices.Clone(s)
			t[moves[k][0]] -= amounts[k]
			t[moves[k][1]] += amounts[k]
			if viable(t, k+1) {
				next[key(t)] = t
			}
		}
		if len(next) > maxStates {
			return true, false
		}
		if len(next) == 0 {
			return false, true
		}
		cur = next
	}
	return len(cur) > 0, true
}

// step is the state after one log entry that held token events.
type step struct {
	index    uint64
	balances map[string]int64
}

// timeline is the history of the balances, replayed from the events.
type timeline struct {
	steps []step // ascending index
	// acked[i] / called[i]: the ok transfers sorted by return and by call
	// time, with the running maximum / the minimum from i on of their
	// indexes.
	ackedReturn []int64
	ackedMax    []uint64
	calledCall  []int64
	calledMin   []uint64
}

// at returns the balances after every entry up to index.
func (tl *timeline) at(index uint64) map[string]int64 {
	i := sort.Search(len(tl.steps), func(i int) bool { return tl.steps[i].index > index })
	if i == 0 {
		return map[string]int64{}
	}
	return tl.steps[i-1].balances
}

// window returns the states a read (or refusal) may have seen: those of
// the entries at index lo and above, up to but excluding hi (none if lo is
// not below hi).
func (tl *timeline) window(lo, hi uint64) []step {
	if lo >= hi {
		return nil
	}
	out := []step{{index: lo, balances: tl.at(lo)}}
	i := sort.Search(len(tl.steps), func(i int) bool { return tl.steps[i].index > lo })
	for ; i < len(tl.steps) && tl.steps[i].index < hi; i++ {
		out = append(out, tl.steps[i])
	}
	return out
}

// bounds returns [lo, hi) for an operation called at call and returned at
// ret that is linearizable (it reflects every transfer acknowledged before
// it was called) or not; at is an index it is known to include.
func (tl *timeline) bounds(call, ret int64, at uint64, linearizable bool) (lo, hi uint64) {
	lo = at
	if linearizable {
		if i := sort.Search(len(tl.ackedReturn), func(i int) bool { return tl.ackedReturn[i] >= call }); i > 0 {
			lo = max(lo, tl.ackedMax[i-1])
		}
	}
	hi = ^uint64(0)
	if i := sort.Search(len(tl.calledCall), func(i int) bool { return tl.calledCall[i] > ret }); i < len(tl.calledCall) {
		hi = tl.calledMin[i]
	}
	return lo, hi
}

func describeWindow(w []step, accounts []string) string {
	var parts []string
	for i, s := range w {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("... %d more", len(w)-i))
			break
		}
		var vals []string
		for _, a := range accounts {
			vals = append(vals, fmt.Sprintf("%s=%d", a, s.balances[a]))
		}
		parts = append(parts, fmt.Sprintf("@%d{%s}", s.index, strings.Join(vals, " ")))
	}
	return strings.Join(parts, ", ")
}

// checkTokenEvents replays node st's events and checks them against the
// setup, the transfers and st's balances. It returns the timeline, or nil
// if the events do not account for the balances.
func checkTokenEvents(setup TokenSetup, transfers []TokenTransfer, st TokenState) (*timeline, []string) {
	var out []string
	add := func(format string, args ...any) { out = append(out, st.Node+": "+fmt.Sprintf(format, args...)) }

	type content struct {
		from, to string
		amount   int64
	}
	type applied struct {
		ev       TokenEvent
		from, to int64 // balances right after it
		claimed  bool
	}
	tl := &timeline{}
	bal := map[string]int64{}
	var moved []applied
	byIndex := map[uint64][]int{} // index -> positions in moved
	setupChecked := false
	checkSetup := func() {
		setupChecked = true
		if !maps.Equal(bal, setup.Initial) {
			add("the mint events up to index %d give balances %v; the setup minted %v", setup.Index, maps.Clone(bal), setup.Initial)
		}
	}
	for i, ev := range st.Events {
		if i > 0 {
			prev := st.Events[i-1]
			if ev.Index < prev.Index || ev.Index == prev.Index && ev.Seq != prev.Seq+1 || ev.Index > prev.Index && ev.Seq != 0 {
				add("%v follows %v: events are not in commit order, or one is missing", ev, prev)
			}
		} else if ev.Seq != 0 {
			add("the first event is %v: the events of index %d before it are missing", ev, ev.Index)
		}
		if i > 0 && ev.Index != st.Events[i-1].Index {
			tl.steps = append(tl.steps, step{index: st.Events[i-1].Index, balances: maps.Clone(bal)})
		}
		if ev.Index > setup.Index && !setupChecked {
			checkSetup()
		}
		switch {
		case ev.Topic == "mint" && ev.Index <= setup.Index:
			bal[ev.To] += ev.Amount
		case ev.Topic == "transfer" && ev.Index > setup.Index:
			if bal[ev.From] < ev.Amount {
				add("%v overdraws %s, which held %d then", ev, ev.From, bal[ev.From])
			}
			bal[ev.From] -= ev.Amount
			bal[ev.To] += ev.Amount
			byIndex[ev.Index] = append(byIndex[ev.Index], len(moved))
			moved = append(moved, applied{ev: ev, from: bal[ev.From], to: bal[ev.To]})
		default:
			add("unexpected %v (the setup minted up to index %d, the workers only transfer after it)", ev, setup.Index)
		}
	}
	if len(st.Events) > 0 {
		tl.steps = append(tl.steps, step{index: st.Events[len(st.Events)-1].Index, balances: maps.Clone(bal)})
	}
	if !setupChecked {
		checkSetup()
	}
	consistent := true
	for _, a := range slices.Sorted(maps.Keys(setup.Initial)) {
		if bal[a] != st.Balances[a] {
			add("the events give %s a balance of %d; the token_accounts table holds %d", a, bal[a], st.Balances[a])
			consistent = false
		}
	}

	// Acknowledged transfers: the event at their index, with the balances
	// they answered right after it.
	var acked []TokenTransfer
	unknown := map[content][]int64{} // call times
	for _, t := range transfers {
		switch t.Outcome {
		case Ok:
			acked = append(acked, t)
		case Unknown:
			unknown[content{t.From, t.To, t.Amount}] = append(unknown[content{t.From, t.To, t.Amount}], t.Call)
		}
	}
	sort.Slice(acked, func(i, j int) bool { return acked[i].Index < acked[j].Index })
	for _, t := range acked {
		match, same := -1, -1
		for _, p := range byIndex[t.Index] {
			a := moved[p]
			if a.claimed || a.ev.From != t.From || a.ev.To != t.To || a.ev.Amount != t.Amount {
				continue
			}
			if same < 0 {
				same = p
			}
			if a.from == t.FromBalance && a.to == t.ToBalance {
				match = p
				break
			}
		}
		switch {
		case match >= 0:
			moved[match].claimed = true
		case same >= 0:
			moved[same].claimed = true
			add("acknowledged transfer %s answered balances %s=%d %s=%d at index %d; in commit order its event leaves %d and %d",
				t.String(), t.From, t.FromBalance, t.To, t.ToBalance, t.Index, moved[same].from, moved[same].to)
		default:
			add("acknowledged transfer %s has no event at its index %d: it is not applied as acknowledged", t.String(), t.Index)
		}
	}

	// Every other transfer event: a distinct unknown transfer with the same
	// content, called before the event was committed, i.e. before the
	// return of any transfer acknowledged at its index or later.
	tl.sortAcked(transfers)
	unclaimed := map[content][]applied{}
	for _, a := range moved {
		if !a.claimed {
			c := content{a.ev.From, a.ev.To, a.ev.Amount}
			unclaimed[c] = append(unclaimed[c], a)
		}
	}
	// deadline: the earliest return of a transfer acknowledged at index or
	// later.
	type ackRet struct {
		index uint64
		ret   int64
	}
	byIdx := make([]ackRet, 0, len(acked))
	for _, t := range acked {
		byIdx = append(byIdx, ackRet{t.Index, t.Return})
	}
	sort.Slice(byIdx, func(i, j int) bool { return byIdx[i].index < byIdx[j].index })
	minRetFrom := make([]int64, len(byIdx)+1)
	minRetFrom[len(byIdx)] = 1<<63 - 1
	for i := len(byIdx) - 1; i >= 0; i-- {
		minRetFrom[i] = min(minRetFrom[i+1], byIdx[i].ret)
	}
	deadline := func(index uint64) int64 {
		return minRetFrom[sort.Search(len(byIdx), func(i int) bool { return byIdx[i].index >= index })]
	}
	keys := slices.SortedFunc(maps.Keys(unclaimed), func(a, b content) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	for _, c := range keys {
		evs := unclaimed[c]
		sort.Slice(evs, func(i, j int) bool { return deadline(evs[i].ev.Index) < deadline(evs[j].ev.Index) })
		calls := slices.Sorted(slices.Values(unknown[c]))
		used, avail := 0, 0
		for _, a := range evs {
			d := deadline(a.ev.Index)
			for avail < len(calls) && calls[avail] < d {
				avail++
			}
			if used == avail {
				add("%v belongs to no transfer: no transfer of %d from %s to %s with an unknown outcome is left that was called before %.3fs (the first acknowledgement at or after its index); a refused, conflicted or unsent transfer must not apply",
					a.ev, c.amount, c.from, c.to, float64(d)/1e9)
				continue
			}
			used++
		}
	}
	if !consistent {
		return nil, out
	}
	return tl, out
}

// sortAcked sorts the acknowledged transfers for bounds.
func (tl *timeline) sortAcked(transfers []TokenTransfer) {
	var acked []TokenTransfer
	for _, t := range transfers {
		if t.Outcome == Ok {
			acked = append(acked, t)
		}
	}
	byRet := slices.Clone(acked)
	sort.Slice(byRet, func(i, j int) bool { return byRet[i].Return < byRet[j].Return })
	var m uint64
	for _, t := range byRet {
		m = max(m, t.Index)
		tl.ackedReturn = append(tl.ackedReturn, t.Return)
		tl.ackedMax = append(tl.ackedMax, m)
	}
	byCall := slices.Clone(acked)
	sort.Slice(byCall, func(i, j int) bool { return byCall[i].Call < byCall[j].Call })
	tl.calledCall = make([]int64, len(byCall))
	tl.calledMin = make([]uint64, len(byCall))
	m = ^uint64(0)
	for i := len(byCall) - 1; i >= 0; i-- {
		m = min(m, byCall[i].Index)
		tl.calledCall[i], tl.calledMin[i] = byCall[i].Call, m
	}
}

// checkRefusals checks that every refusal rests on a committed state of
// its time: the balance it names is one the account held between its call
// (after every transfer acknowledged before) and its return, and does not
// cover the amount.
func (tl *timeline) checkRefusals(setup TokenSetup, transfers []TokenTransfer) []string {
	var out []string
	for _, t := range transfers {
		if !t.Refused() {
			continue
		}
		if t.FromBalance >= t.Amount {
			out = append(out, fmt.Sprintf("transfer %s was refused, but the balance it names, %d, covers the amount", t.String(), t.FromBalance))
			continue
		}
		lo, hi := tl.bounds(t.Call, t.Return, setup.Index, true)
		w := tl.window(lo, hi)
		if !slices.ContainsFunc(w, func(s step) bool { return s.balances[t.From] == t.FromBalance }) {
			out = append(out, fmt.Sprintf("transfer %s was refused because %s held %d, but no committed state between its call and its return (index %d to %s) has that: %s",
				t.String(), t.From, t.FromBalance, lo, describeHi(hi), describeWindow(w, []string{t.From})))
		}
	}
	return out
}

func describeHi(hi uint64) string {
	if hi == ^uint64(0) {
		return "the end"
	}
	return fmt.Sprintf("before %d", hi)
}

// checkReads checks every read against the committed states it may have
// seen.
func (tl *timeline) checkReads(setup TokenSetup, reads []TokenRead, accounts []string, total int64) []string {
	var out []string
	for _, r := range reads {
		if r.Kind == TokenSupply {
			if r.Supply != total {
				out = append(out, fmt.Sprintf("%s: supply %d; %d was minted", r.String(), r.Supply, total))
			}
			continue
		}
		if r.Kind == TokenTable {
			out = append(out, CheckBankRead(BankRead{Node: r.Node, Consistency: r.Consistency + " token_accounts", Index: r.Index, Balances: r.Balances}, accounts, total)...)
		}
		at := max(r.Index, setup.Index)
		if r.Consistency == MinIndex {
			at = max(at, r.MinIndex)
		}
		lo, hi := tl.bounds(r.Call, r.Return, at, r.Consistency == Linearizable)
		w := tl.window(lo, hi)
		read := slices.Sorted(maps.Keys(r.Balances))
		if !slices.ContainsFunc(w, func(s step) bool {
			for _, a := range read {
				if s.balances[a] != r.Balances[a] {
					return false
				}
			}
			return true
		}) {
			out = append(out, fmt.Sprintf("%s returned %v, which no committed state it may have seen holds (index %d to %s): %s",
				r.String(), r.Balances, lo, describeHi(hi), describeWindow(w, read)))
		}
	}
	return out
}
