//go:build wasip1

// Command token is an example Tandem contract: a fungible token with an
// admin who mints, transfers that never make a balance negative, and
// read-only balance and supply queries. See README.md for the walk-through.
//
// It uses two tables, created before the contract is initialised:
//
//	token_accounts  primary key "id" (the account name), balance int
//	token_meta      primary key "id"; one record "config" holding the
//	                admin and the total supply
package main

import (
	"github.com/tandemdb/tandem/sdk"
)

const (
	accounts = "token_accounts"
	meta     = "token_meta"
	config   = "config"
)

type account struct {
	ID      string `json:"id"`
	Balance int64  `json:"balance"`
}

type tokenConfig struct {
	ID     string `json:"id"`
	Admin  string `json:"admin"`
	Supply int64  `json:"supply"`
}

func init() {
	sdk.Export("init", initToken)
	sdk.Export("mint", mint)
	sdk.Export("transfer", transfer)
	sdk.ExportReadOnly("balance", balance)
	sdk.ExportReadOnly("supply", supply)
}

func main() {}

type empty struct{}

// initToken makes the caller the admin. It can run once.
func initToken(ctx *sdk.Context, _ empty) (tokenConfig, error) {
	cfg := tokenConfig{ID: config, Admin: ctx.Caller()}
	if err := ctx.Insert(meta, cfg); err != nil {
		if e, ok := err.(*sdk.Error); ok && e.Code == "conflict" {
			return tokenConfig{}, sdk.Errorf("the token is already initialised")
		}
		return tokenConfig{}, err
	}
	return cfg, nil
}

func loadConfig(ctx *sdk.Context) (tokenConfig, error) {
	var cfg tokenConfig
	found, err := ctx.GetInto(meta, config, &cfg)
	if err != nil {
		return cfg, err
	}
	if !found {
		return cfg, sdk.Errorf("the token is not initialised; call init first")
	}
	return cfg, nil
}

func loadAccount(ctx *sdk.Context, id string) (account, error) {
	acc := account{ID: id}
	_, err := ctx.GetInto(accounts, id, &acc)
	return acc, err
}

type mintArg struct {
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

// mint creates Amount new tokens in account To; admin only.
func mint(ctx *sdk.Context, arg mintArg) (account, error) {
	cfg, err := loadConfig(ctx)
	if err != nil {
		return account{}, err
	}
	if ctx.Caller() != cfg.Admin {
		return account{}, sdk.Errorf("only the admin may mint")
	}
	if arg.To == "" || arg.Amount <= 0 {
		return account{}, sdk.Errorf("mint needs an account (to) and a positive amount")
	}
	acc, err := loadAccount(ctx, arg.To)
	if err != nil {
		return account{}, err
	}
	acc.Balance += arg.Amount
	cfg.Supply += arg.Amount
	if err := ctx.Put(accounts, acc); err != nil {
		return account{}, err
	}
	if err := ctx.Put(meta, cfg); err != nil {
		return account{}, err
	}
	return acc, ctx.Emit("mint", arg)
}

type transferArg struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

type transferResult struct {
	From account `json:"from"`
	To   account `json:"to"`
}

// transfer moves Amount from account From to account To. The caller must
// own From (its name is the caller's identity) or be the admin.
func transfer(ctx *sdk.Context, arg transferArg) (transferResult, error) {
	if arg.From == "" || arg.To == "" || arg.Amount <= 0 {
		return transferResult{}, sdk.Errorf("transfer needs from, to and a positive amount")
	}
	if arg.From == arg.To {
		return transferResult{}, sdk.Errorf("cannot transfer to the same account")
	}
	if ctx.Caller() != arg.From {
		cfg, err := loadConfig(ctx)
		if err != nil {
			return transferResult{}, err
		}
		if ctx.Caller() != cfg.Admin {
			return transferResult{}, sdk.Errorf("only the owner of %q or the admin may transfer from it", arg.From)
		}
	}
	from, err := loadAccount(ctx, arg.From)
	if err != nil {
		return transferResult{}, err
	}
	if from.Balance < arg.Amount {
		return transferResult{}, sdk.Errorf("insufficient balance: %q has %d, needs %d", arg.From, from.Balance, arg.Amount)
	}
	to, err := loadAccount(ctx, arg.To)
	if err != nil {
		return transferResult{}, err
	}
	from.Balance -= arg.Amount
	to.Balance += arg.Amount
	if err := ctx.Put(accounts, from); err != nil {
		return transferResult{}, err
	}
	if err := ctx.Put(accounts, to); err != nil {
		return transferResult{}, err
	}
	return transferResult{From: from, To: to}, ctx.Emit("transfer", arg)
}

type balanceArg struct {
	Account string `json:"account"`
}

// balance returns an account's balance (0 for an unknown account).
func balance(ctx *sdk.Context, arg balanceArg) (account, error) {
	if arg.Account == "" {
		return account{}, sdk.Errorf("balance needs an account")
	}
	return loadAccount(ctx, arg.Account)
}

type supplyResult struct {
	Supply int64 `json:"supply"`
}

// supply returns the total number of tokens minted.
func supply(ctx *sdk.Context, _ empty) (supplyResult, error) {
	cfg, err := loadConfig(ctx)
	return supplyResult{Supply: cfg.Supply}, err
}
