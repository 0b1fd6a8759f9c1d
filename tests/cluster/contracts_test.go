package cluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
	"github.com/tandemdb/tandem/tests/harness"
)

// deployToken creates the example token's tables, deploys it and makes the
// (anonymous) caller its admin. It returns the deploy's log index.
func deployToken(t *testing.T, cl *client.Client) uint64 {
	t.Helper()
	createTable(t, cl, tandem.TableSchema{Name: "token_accounts", Attributes: map[string]tandem.AttrType{"balance": tandem.TypeInt}})
	createTable(t, cl, tandem.TableSchema{Name: "token_meta"})
	info, idx, err := cl.DeployContract(t.Context(), "token", harness.Contract(t, "examples/token"))
	if err != nil {
		t.Fatalf("deploy token: %v", err)
	}
	if info.Name != "token" || len(info.Versions) == 0 || info.Active != uint64(len(info.Versions)) {
		t.Fatalf("deploy token: got %+v", info)
	}
	if _, err := cl.CallContract(t.Context(), "token", "init", nil); err != nil {
		t.Fatalf("token init: %v", err)
	}
	return idx
}

func callToken(t *testing.T, cl *client.Client, fn string, arg any, opts ...client.ReadOption) *tandem.CallResult {
	t.Helper()
	res, err := cl.CallContract(t.Context(), "token", fn, arg, opts...)
	if err != nil {
		t.Fatalf("token %s %v: %v", fn, arg, err)
	}
	return res
}

// TestContractLifecycle: deploy through one node and call through every
// node; a bad module gets a 400 and nothing is replicated; versions and
// rollback switch on every node at the same index; events are recorded on
// every node; contracts that loop, panic or exhaust memory fail their own
// calls while others keep succeeding; a restarted node and a new node get
// the contracts back from replicated state.
func TestContractLifecycle(t *testing.T) {
	// A tenth of the default fuel: the runaway loop below then stops in
	// well under a second of a busy machine's time (the default took 8.7 s
	// under make test, long enough for a transfer worker to drain its
	// account and fail the test).
	c := harness.Start(t, harness.Options{Nodes: 3, ExtraArgs: []string{"--contract-timeout", "1s", "--contract-memory-pages", "512", "--contract-fuel", "100000000"}})
	cl := clusterClient(t, c, client.WithTimeout(60*time.Second))
	ctx := t.Context()
	deployToken(t, cl.Node(0))

	// A bad module is refused before anything is proposed.
	_, _, err := cl.Node(1).DeployContract(ctx, "broken", []byte("\x00asm\x01\x00\x00\x00"))
	if ce := wantAPIError(t, err, 400); !strings.Contains(ce.Message, "tandem_alloc") {
		t.Fatalf("bad module: %v", ce)
	}

	// Calls through every node.
	callToken(t, cl.Node(1), "mint", map[string]any{"to": "alice", "amount": 1000})
	var last uint64
	for i := range c.Nodes {
		res := callToken(t, cl.Node(i), "transfer", map[string]any{"from": "alice", "to": fmt.Sprint("u", i), "amount": 10 * (i + 1)})
		if res.Index <= last {
			t.Fatalf("node %d: transfer committed at %d, after %d", i, res.Index, last)
		}
		last = res.Index
	}
	for i := range c.Nodes {
		res := callToken(t, cl.Node(i), "balance", map[string]string{"account": "alice"}, client.MinIndex(last))
		if string(res.Result) != `{"id":"alice","balance":940}` {
			t.Fatalf("node %d: balance %s", i, res.Result)
		}
		list, err := cl.Node(i).Contracts(ctx, client.MinIndex(last))
		if err != nil || len(list) != 1 || list[0].Name != "token" {
			t.Fatalf("node %d lists %+v, %v (only token was deployed)", i, list, err)
		}
		evs, err := cl.Node(i).Events(ctx, 0, 100, client.MinIndex(last))
		if err != nil || len(evs) != 4 || evs[0].Topic != "mint" || evs[3].Topic != "transfer" || evs[3].Index != last {
			t.Fatalf("node %d events %+v, %v", i, evs, err)
		}
	}

	// A second version, then a rollback: every node sees the same active
	// version at the same index.
	createTable(t, cl, tandem.TableSchema{Name: "kv", Attributes: map[string]tandem.AttrType{"n": tandem.TypeInt}})
	v2, idx, err := cl.Node(2).DeployContract(ctx, "token", harness.Contract(t, "examples/token"))
	if err != nil || v2.Active != 2 || len(v2.Versions) != 2 {
		t.Fatalf("deploy v2: %+v, %v", v2, err)
	}
	if res := callToken(t, cl.Node(0), "supply", nil, client.MinIndex(idx)); res.Version != 2 {
		t.Fatalf("supply ran version %d, want 2", res.Version)
	}
	rb, err := cl.Node(1).RollbackContract(ctx, "token", 1)
	if err != nil || rb.Active != 1 {
		t.Fatalf("rollback: %+v, %v", rb, err)
	}
	for i := range c.Nodes {
		got, err := cl.Node(i).Contract(ctx, "token")
		if err != nil || !reflect.DeepEqual(got, rb) {
			t.Fatalf("node %d: contract %+v, %v; want %+v", i, got, err, rb)
		}
	}
	if res := callToken(t, cl.Node(2), "transfer", map[string]any{"from": "alice", "to": "bob", "amount": 1}); res.Version != 1 {
		t.Fatalf("transfer after rollback ran version %d", res.Version)
	}
	// Deploys and rollbacks are in the audit log, with who did them, on
	// every node (the entry is applied with the change itself).
	for i := range c.Nodes {
		page, err := cl.Node(i).Audit(ctx, client.AuditFilter{Principal: harness.AdminUser}) // linearizable: sees the rollback
		if err != nil {
			t.Fatal(err)
		}
		var deploys, rollbacks int
		for _, e := range page.Entries {
			switch {
			case e.Action == "deploy_contract" && e.Target == "token":
				deploys++
			case e.Action == "rollback_contract" && e.Target == "token@1":
				rollbacks++
			}
		}
		if deploys != 2 || rollbacks != 1 {
			t.Fatalf("node %d audit: %d deploys and %d rollbacks of token, want 2 and 1: %+v", i, deploys, rollbacks, page.Entries)
		}
	}

	// Limits: misbehaving calls fail alone while transfers go on (each
	// worker on its own accounts: this is not about contention).
	if _, _, err := cl.DeployContract(ctx, "probe", harness.Contract(t, "contract/testdata/probe")); err != nil {
		t.Fatal(err)
	}
	for i := range c.Nodes {
		// Enough that no worker runs dry however long the probes take.
		callToken(t, cl, "mint", map[string]any{"to": fmt.Sprint("w", i), "amount": 1_000_000})
	}
	var wg sync.WaitGroup
	var good atomic.Int64
	stop := make(chan struct{})
	for i := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := cl.Node(i).CallContract(ctx, "token", "transfer", map[string]any{"from": fmt.Sprint("w", i), "to": fmt.Sprint("sink", i), "amount": 1}); err != nil {
					t.Errorf("transfer during faults: %v", err)
					return
				}
				good.Add(1)
			}
		}()
	}
	for i, fn := range []string{"loop", "panic", "bomb"} {
		start := time.Now()
		_, err := cl.Node(i%3).CallContract(ctx, "probe", fn, nil)
		ce := wantAPIError(t, err, 422)
		if ce.Code != tandem.CodeContractFault {
			t.Errorf("%s: code %s", fn, ce.Code)
		}
		t.Logf("%s failed after %v: %s", fn, time.Since(start).Round(time.Millisecond), ce.Message)
	}
	close(stop)
	wg.Wait()
	if good.Load() == 0 {
		t.Fatal("no transfer succeeded while contracts misbehaved")
	}

	// Restart one node and add another: contracts come back from the
	// replicated state (log replay or snapshot).
	c.Stop(c.Nodes[2])
	c.Start(c.Nodes[2])
	n4 := c.NewNode(false)
	c.Start(n4)
	c.WaitReady(c.Nodes[2], 30*time.Second)
	c.WaitReady(n4, 30*time.Second)
	applied, _ := c.WaitConverged(30 * time.Second)
	cl = clusterClient(t, c)
	want, err := cl.Node(0).Contract(ctx, "token")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 3} {
		got, err := cl.Node(i).Contract(ctx, "token", client.MinIndex(applied))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s after restart/join: %+v, %v; want %+v", c.Nodes[i].ID, got, err, want)
		}
		res := callToken(t, cl.Node(i), "supply", nil, client.MinIndex(applied))
		if string(res.Result) != `{"supply":3001000}` || res.Version != 1 {
			t.Fatalf("%s: supply %s (version %d)", c.Nodes[i].ID, res.Result, res.Version)
		}
	}
	callToken(t, cl.Node(3), "transfer", map[string]any{"from": "alice", "to": "new", "amount": 1})
}

// TestContractTokenLeaderKill: hundreds of concurrent transfers between
// random accounts, sent to every node, with the leader SIGKILLed in the
// middle. Calls that time out or lose their node have an unknown outcome;
// whatever happened, the total supply is constant, no balance is negative,
// and every node holds the same balances.
func TestContractTokenLeaderKill(t *testing.T) {
	c := harness.Start(t, harness.Options{Nodes: 3})
	// The first call on each node waits for the module to compile, seconds
	// on a loaded machine: setup and checks get a patient client, the
	// transfers a short timeout (a call lost with the leader is unknown).
	cl := clusterClient(t, c, client.WithTimeout(60*time.Second))
	deployToken(t, cl)
	const accounts, each = 20, 100
	for a := range accounts {
		callToken(t, cl, "mint", map[string]any{"to": fmt.Sprint("acct", a), "amount": each})
	}
	for i := range c.Nodes {
		callToken(t, cl.Node(i), "supply", nil)
	}
	leader := c.Leader(10 * time.Second)
	transfers := clusterClient(t, c, client.WithTimeout(5*time.Second))

	const workers = 24
	var (
		ok, refused, unknown atomic.Int64
		stop                 atomic.Bool
		wg                   sync.WaitGroup
		kindsMu              sync.Mutex
		kinds                = map[string]int{} // unknown outcomes by kind, for the log
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			node := transfers.Node(w % len(c.Nodes))
			for !stop.Load() {
				from, to := rng.IntN(accounts), rng.IntN(accounts)
				if from == to {
					continue
				}
				_, err := node.CallContract(t.Context(), "token", "transfer", map[string]any{
					"from": fmt.Sprint("acct", from), "to": fmt.Sprint("acct", to), "amount": 1 + rng.IntN(30)})
				var ce *client.Error
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &ce) && ce.Code == tandem.CodeContractError:
					refused.Add(1) // insufficient balance: the rule held
				default:
					unknown.Add(1) // timeout, node down, conflict budget: outcome unknown
					kind := "transport"
					if ce != nil {
						kind = string(ce.Code)
					}
					kindsMu.Lock()
					kinds[kind]++
					kindsMu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	// Kill once the load is under way (how fast depends on the machine).
	for deadline := time.Now().Add(10 * time.Second); ok.Load() < 50 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	c.Kill(leader)
	time.Sleep(3 * time.Second)
	stop.Store(true)
	wg.Wait()
	c.Start(leader)
	c.WaitReady(leader, 30*time.Second)
	applied, _ := c.WaitConverged(30 * time.Second)
	t.Logf("transfers: %d committed, %d refused by the contract, %d unknown %v", ok.Load(), refused.Load(), unknown.Load(), kinds)
	if ok.Load() < 50 {
		t.Fatalf("only %d transfers committed", ok.Load())
	}

	var first map[string]int64
	for i, n := range c.Nodes {
		total, balances := int64(0), map[string]int64{}
		for _, raw := range dumpTable(t, cl.Node(i), "token_accounts", client.MinIndex(applied)) {
			var acc struct {
				ID      string `json:"id"`
				Balance int64  `json:"balance"`
			}
			if err := json.Unmarshal([]byte(raw), &acc); err != nil {
				t.Fatal(err)
			}
			if acc.Balance < 0 {
				t.Errorf("%s: %s has a negative balance %d", n.ID, acc.ID, acc.Balance)
			}
			total += acc.Balance
			balances[acc.ID] = acc.Balance
		}
		if total != accounts*each {
			t.Errorf("%s: total supply %d, want %d", n.ID, total, accounts*each)
		}
		if first == nil {
			first = balances
		} else if !reflect.DeepEqual(first, balances) {
			t.Errorf("%s holds other balances than %s", n.ID, c.Nodes[0].ID)
		}
		res := callToken(t, cl.Node(i), "supply", nil, client.MinIndex(applied))
		if string(res.Result) != fmt.Sprintf(`{"supply":%d}`, accounts*each) {
			t.Errorf("%s: supply %s", n.ID, res.Result)
		}
	}
}
