package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
)

// Contract workloads drive the example token contract (examples/token):
// Config.Contract holds its module. Accounts are "a0".."a{Keys-1}", each
// preloaded with a large balance so no transfer is refused.
const (
	// WorkloadTransfer calls token.transfer between two random accounts
	// (low contention).
	WorkloadTransfer Workload = "transfer"
	// WorkloadTransferHot calls token.transfer from or to account a0 every
	// time (one hot record).
	WorkloadTransferHot Workload = "transfer-hot"
	// WorkloadTransferTx is the built-in equivalent of a transfer for the
	// per-call overhead: POST /v1/tx upserting both accounts, without a
	// contract (and without its balance check).
	WorkloadTransferTx Workload = "transfer-tx"
)

// Tables and contract name of the token workloads.
const (
	tokenContract = "token"
	tokenAccounts = "token_accounts"
	tokenMeta     = "token_meta"
	tokenBalance  = 1 << 40
)

func (w Workload) contract() bool {
	return w == WorkloadTransfer || w == WorkloadTransferHot || w == WorkloadTransferTx
}

// ContractConn is implemented by connections that can call contracts.
type ContractConn interface {
	Transfer(ctx context.Context, from, to string, builtin bool) error
}

func accountName(i int) string { return "a" + strconv.Itoa(i) }

// prepareToken creates the token's tables, preloads the accounts with
// /v1/tx, and deploys the contract (timing deploy to first call: the cold
// start). It needs the Tandem target.
func prepareToken(ctx context.Context, cfg *Config) (coldStart time.Duration, err error) {
	t, ok := cfg.Target.(*TandemTarget)
	if !ok {
		return 0, errors.New("bench: contract workloads need the Tandem target")
	}
	if cfg.Workload != WorkloadTransferTx && len(cfg.Contract) == 0 {
		return 0, errors.New("bench: contract workloads need the token module (Config.Contract; build examples/token)")
	}
	c := t.c
	for _, sc := range []tandem.TableSchema{
		{Name: tokenAccounts, Attributes: map[string]tandem.AttrType{"balance": tandem.TypeInt}},
		{Name: tokenMeta},
	} {
		if _, _, err := c.CreateTable(ctx, sc); err != nil {
			return 0, fmt.Errorf("bench: create table %s: %w", sc.Name, err)
		}
	}
	for i := 0; i < cfg.Keys; i += 500 {
		tx := tandem.Tx{}
		for j := i; j < min(i+500, cfg.Keys); j++ {
			rec, _ := json.Marshal(map[string]any{"id": accountName(j), "balance": tokenBalance})
			tx.Ops = append(tx.Ops, tandem.Op{Op: tandem.OpUpsert, Table: tokenAccounts, Record: rec})
		}
		if _, err := c.Tx(ctx, tx); err != nil {
			return 0, fmt.Errorf("bench: preload accounts: %w", err)
		}
	}
	cfg.Logf("%d accounts ready", cfg.Keys)
	if cfg.Workload == WorkloadTransferTx {
		return 0, nil
	}
	start := time.Now()
	if _, _, err := c.DeployContract(ctx, tokenContract, cfg.Contract); err != nil {
		return 0, fmt.Errorf("bench: deploy: %w", err)
	}
	if _, err := c.CallContract(ctx, tokenContract, "supply", nil); err != nil && !isContractError(err) {
		return 0, fmt.Errorf("bench: first call: %w", err)
	}
	coldStart = time.Since(start)
	if _, err := c.CallContract(ctx, tokenContract, "init", nil); err != nil && !isContractError(err) {
		return 0, fmt.Errorf("bench: init: %w", err)
	}
	cfg.Logf("token deployed; cold start %v", coldStart.Round(time.Millisecond))
	return coldStart, nil
}

// isContractError: "not initialised" or "already initialised" from a
// token left by an earlier run is fine.
func isContractError(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Code == tandem.CodeContractError
}

// Transfer moves 1 token from one account to another, through the contract
// or (builtin) as the equivalent /v1/tx.
func (c *tandemConn) Transfer(ctx context.Context, from, to string, builtin bool) error {
	if builtin {
		a, _ := json.Marshal(map[string]any{"id": from, "balance": tokenBalance - 1})
		b, _ := json.Marshal(map[string]any{"id": to, "balance": tokenBalance + 1})
		_, err := c.c.Tx(ctx, tandem.Tx{Ops: []tandem.Op{
			{Op: tandem.OpUpsert, Table: tokenAccounts, Record: a},
			{Op: tandem.OpUpsert, Table: tokenAccounts, Record: b},
		}})
		return err
	}
	_, err := c.c.CallContract(ctx, tokenContract, "transfer", map[string]any{"from": from, "to": to, "amount": 1})
	return err
}

// transfer is one operation of a contract workload.
func (w *worker) transfer(ctx context.Context) error {
	cc, ok := w.conn.(ContractConn)
	if !ok {
		return errors.New("bench: the target cannot call contracts")
	}
	from, to := w.rng.IntN(w.keys), w.rng.IntN(w.keys)
	if w.workload == WorkloadTransferHot {
		from = 0
		if w.rng.IntN(2) == 0 {
			from, to = to, 0
		}
	}
	if from == to {
		to = (from + 1) % max(w.keys, 2)
	}
	return cc.Transfer(ctx, accountName(from), accountName(to), w.workload == WorkloadTransferTx)
}
