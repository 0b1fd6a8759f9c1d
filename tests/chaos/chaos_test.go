package chaos_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemdb/tandem/tests/harness"
)

var (
	duration = flag.Duration("duration", 0, "time under faults for the whole suite, shared evenly among the faults (0: the short run, "+shortPerFault.String()+" per fault)")
	seedFlag = flag.Uint64("seed", 0, "random seed for the nemesis and the workloads (0: from the clock)")
	logStore = flag.String("log-store", "", "the nodes' --log-store (wal or bolt; empty: the binary's default)")
)

const (
	// shortPerFault is each fault's time in the short run that CI does.
	shortPerFault = 20 * time.Second
	// recovery is how long the workloads go on after the faults heal.
	recovery = 2 * time.Second
	// overheadPerFault is a generous bound on the rest of a fault's run:
	// starting the cluster, healing, converging, checking.
	overheadPerFault = 75 * time.Second
)

// TestChaos runs every fault, each on a fresh cluster with every workload.
func TestChaos(t *testing.T) {
	perFault := shortPerFault
	if *duration > 0 {
		perFault = *duration / time.Duration(len(faults))
	}
	if dl, ok := t.Deadline(); ok {
		need := time.Duration(len(faults)) * (perFault + overheadPerFault)
		if left := time.Until(dl); left < need {
			t.Fatalf("-duration=%v needs about %v but go test's -timeout leaves %v; raise it, e.g. go test ./tests/chaos -run . -timeout 0 -args -duration=%v",
				*duration, need.Round(time.Minute), left.Round(time.Second), *duration)
		}
	}
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -seed=%d), %v under faults per fault", seed, seed, perFault)
	for i, f := range faults {
		t.Run(f.name, func(t *testing.T) { runFault(t, f, perFault, seed+uint64(i)) })
	}
}

// runFault runs every workload on a fresh cluster while f injects faults
// for d; then heals the cluster, lets the workloads run a little longer,
// waits until every node has applied the same history, reads the final
// state and checks everything.
func runFault(t *testing.T, f fault, d time.Duration, seed uint64) {
	nodes := f.nodes
	if nodes == 0 {
		nodes = 3
	}
	// CI shows the end of a failed test's output, where the harness
	// prints the nodes' logs: repeat what failed after them.
	failed := &failures{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s failed (seed %d):\n%s", f.name, seed, failed)
		}
	})
	r := newRun(t, seed, nodes, f.network)
	r.failed = failed
	ws := newWorkloads(*duration > 0, f)
	saved := false
	defer func() {
		// A failure that stopped the run early (a node that never came
		// back, no convergence) still leaves what there is.
		if t.Failed() && !saved {
			t.Errorf("history, visualization and node logs in %s", r.save(ws, nil))
		}
	}()
	for _, w := range ws {
		w.setup(t, r)
	}

	ctx, stopWorkers := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() {
		stopWorkers()
		wg.Wait()
	}()
	stream := uint64(0)
	for _, w := range ws {
		for i := range w.workers() {
			stream++
			rng := r.rand(stream)
			wg.Go(func() { w.work(ctx, r, i, rng) })
		}
	}
	nctx, stopNemesis := context.WithTimeout(ctx, d)
	f.inject(nctx, r, r.rand(0))
	stopNemesis()
	r.heal()
	r.dropBroken(t, waitReady(60*time.Second, r.current()...))
	time.Sleep(recovery)
	stopWorkers()
	wg.Wait()
	r.requireWritable(t)

	idx, hash := r.c.WaitConverged(60 * time.Second)
	// A call whose client gave up (its outcome unknown) may still commit
	// a moment later, so the nodes' final states are read again until the
	// cluster's index stood still while they were read: the nodes are
	// compared at one state, not at several.
	for try := 1; ; try++ {
		for _, w := range ws {
			w.final(t, r)
		}
		now, h := r.c.WaitConverged(60 * time.Second)
		if now == idx {
			break
		}
		if try == 3 {
			r.errorf(t, "the cluster's index moved during each of 3 final reads (last from %d to %d): the nodes' states were not read at one point", idx, now)
			break
		}
		t.Logf("the index moved from %d to %d during the final reads; reading them again", idx, now)
		idx, hash = now, h
	}
	faults := r.faultLog()
	t.Logf("%d faults in %v; converged at index %d, ledger %.12s", len(faults), d, idx, hash)

	violations := map[string][]string{}
	anyViolation := false
	for _, w := range ws {
		v := w.check(t, r)
		violations[w.name()] = v
		anyViolation = anyViolation || len(v) > 0
	}
	dir := ""
	if anyViolation || t.Failed() {
		dir = r.save(ws, violations)
		saved = true
	}
	for _, w := range ws {
		t.Run(w.name(), func(t *testing.T) {
			t.Log(w.summary())
			v := violations[w.name()]
			for i, s := range v {
				if i == 30 {
					t.Errorf("... and %d more", len(v)-i)
					break
				}
				r.errorf(t, "%s: %s", w.name(), s)
			}
			if len(v) > 0 {
				t.Errorf("history, visualization and node logs in %s", dir)
			}
		})
	}
	if dir != "" && !anyViolation {
		t.Errorf("history, visualization and node logs in %s", dir)
	}
}

// dropBroken fails the test for each node that did not come back after
// the faults healed, keeps its data for the failure folder, and goes on
// without it so that the histories are still checked.
func (r *run) dropBroken(t *testing.T, ids []string) {
	for _, id := range ids {
		for _, m := range r.current() {
			if m.node.ID != id {
				continue
			}
			r.errorf(t, "%s is not ready 60s after the faults healed%s", id, lastPanic(m.node))
			r.c.Kill(m.node)
			m.removed.Store(true)
			r.mu.Lock()
			r.keepData = append(r.keepData, m.node)
			r.mu.Unlock()
		}
	}
	if len(r.current()) == 0 {
		r.fatalf(t, "no node came back")
	}
}

// lastPanic returns the last panic in a node's log, as ": panic: ...",
// or "".
func lastPanic(n *harness.Node) string {
	b, err := os.ReadFile(filepath.Join(n.Dir, "node.log"))
	if err != nil {
		return ""
	}
	i := strings.LastIndex(string(b), "\npanic: ")
	if i < 0 {
		return ""
	}
	line, _, _ := strings.Cut(string(b[i+1:]), "\n")
	return ": its process died: " + line
}

// requireWritable checks that after the faults every node takes a write.
func (r *run) requireWritable(t *testing.T) {
	for _, m := range r.current() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
			_, err := m.cl.Put(ctx, registersTable, "alive-"+m.node.ID, map[string]any{"v": "alive"})
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				r.fatalf(t, "%s takes no write 30s after the faults healed: %v", m.node.ID, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// save writes everything about the run into a new folder under failures/
// and returns its path.
func (r *run) save(ws []workload, violations map[string][]string) string {
	name := strings.ReplaceAll(r.t.Name(), "/", "-") + "-" + time.Now().Format("20060102-150405")
	dir, err := filepath.Abs(filepath.Join("failures", name))
	if err == nil {
		err = os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	}
	if err != nil {
		r.t.Logf("cannot save the run: %v", err)
		return "(not saved)"
	}
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	note(writeJSON(dir, "nemesis.json", r.faultLog()))
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d\n", r.seed)
	for _, w := range ws {
		fmt.Fprintf(&b, "\n# %s: %s\n", w.name(), w.summary())
		for _, v := range violations[w.name()] {
			fmt.Fprintln(&b, v)
		}
		note(w.save(dir, r))
	}
	note(os.WriteFile(filepath.Join(dir, "violations.txt"), []byte(b.String()), 0o644))
	for _, n := range r.c.Nodes {
		note(copyFile(filepath.Join(n.Dir, "node.log"), filepath.Join(dir, "logs", n.ID+".log")))
	}
	r.mu.Lock()
	keep := slices.Clone(r.keepData)
	r.mu.Unlock()
	for _, n := range keep {
		note(copyDir(filepath.Join(n.Dir, "data"), filepath.Join(dir, "data", n.ID)))
	}
	if len(errs) > 0 {
		r.t.Logf("saving the run to %s: %s", dir, strings.Join(errs, "; "))
	}
	return dir
}

// copyDir copies a folder tree (a node's data, which the test's temporary
// folder would take with it).
func copyDir(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		return copyFile(path, filepath.Join(to, rel))
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
