//go:build wasip1

// Command probe is a test contract: one function per behaviour the host
// must handle, good and bad.
package main

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/tandemdb/tandem/sdk"
)

type kv struct {
	ID string `json:"id"`
	N  int64  `json:"n"`
}

func init() {
	sdk.Export("echo", func(ctx *sdk.Context, arg json.RawMessage) (json.RawMessage, error) { return arg, nil })
	sdk.Export("fail", func(ctx *sdk.Context, _ struct{}) (int, error) { return 0, sdk.Errorf("no such luck") })
	sdk.Export("panic", func(ctx *sdk.Context, _ struct{}) (int, error) { panic("boom") })
	sdk.Export("loop", func(ctx *sdk.Context, _ struct{}) (int, error) {
		for i := 0; ; i++ {
			_ = i
		}
	})
	// loop_get asks the host for the same record forever: the call's
	// wall-clock limit stops it at a request.
	sdk.Export("loop_get", func(ctx *sdk.Context, _ struct{}) (int, error) {
		for {
			if _, _, err := ctx.Get("kv", "a"); err != nil {
				return 0, err
			}
		}
	})
	sdk.Export("bomb", func(ctx *sdk.Context, _ struct{}) (int, error) {
		var keep [][]byte
		for {
			keep = append(keep, make([]byte, 1<<20))
		}
	})
	sdk.Export("env", func(ctx *sdk.Context, _ struct{}) (map[string]string, error) {
		return map[string]string{"caller": ctx.Caller(), "now": ctx.Now().Format(time.RFC3339Nano)}, nil
	})
	sdk.Export("put", func(ctx *sdk.Context, arg kv) (kv, error) { return arg, ctx.Put("kv", arg) })
	sdk.Export("insert", func(ctx *sdk.Context, arg kv) (kv, error) { return arg, ctx.Insert("kv", arg) })
	// add reads a record, adds to it and reads it back (own writes are
	// visible).
	sdk.Export("add", func(ctx *sdk.Context, arg kv) (kv, error) {
		cur := kv{ID: arg.ID}
		if _, err := ctx.GetInto("kv", arg.ID, &cur); err != nil {
			return kv{}, err
		}
		cur.N += arg.N
		if err := ctx.Put("kv", cur); err != nil {
			return kv{}, err
		}
		var back kv
		if _, err := ctx.GetInto("kv", arg.ID, &back); err != nil {
			return kv{}, err
		}
		return back, ctx.Emit("added", arg)
	})
	sdk.Export("patch", func(ctx *sdk.Context, arg kv) (struct{}, error) {
		return struct{}{}, ctx.Patch("kv", arg.ID, map[string]any{"n": arg.N, "patched": true})
	})
	sdk.Export("delete", func(ctx *sdk.Context, arg kv) (struct{}, error) { return struct{}{}, ctx.Delete("kv", arg.ID) })
	// create_delete writes a record and deletes it again: nothing to do.
	sdk.Export("create_delete", func(ctx *sdk.Context, arg kv) (struct{}, error) {
		if err := ctx.Put("kv", arg); err != nil {
			return struct{}{}, err
		}
		return struct{}{}, ctx.Delete("kv", arg.ID)
	})
	sdk.Export("many", func(ctx *sdk.Context, n int) (int, error) {
		for i := 0; i < n; i++ {
			if err := ctx.Put("kv", kv{ID: "m" + strconv.Itoa(i), N: int64(i)}); err != nil {
				return i, err
			}
		}
		return n, nil
	})
	sdk.Export("query", func(ctx *sdk.Context, q string) ([]json.RawMessage, error) {
		recs, _, err := ctx.Query("kv", q)
		return recs, err
	})
	sdk.Export("bad_record", func(ctx *sdk.Context, _ struct{}) (string, error) {
		err := ctx.Put("kv", map[string]any{"id": "x", "n": "not a number"})
		if err == nil {
			return "", sdk.Errorf("expected an error")
		}
		return err.(*sdk.Error).Code + ": " + err.Error(), nil
	})
	// put_code puts and answers the error's code ("" if none): a function
	// may handle a refused host operation itself.
	sdk.Export("put_code", func(ctx *sdk.Context, arg kv) (string, error) {
		if err := ctx.Put("kv", arg); err != nil {
			return err.(*sdk.Error).Code, nil
		}
		return "", nil
	})
	sdk.Export("big_result", func(ctx *sdk.Context, n int) (string, error) { return string(make([]byte, n)), nil })
	sdk.ExportReadOnly("get", func(ctx *sdk.Context, id string) (json.RawMessage, error) {
		rec, _, err := ctx.Get("kv", id)
		return rec, err
	})
	sdk.ExportReadOnly("sneaky_write", func(ctx *sdk.Context, _ struct{}) (int, error) {
		_ = ctx.Put("kv", kv{ID: "sneaky"}) // the error is ignored: the call must fail anyway
		return 1, nil
	})
}

func main() {}
