package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
	"github.com/tandemdb/tandem/tests/harness"
)

// The example token contract (examples/token) and its tables.
const (
	tokenContract = "token"
	tokenPackage  = "examples/token"
	tokenAccounts = "token_accounts"
	tokenMeta     = "token_meta"
)

// token is the token workload: the bank's invariant kept by a contract.
// Every account is minted a balance before the faults; workers call the
// contract's transfer with random amounts (sometimes more than the
// balance, so that the contract refuses), and read balances and the
// supply through its read-only functions and the accounts table directly.
type token struct {
	accounts []string
	balance  int64 // minted to each account
	setupAt  checker.TokenSetup

	mu         sync.Mutex
	transfers  []checker.TokenTransfer
	reads      []checker.TokenRead
	readErrors map[string]int // failed reads by kind and error code
	finals     []checker.TokenState
	notes      []string
	unexpected []string // answers no call should get
}

func newToken(accounts int, balance int64) *token {
	w := &token{balance: balance, readErrors: map[string]int{}}
	for i := range accounts {
		w.accounts = append(w.accounts, fmt.Sprintf("k%d", i))
	}
	return w
}

func (w *token) name() string { return "token" }
func (w *token) workers() int { return 3 }

// setupClient is a client of member m for the setup, with room for a
// deploy (the receiving node compiles the module) and a first call (each
// node compiles it again after applying the deploy).
func setupClient(t *testing.T, r *run, m *member) *client.Client {
	cl, err := client.New([]string{m.node.URL()}, append(r.c.ClientOptions(), client.WithTimeout(time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (w *token) setup(t *testing.T, r *run) {
	createTable(t, r, tandem.TableSchema{Name: tokenAccounts, Attributes: map[string]tandem.AttrType{"balance": tandem.TypeInt}})
	createTable(t, r, tandem.TableSchema{Name: tokenMeta})
	cl := setupClient(t, r, r.current()[0])
	_, deployed, err := cl.DeployContract(t.Context(), tokenContract, harness.Contract(t, tokenPackage))
	if err != nil {
		t.Fatalf("deploy %s: %v", tokenPackage, err)
	}
	// Every node compiles the module once the deploy applies (seconds of
	// CPU, more on a loaded machine); a write call that waited for that
	// on the leader could outlast the server's write timeout, and init
	// and the mints cannot simply be retried. So first a read-only call on
	// every node, retried while it times out, which waits for the compile.
	for _, m := range r.current() {
		warm := setupClient(t, r, m)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			_, err := warm.CallContract(t.Context(), tokenContract, "supply", nil, client.MinIndex(deployed))
			if c := tandem.ErrorCode(err); err == nil || (c != tandem.CodeTimeout && c != tandem.CodeUnavailable) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the token contract on %s: %v", m.node.ID, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	call := func(fn string, arg any, opts ...client.ReadOption) *tandem.CallResult {
		res, err := cl.CallContract(t.Context(), tokenContract, fn, arg, opts...)
		if err != nil {
			t.Fatalf("token %s %v: %v", fn, arg, err)
		}
		return res
	}
	call("init", nil) // the harness's client is the admin: it may mint and move any account
	w.setupAt = checker.TokenSetup{Initial: map[string]int64{}}
	for _, a := range w.accounts {
		w.setupAt.Index = call("mint", map[string]any{"to": a, "amount": w.balance}).Index
		w.setupAt.Initial[a] = w.balance
	}
	// Every node has applied the mints and compiled the contract before
	// the workers start (as in the bank: no read can then go back before
	// the setup).
	want := fmt.Sprintf(`{"supply":%d}`, w.balance*int64(len(w.accounts)))
	for _, m := range r.current() {
		res, err := setupClient(t, r, m).CallContract(t.Context(), tokenContract, "supply", nil, client.MinIndex(w.setupAt.Index))
		if err != nil || string(res.Result) != want {
			t.Fatalf("token supply on %s after the mints: %v %v; want %s", m.node.ID, res, err, want)
		}
	}
}

type tokenAccount struct {
	ID      string `json:"id"`
	Balance int64  `json:"balance"`
}

func (w *token) work(ctx context.Context, r *run, worker int, rng *rand.Rand) {
	var session uint64 // the highest index this client saw
	for n := 0; ctx.Err() == nil; n++ {
		m := r.pick(rng)
		cons := consistencies[rng.IntN(len(consistencies))]
		var ok bool
		switch p := rng.IntN(20); {
		case p < 4:
			ok = w.readBalance(ctx, r, m, cons, &session, w.accounts[rng.IntN(len(w.accounts))])
		case p < 5:
			ok = w.readSupply(ctx, r, m, cons, &session)
		case p < 7:
			ok = w.readTable(ctx, r, m, cons, &session)
		default:
			ok = w.transfer(ctx, r, m, fmt.Sprintf("k%d.%d", worker, n), rng, &session)
		}
		if !ok {
			sleep(ctx, 50*time.Millisecond)
		}
	}
}

// transfer calls the contract's transfer, records the call, and reports
// whether it reached a server.
func (w *token) transfer(ctx context.Context, r *run, m *member, id string, rng *rand.Rand, session *uint64) bool {
	i := rng.IntN(len(w.accounts))
	tr := checker.TokenTransfer{ID: id, From: w.accounts[i], To: w.accounts[(i+1+rng.IntN(len(w.accounts)-1))%len(w.accounts)], Node: m.node.ID}
	tr.Amount = 1 + rng.Int64N(20)
	if rng.IntN(5) == 0 {
		tr.Amount = 50 + rng.Int64N(200) // often more than the balance
	}
	tr.Call = r.now()
	res, err := m.cl.CallContract(ctx, tokenContract, "transfer", map[string]any{"from": tr.From, "to": tr.To, "amount": tr.Amount})
	tr.Return = r.now()
	tr.Outcome, tr.Err = checker.Classify(err), errString(err)
	var problem string
	switch tr.Outcome {
	case checker.Ok:
		tr.Index = res.Index
		*session = max(*session, res.Index)
		var out struct{ From, To tokenAccount }
		if err := json.Unmarshal(res.Result, &out); err != nil || out.From.ID != tr.From || out.To.ID != tr.To {
			problem = fmt.Sprintf("transfer %s answered %s (%v)", tr.ID, res.Result, err)
		}
		tr.FromBalance, tr.ToBalance = out.From.Balance, out.To.Balance
	case checker.Fail:
		var ce *client.Error
		errors.As(err, &ce)
		tr.Code = string(ce.Code)
		switch {
		case tr.Code == checker.CodeConflict:
		case tr.Code == string(tandem.CodeContractFault) && strings.Contains(ce.Message, "time limit"):
			// A node paused (SIGSTOP) mid-call: the call's wall-clock
			// limit ran out, and its next request to the host aborted it
			// before it proposed. Not applied, as the checker then
			// verifies (no event for it).
		case tr.Code == checker.CodeRefused:
			// `insufficient balance: "k1" has 37, needs 50`
			var need int64
			_, serr := fmt.Sscanf(ce.Message[strings.LastIndex(ce.Message, " has ")+1:], "has %d, needs %d", &tr.FromBalance, &need)
			if !strings.HasPrefix(ce.Message, "insufficient balance") || serr != nil || need != tr.Amount {
				problem = fmt.Sprintf("transfer %s refused: %q", tr.ID, ce.Message)
			}
		default:
			problem = fmt.Sprintf("transfer %s on %s: %v", tr.ID, tr.Node, err)
		}
	}
	w.mu.Lock()
	w.transfers = append(w.transfers, tr)
	if problem != "" {
		w.unexpected = append(w.unexpected, problem)
	}
	w.mu.Unlock()
	return tr.Outcome != checker.NotSent
}

// newRead starts the record of a read.
func newRead(r *run, m *member, kind, cons string, session uint64) checker.TokenRead {
	rd := checker.TokenRead{Kind: kind, Node: m.node.ID, Consistency: cons, Call: r.now()}
	if cons == checker.MinIndex {
		rd.MinIndex = max(session, 1)
	}
	return rd
}

// record keeps an answered read, or counts a failed one; it reports
// whether the read was answered.
func (w *token) record(rd checker.TokenRead, err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		code := "transport"
		var ce *client.Error
		if errors.As(err, &ce) {
			code = fmt.Sprintf("%d %s", ce.Status, ce.Code)
		}
		w.readErrors[rd.Kind+" "+code]++
		return false
	}
	w.reads = append(w.reads, rd)
	return true
}

func (w *token) readBalance(ctx context.Context, r *run, m *member, cons string, session *uint64, account string) bool {
	rd := newRead(r, m, checker.TokenBalance, cons, *session)
	res, err := m.cl.CallContract(ctx, tokenContract, "balance", map[string]string{"account": account}, readOption(cons, *session))
	rd.Return = r.now()
	if err == nil {
		var a tokenAccount
		if err = json.Unmarshal(res.Result, &a); err == nil && a.ID != account {
			err = fmt.Errorf("balance of %s answered %s", account, res.Result)
		}
		rd.Index, rd.Balances = res.Index, map[string]int64{account: a.Balance}
		*session = max(*session, res.Index)
		if err != nil {
			w.mu.Lock()
			w.unexpected = append(w.unexpected, err.Error())
			w.mu.Unlock()
		}
	}
	return w.record(rd, err)
}

func (w *token) readSupply(ctx context.Context, r *run, m *member, cons string, session *uint64) bool {
	rd := newRead(r, m, checker.TokenSupply, cons, *session)
	res, err := m.cl.CallContract(ctx, tokenContract, "supply", nil, readOption(cons, *session))
	rd.Return = r.now()
	if err == nil {
		var s struct{ Supply int64 }
		if err = json.Unmarshal(res.Result, &s); err != nil {
			w.mu.Lock()
			w.unexpected = append(w.unexpected, fmt.Sprintf("supply answered %s: %v", res.Result, err))
			w.mu.Unlock()
		}
		rd.Index, rd.Supply = res.Index, s.Supply
		*session = max(*session, res.Index)
	}
	return w.record(rd, err)
}

// readTable reads every account with one query of the table.
func (w *token) readTable(ctx context.Context, r *run, m *member, cons string, session *uint64) bool {
	rd := newRead(r, m, checker.TokenTable, cons, *session)
	res, err := m.cl.Query(ctx, tokenAccounts, url.Values{"limit": {"1000"}}, readOption(cons, *session))
	rd.Return = r.now()
	if err == nil {
		rd.Balances = map[string]int64{}
		for _, raw := range res.Records {
			var a struct {
				tokenAccount
				Version uint64 `json:"_version"`
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				w.mu.Lock()
				w.unexpected = append(w.unexpected, fmt.Sprintf("account record %s: %v", raw, err))
				w.mu.Unlock()
				continue
			}
			rd.Balances[a.ID] = a.Balance
			rd.Index = max(rd.Index, a.Version) // the read includes every record's last write
		}
		*session = max(*session, rd.Index)
	}
	return w.record(rd, err)
}

func (w *token) final(t *testing.T, r *run) {
	ctx := t.Context()
	w.mu.Lock()
	w.finals = nil
	w.mu.Unlock()
	for _, m := range r.current() {
		// The reads are linearizable: retry while the cluster settles (a
		// leader elected after healing).
		st, err := w.finalState(ctx, m)
		for try := 1; err != nil && try < 10 && sleep(ctx, 500*time.Millisecond); try++ {
			st, err = w.finalState(ctx, m)
		}
		if err != nil {
			r.errorf(t, "final token state on %s: %v", m.node.ID, err)
			continue
		}
		w.mu.Lock()
		w.finals = append(w.finals, st)
		w.mu.Unlock()
	}
}

// finalState reads one node's balances (the table, and the contract's
// balance function for each account), supply and events, linearizably.
func (w *token) finalState(ctx context.Context, m *member) (checker.TokenState, error) {
	st := checker.TokenState{Node: m.node.ID, Balances: map[string]int64{}, Called: map[string]int64{}}
	recs, err := readAll(ctx, m.cl, tokenAccounts, client.Linearizable())
	if err != nil {
		return st, err
	}
	for _, raw := range recs {
		var a tokenAccount
		if err := json.Unmarshal(raw, &a); err != nil {
			return st, fmt.Errorf("account %s: %v", raw, err)
		}
		st.Balances[a.ID] = a.Balance
	}
	for _, a := range w.accounts {
		res, err := m.cl.CallContract(ctx, tokenContract, "balance", map[string]string{"account": a}, client.Linearizable())
		if err != nil {
			return st, err
		}
		var acc tokenAccount
		if err := json.Unmarshal(res.Result, &acc); err != nil {
			return st, fmt.Errorf("balance of %s: %s: %v", a, res.Result, err)
		}
		st.Called[a] = acc.Balance
	}
	res, err := m.cl.CallContract(ctx, tokenContract, "supply", nil, client.Linearizable())
	if err != nil {
		return st, err
	}
	var s struct{ Supply int64 }
	if err := json.Unmarshal(res.Result, &s); err != nil {
		return st, fmt.Errorf("supply: %s: %v", res.Result, err)
	}
	st.Supply = s.Supply
	st.Events, err = readEvents(ctx, m.cl)
	return st, err
}

// eventPage is the page size of readEvents: small, so that a run reads
// many pages and the paging is tested too.
const eventPage = 100

// readEvents lists every token event, page by page as docs/api.md says:
// each page continues after the last index of the one before.
func readEvents(ctx context.Context, cl *client.Client) ([]checker.TokenEvent, error) {
	out := []checker.TokenEvent{}
	for after := uint64(0); ; {
		evs, err := cl.Events(ctx, after, eventPage, client.Linearizable())
		if err != nil || len(evs) == 0 {
			return out, err
		}
		for _, ev := range evs {
			var p struct {
				From, To string
				Amount   int64
			}
			if ev.Contract != tokenContract {
				return nil, fmt.Errorf("event of contract %q: only %q is deployed", ev.Contract, tokenContract)
			}
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				return nil, fmt.Errorf("event %d.%d payload %s: %v", ev.Index, ev.Seq, ev.Payload, err)
			}
			out = append(out, checker.TokenEvent{Index: ev.Index, Seq: ev.Seq, Topic: ev.Topic, From: p.From, To: p.To, Amount: p.Amount})
		}
		after = evs[len(evs)-1].Index
	}
}

func (w *token) check(t *testing.T, r *run) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	res := checker.CheckToken(w.setupAt, w.transfers, w.reads, w.finals)
	w.notes = res.Notes
	return append(slices.Clone(w.unexpected), res.Violations...)
}

func (w *token) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	counts := map[string]int{}
	for _, tr := range w.transfers {
		switch {
		case tr.Refused():
			counts["transfer refused"]++
		case tr.Outcome == checker.Fail:
			counts["transfer "+tr.Code]++
		default:
			counts["transfer "+string(tr.Outcome)]++
		}
	}
	for _, rd := range w.reads {
		counts[rd.Kind+"/"+rd.Consistency]++
	}
	var events []string
	for _, st := range w.finals {
		events = append(events, fmt.Sprintf("%s %d", st.Node, len(st.Events)))
	}
	s := fmt.Sprintf("%s; failed reads %s; events at the end: %s", formatCounts(counts), formatCounts(w.readErrors), strings.Join(events, ", "))
	if len(w.notes) > 0 {
		s += "; " + strings.Join(w.notes, "; ")
	}
	return s
}

func (w *token) save(dir string, r *run) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return writeJSON(dir, "token.json", map[string]any{
		"setup":       w.setupAt,
		"transfers":   w.transfers,
		"reads":       w.reads,
		"read_errors": maps.Clone(w.readErrors),
		"finals":      w.finals,
	})
}
