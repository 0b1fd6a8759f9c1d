//go:build wasip1

// Command jsonloop is a benchmark contract: it decodes and encodes a
// token account record n times, touching nothing on the host, so that
// BenchmarkGuestJSON can time the guest's encoding/json under each
// runtime configuration.
package main

import (
	"encoding/json"

	"github.com/tandemdb/tandem/sdk"
)

type account struct {
	ID      string `json:"id"`
	Balance int64  `json:"balance"`
}

var record = []byte(`{"_version":12,"balance":1099511627776,"id":"a17"}`)

func init() {
	sdk.Export("json", func(ctx *sdk.Context, n int) (int, error) {
		for range n {
			var a account
			if err := json.Unmarshal(record, &a); err != nil {
				return 0, err
			}
			if _, err := json.Marshal(a); err != nil {
				return 0, err
			}
		}
		return n, nil
	})
}

func main() {}
