//go:build wasip1

// Command records is a test contract for rights modes: it reads patient
// records and hands them back as it got them, so what a caller sees shows
// whose rights the call ran with (deploy it with rights=caller and with
// the default contract rights).
package main

import (
	"encoding/json"

	"github.com/tandemdb/tandem/sdk"
)

func init() {
	// get runs on the node that receives the call.
	sdk.ExportReadOnly("get", func(ctx *sdk.Context, id string) (json.RawMessage, error) {
		rec, _, err := ctx.Get("patients", id)
		return rec, err
	})
	// lookup is the same read in a function that may write: it runs on
	// the leader.
	sdk.Export("lookup", func(ctx *sdk.Context, id string) (json.RawMessage, error) {
		rec, _, err := ctx.Get("patients", id)
		return rec, err
	})
	// ward lists a ward's patients (query on the leader).
	sdk.Export("ward", func(ctx *sdk.Context, ward string) ([]json.RawMessage, error) {
		recs, _, err := ctx.Query("patients", "ward=eq."+ward+"&limit=100")
		return recs, err
	})
	// by_diagnosis filters on the diagnosis: refused to whoever may not
	// read it, under caller rights.
	sdk.ExportReadOnly("by_diagnosis", func(ctx *sdk.Context, d string) ([]json.RawMessage, error) {
		recs, _, err := ctx.Query("patients", "diagnosis=eq."+d+"&limit=100")
		return recs, err
	})
}

func main() {}
