package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/chaos/checker"
)

const (
	accountsTable  = "accounts"
	transfersTable = "transfers"
)

// bank is the bank workload: transfers between accounts, each a
// transaction that requires both accounts at the versions read, patches
// both balances and inserts a transfer record; and reads of every account.
type bank struct {
	accounts []string
	initial  map[string]int64

	mu         sync.Mutex
	transfers  []checker.Transfer
	reads      []checker.BankRead
	finals     []checker.BankState
	unexpected []string // client errors no transfer should get
}

func newBank(accounts int, balance int64) *bank {
	w := &bank{initial: map[string]int64{}}
	for i := range accounts {
		a := fmt.Sprintf("a%d", i)
		w.accounts = append(w.accounts, a)
		w.initial[a] = balance
	}
	return w
}

func (w *bank) name() string { return "bank" }
func (w *bank) workers() int { return 3 }

func (w *bank) setup(t *testing.T, r *run) {
	createTable(t, r, tandem.TableSchema{Name: accountsTable, Attributes: map[string]tandem.AttrType{"id": "string", "balance": "int"}})
	createTable(t, r, tandem.TableSchema{Name: transfersTable, Attributes: map[string]tandem.AttrType{"id": "string", "from": "string", "to": "string", "amount": "int"}})
	cl := r.current()[0].cl
	var last uint64
	for _, a := range w.accounts {
		res, err := cl.Put(t.Context(), accountsTable, a, map[string]any{"balance": w.initial[a]})
		if err != nil {
			t.Fatalf("create account %s: %v", a, err)
		}
		last = res.Index
	}
	// Every node applies the accounts before the workers start: a stale
	// local read may legitimately miss an account created a moment ago, and
	// since reads on one node never go back in time, after this none can.
	for _, m := range r.current() {
		if _, err := m.cl.Get(t.Context(), accountsTable, w.accounts[len(w.accounts)-1], client.MinIndex(last)); err != nil {
			t.Fatalf("node %s applying the accounts: %v", m.node.ID, err)
		}
	}
}

type account struct {
	ID      string `json:"id"`
	Balance int64  `json:"balance"`
}

func (w *bank) work(ctx context.Context, r *run, worker int, rng *rand.Rand) {
	var session uint64 // the highest index this client saw
	for n := 0; ctx.Err() == nil; n++ {
		m := r.pick(rng)
		cons := consistencies[rng.IntN(len(consistencies))]
		if rng.IntN(4) == 0 {
			if !w.readBalances(ctx, r, m, cons, session) {
				sleep(ctx, 50*time.Millisecond)
			}
			continue
		}
		i := rng.IntN(len(w.accounts))
		from, to := w.accounts[i], w.accounts[(i+1+rng.IntN(len(w.accounts)-1))%len(w.accounts)]
		var recs [2]client.Record
		var bals [2]account
		var err error
		for k, a := range []string{from, to} {
			if recs[k], err = m.cl.Get(ctx, accountsTable, a, readOption(cons, session)); err != nil {
				break
			}
			if err = recs[k].Decode(&bals[k]); err != nil {
				break
			}
			session = max(session, recs[k].Index)
		}
		if err != nil {
			sleep(ctx, 50*time.Millisecond)
			continue
		}
		if bals[0].Balance <= 0 {
			continue
		}
		tr := checker.Transfer{ID: fmt.Sprintf("t%d.%d", worker, n), From: from, To: to, Amount: 1 + rng.Int64N(min(bals[0].Balance, 20)), Node: m.node.ID}
		transfer, _ := json.Marshal(map[string]any{"id": tr.ID, "from": from, "to": to, "amount": tr.Amount})
		tx := tandem.Tx{
			Conditions: []tandem.Condition{
				{Kind: tandem.CondVersion, Table: accountsTable, Key: from, Version: recs[0].Version},
				{Kind: tandem.CondVersion, Table: accountsTable, Key: to, Version: recs[1].Version},
			},
			Ops: []tandem.Op{
				{Op: tandem.OpPatch, Table: accountsTable, Key: from, Record: balance(bals[0].Balance - tr.Amount)},
				{Op: tandem.OpPatch, Table: accountsTable, Key: to, Record: balance(bals[1].Balance + tr.Amount)},
				{Op: tandem.OpInsert, Table: transfersTable, Record: transfer},
			},
		}
		tr.Call = r.now()
		tr.Index, err = m.cl.Tx(ctx, tx)
		tr.Return = r.now()
		tr.Outcome, tr.Err = checker.Classify(err), errString(err)
		session = max(session, tr.Index)
		w.mu.Lock()
		w.transfers = append(w.transfers, tr)
		if tr.Outcome == checker.Fail && !client.IsCode(err, tandem.CodeConflict) {
			w.unexpected = append(w.unexpected, fmt.Sprintf("transfer %s on %s: %v", tr.ID, tr.Node, err))
		}
		w.mu.Unlock()
	}
}

func balance(b int64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"balance":%d}`, b))
}

// readBalances reads every account with one query, and reports whether
// it got an answer.
func (w *bank) readBalances(ctx context.Context, r *run, m *member, cons string, session uint64) bool {
	rd := checker.BankRead{Node: m.node.ID, Consistency: cons, Balances: map[string]int64{}}
	if cons == checker.MinIndex {
		rd.MinIndex = max(session, 1)
	}
	rd.Call = r.now()
	res, err := m.cl.Query(ctx, accountsTable, url.Values{"limit": {"1000"}}, readOption(cons, session))
	rd.Return = r.now()
	if err != nil {
		return false
	}
	for _, raw := range res.Records {
		var a account
		if err := json.Unmarshal(raw, &a); err != nil {
			w.mu.Lock()
			w.unexpected = append(w.unexpected, fmt.Sprintf("account record %s: %v", raw, err))
			w.mu.Unlock()
			continue
		}
		rd.Balances[a.ID] = a.Balance
	}
	w.mu.Lock()
	w.reads = append(w.reads, rd)
	w.mu.Unlock()
	return true
}

func (w *bank) final(t *testing.T, r *run) {
	w.mu.Lock()
	w.finals = nil
	w.mu.Unlock()
	for _, m := range r.current() {
		st := checker.BankState{Node: m.node.ID, Balances: map[string]int64{}, Transfers: map[string]checker.Transfer{}}
		accts, err := readAll(t.Context(), m.cl, accountsTable)
		if err != nil {
			r.errorf(t, "final read of the accounts on %s: %v", m.node.ID, err)
			continue
		}
		for _, raw := range accts {
			var a account
			if err := json.Unmarshal(raw, &a); err != nil {
				r.errorf(t, "%s: account %s: %v", m.node.ID, raw, err)
			}
			st.Balances[a.ID] = a.Balance
		}
		trs, err := readAll(t.Context(), m.cl, transfersTable)
		if err != nil {
			r.errorf(t, "final read of the transfers on %s: %v", m.node.ID, err)
			continue
		}
		for _, raw := range trs {
			var tr checker.Transfer
			if err := json.Unmarshal(raw, &tr); err != nil {
				r.errorf(t, "%s: transfer %s: %v", m.node.ID, raw, err)
			}
			if _, dup := st.Transfers[tr.ID]; dup {
				r.errorf(t, "%s lists transfer %s twice", m.node.ID, tr.ID)
			}
			st.Transfers[tr.ID] = checker.Transfer{ID: tr.ID, From: tr.From, To: tr.To, Amount: tr.Amount}
		}
		w.mu.Lock()
		w.finals = append(w.finals, st)
		w.mu.Unlock()
	}
}

func (w *bank) check(t *testing.T, r *run) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.unexpected)
	var total int64
	for _, b := range w.initial {
		total += b
	}
	for _, rd := range w.reads {
		out = append(out, checker.CheckBankRead(rd, w.accounts, total)...)
	}
	for _, st := range w.finals {
		out = append(out, checker.CheckBankFinal(st, w.initial, w.transfers)...)
	}
	if len(w.finals) == 0 {
		out = append(out, "no node's final state could be read")
	}
	return out
}

func (w *bank) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	counts := map[string]int{}
	for _, tr := range w.transfers {
		counts["transfer "+string(tr.Outcome)]++
	}
	for _, rd := range w.reads {
		counts["read/"+rd.Consistency]++
	}
	var recorded []string
	for _, st := range w.finals {
		recorded = append(recorded, fmt.Sprintf("%s %d", st.Node, len(st.Transfers)))
	}
	return fmt.Sprintf("%s; transfers recorded at the end: %s", formatCounts(counts), strings.Join(recorded, ", "))
}

func (w *bank) save(dir string, r *run) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return writeJSON(dir, "bank.json", map[string]any{
		"initial":   w.initial,
		"transfers": w.transfers,
		"reads":     w.reads,
		"finals":    w.finals,
	})
}
