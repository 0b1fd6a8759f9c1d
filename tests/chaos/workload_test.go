package chaos_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/client"
)

// A workload drives clients against a run's cluster and checks what they
// saw. Its methods other than work are called from the test goroutine.
type workload interface {
	name() string
	workers() int
	// setup creates tables and initial records before the faults start.
	setup(t *testing.T, r *run)
	// work is one client; it runs until ctx is done.
	work(ctx context.Context, r *run, worker int, rng *rand.Rand)
	// final reads the state once the cluster has healed and converged,
	// replacing what an earlier call read (runFault may read again).
	final(t *testing.T, r *run)
	// check returns the violations of the workload's invariants.
	check(t *testing.T, r *run) []string
	// summary describes what happened, for the log.
	summary() string
	// save writes the workload's history and anything that explains a
	// failure into dir.
	save(dir string, r *run) error
}

var (
	_ workload = (*registers)(nil)
	_ workload = (*bank)(nil)
	_ workload = (*set)(nil)
	_ workload = (*token)(nil)
)

// newWorkloads returns the workloads of a run under fault f: all of them
// in long runs; the token workload only under some faults in the short
// run.
func newWorkloads(long bool, f fault) []workload {
	opsPerKey := int64(300)
	if long {
		opsPerKey = 500
	}
	ws := []workload{newRegisters(5, opsPerKey), newBank(5, 100), newSet()}
	if long || f.token {
		ws = append(ws, newToken(6, 100))
	}
	return ws
}

// createTable creates a table, retrying while the cluster settles.
func createTable(t *testing.T, r *run, schema tandem.TableSchema) {
	t.Helper()
	var err error
	for range 20 {
		ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
		_, _, err = r.current()[0].cl.CreateTable(ctx, schema)
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("create table %s: %v", schema.Name, err)
}

// consistencies are the read levels workers choose from; linearizable
// twice, as it is the default and the one porcupine checks.
var consistencies = []string{"linearizable", "linearizable", "local", "min_index"}

func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), b, 0o644)
}

// readAll lists every record of a table on one node, in the order the
// node returns them, with a local read unless opts say otherwise.
func readAll(ctx context.Context, cl *client.Client, table string, opts ...client.ReadOption) ([]json.RawMessage, error) {
	var out []json.RawMessage
	if len(opts) == 0 {
		opts = []client.ReadOption{client.Local()}
	}
	for page, err := range cl.QueryPages(ctx, table, nil, opts...) {
		if err != nil {
			return nil, err
		}
		out = append(out, page.Records...)
	}
	return out, nil
}
