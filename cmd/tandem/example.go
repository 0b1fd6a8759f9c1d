package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// The example application loaded by `tandem dev`: a small bank. It is what
// the README's API tour uses.
var exampleSchema = `{"primary_key": "id",
 "attributes": {"id": "string", "owner": "string", "balance": "int", "opened": "time"},
 "indexes": ["balance", "owner"]}`

var exampleAccounts = []string{
	`{"id": "alice", "owner": "Alice", "balance": 120, "opened": "2026-01-05T09:00:00Z"}`,
	`{"id": "bob", "owner": "Bob", "balance": 80, "opened": "2026-02-11T14:30:00Z"}`,
	`{"id": "carol", "owner": "Carol", "balance": 300, "opened": "2026-03-20T08:15:00Z"}`,
	`{"id": "dave", "owner": "Dave", "balance": 0, "opened": "2026-04-01T17:45:00Z"}`,
}

// seedExample creates the example table unless it exists. It reports
// whether it created it.
func seedExample(ctx context.Context, hc *http.Client, base, authz string) (bool, error) {
	status, _, err := devRequest(ctx, hc, http.MethodGet, base+"/v1/tables/accounts", "", authz)
	if err != nil {
		return false, err
	}
	if status == http.StatusOK {
		return false, nil
	}
	if status, body, err := devRequest(ctx, hc, http.MethodPut, base+"/v1/tables/accounts", exampleSchema, authz); err != nil || status != http.StatusOK {
		return false, fmt.Errorf("create table: %d %s %v", status, body, err)
	}
	for _, rec := range exampleAccounts {
		if status, body, err := devRequest(ctx, hc, http.MethodPost, base+"/v1/tables/accounts/records", rec, authz); err != nil || status != http.StatusCreated {
			return false, fmt.Errorf("insert %s: %d %s %v", rec, status, body, err)
		}
	}
	return true, nil
}

func devRequest(ctx context.Context, hc *http.Client, method, url, body, authz string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewBufferString(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}
