package contract_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/contract"
	"github.com/tandemdb/tandem/tests/harness"
)

// fakeLog applies submitted commands in order, one entry per command,
// after a delay (the replication round trip), so that calls overlap.
type fakeLog struct {
	e     *env
	mu    sync.Mutex // serialises apply, in submission order
	queue chan func()
}

func newFakeLog(e *env) *fakeLog {
	l := &fakeLog{e: e, queue: make(chan func(), 1024)}
	go func() {
		for f := range l.queue {
			time.Sleep(200 * time.Microsecond)
			f()
		}
	}()
	return l
}

func (l *fakeLog) submit(_ context.Context, cmd tandem.Command) (func(context.Context) (tandem.Result, error), error) {
	done := make(chan tandem.Result, 1)
	l.queue <- func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		done <- l.e.apply(cmd)[0]
	}
	return func(ctx context.Context) (tandem.Result, error) { return <-done, nil }, nil
}

func (l *fakeLog) propose(ctx context.Context, cmd tandem.Command) (tandem.Result, error) {
	wait, _ := l.submit(ctx, cmd)
	return wait(ctx)
}

func tokenEngine(t *testing.T, leader bool) (*env, *contract.Engine) {
	e := tokenEnv(t)
	e.commit("token", "mint", map[string]any{"to": "hot", "amount": 1000})
	l := newFakeLog(e)
	opts := contract.EngineOptions{
		Runtime: e.rt,
		View: func() (contract.ClosingView, error) {
			v, err := e.s.View()
			if err != nil {
				return nil, err
			}
			return v, nil
		},
		Propose:     l.propose,
		WaitApplied: func(context.Context, uint64) error { return nil },
		ReadIndex:   func(context.Context) (uint64, error) { return e.s.AppliedIndex(), nil },
	}
	if leader {
		opts.IsLeader = func() bool { return true }
		opts.Submit = l.submit
		opts.Forward = func(context.Context, tandem.ContractCall) (*tandem.CallResult, error) {
			t.Error("a leader forwarded a call")
			return nil, nil
		}
	}
	return e, contract.NewEngine(opts)
}

// TestEngineHotAccount: concurrent transfers out of one account all
// commit and keep the sum. On the leader, calls read the writes of calls in
// flight (the overlay), so they chain instead of failing at apply; the
// optimistic mode must also stay correct (conflicts retried, never lost).
func TestEngineHotAccount(t *testing.T) {
	for _, leader := range []bool{true, false} {
		t.Run(fmt.Sprintf("leader=%t", leader), func(t *testing.T) {
			e, eng := tokenEngine(t, leader)
			const workers, each = 8, 10
			var wg sync.WaitGroup
			var mu sync.Mutex
			attempts, failed := 0, 0
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						arg, _ := json.Marshal(map[string]any{"from": "hot", "to": fmt.Sprint("w", w), "amount": 1})
						res, err := eng.Call(t.Context(), tandem.ContractCall{Contract: "token", Function: "transfer", Arg: arg, Caller: "alice"})
						mu.Lock()
						if err != nil {
							failed++
							t.Logf("worker %d call %d: %v", w, i, err)
						} else {
							attempts += res.Attempts
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			hot := balanceOf(t, e, "hot")
			if want := 1000 - (workers*each - failed); hot != want {
				t.Fatalf("hot balance %d, want %d (%d calls failed)", hot, want, failed)
			}
			t.Logf("%d transfers, %d failed, %d executions proposed", workers*each, failed, attempts)
			if leader && (failed > 0 || attempts > workers*each*2) {
				t.Fatalf("leader mode: %d failed, %d proposals for %d calls", failed, attempts, workers*each)
			}
		})
	}
}

// TestEngineOverdraw: concurrent transfers that ask for more than the hot
// account holds. Refusals (computed over in-flight writes on the leader,
// then confirmed on committed state) and successes add up: the balance is
// never negative and every committed transfer is accounted for.
func TestEngineOverdraw(t *testing.T) {
	for _, leader := range []bool{true, false} {
		t.Run(fmt.Sprintf("leader=%t", leader), func(t *testing.T) {
			e, eng := tokenEngine(t, leader)
			const workers, each, amount = 6, 10, 30 // asks for 1800 of 1000
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, refused := 0, 0
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						arg, _ := json.Marshal(map[string]any{"from": "hot", "to": fmt.Sprint("w", w), "amount": amount})
						_, err := eng.Call(t.Context(), tandem.ContractCall{Contract: "token", Function: "transfer", Arg: arg, Caller: "alice"})
						mu.Lock()
						switch tandem.ErrorCode(err) {
						case "":
							ok++
						case tandem.CodeContractError:
							refused++
						case tandem.CodeConflict:
							// Optimistic mode may give up on a hot record
							// (409: nothing applied); the leader must not.
							if leader {
								t.Errorf("transfer: %v", err)
							}
						default:
							t.Errorf("transfer: %v", err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			hot := balanceOf(t, e, "hot")
			if hot < 0 || hot != 1000-ok*amount || (leader && hot >= amount) {
				t.Fatalf("hot balance %d after %d transfers of %d (%d refused)", hot, ok, amount, refused)
			}
		})
	}
}

// balanceOf reads a token account's committed balance.
func balanceOf(t *testing.T, e *env, account string) int {
	t.Helper()
	rd, err := e.s.Get("token_accounts", account)
	if err != nil {
		t.Fatal(err)
	}
	var acc struct{ Balance int }
	if err := json.Unmarshal(rd.JSON, &acc); err != nil {
		t.Fatal(err)
	}
	return acc.Balance
}

// TestEngineLaggingState: a node whose store is behind the log (a leader
// just restarted: its store comes back at its last flush and Raft applies
// the rest later) must not answer "no such contract" from that state. It
// runs the call again once it has applied a fresh read index, which here
// holds the deploy. (Found by the chaos suite's token workload: forwarded
// transfers got 404 from a restarted leader.)
func TestEngineLaggingState(t *testing.T) {
	for _, leader := range []bool{true, false} {
		t.Run(fmt.Sprintf("leader=%t", leader), func(t *testing.T) {
			e := newEnv(t, contract.Options{})
			e.createTable(tandem.TableSchema{Name: "token_accounts", Attributes: map[string]tandem.AttrType{"balance": tandem.TypeInt}})
			e.createTable(tandem.TableSchema{Name: "token_meta"})
			l := newFakeLog(e)
			var catchUp sync.Once
			opts := contract.EngineOptions{
				Runtime: e.rt,
				View: func() (contract.ClosingView, error) {
					v, err := e.s.View()
					if err != nil {
						return nil, err
					}
					return v, nil
				},
				Propose: l.propose,
				// The committed state holds the deploy; this store applies
				// it only when asked to wait for it.
				ReadIndex: func(context.Context) (uint64, error) { return 3, nil },
				WaitApplied: func(context.Context, uint64) error {
					catchUp.Do(func() { e.deploy("token", harness.Contract(t, "examples/token")) })
					return nil
				},
			}
			if leader {
				opts.IsLeader = func() bool { return true }
				opts.Submit = l.submit
				opts.Forward = func(context.Context, tandem.ContractCall) (*tandem.CallResult, error) {
					t.Error("a leader forwarded a call")
					return nil, nil
				}
			}
			res, err := contract.NewEngine(opts).Call(t.Context(), tandem.ContractCall{Contract: "token", Function: "init", Caller: "alice"})
			if err != nil {
				t.Fatalf("init on a store behind the deploy: %v", err)
			}
			if string(res.Result) != `{"id":"config","admin":"alice","supply":0}` {
				t.Fatalf("init answered %s", res.Result)
			}
		})
	}
}
