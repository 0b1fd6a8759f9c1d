package fsm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/raft"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/store"
)

// FSM adapts a *store.Store to raft.BatchingFSM.
type FSM struct {
	store  *store.Store
	waiter *Waiter
	log    *slog.Logger
	// OnApply, if set, is called after each applied batch with the entries'
	// decoded payloads and results (for metrics and, later, subscriptions).
	// It runs on the apply goroutine and must be fast.
	OnApply func(entries []store.LogEntry, results [][]tandem.Result)
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns a state machine over st. The waiter is advanced after every
// applied batch.
func New(st *store.Store, w *Waiter, log *slog.Logger) *FSM {
	if log == nil {
		log = slog.Default()
	}
	w.Advance(st.AppliedIndex())
	return &FSM{store: st, waiter: w, log: log}
}

// Apply applies a single entry. hashicorp/raft calls ApplyBatch instead.
func (f *FSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries. Each response is the entry's
// []tandem.Result: one per command, empty for entries without commands
// (configuration changes, term markers), nil for entries the store had
// already applied before a restart.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]store.LogEntry, len(logs))
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		entries[i].Data = l.Data
		e, err := tandem.DecodeEntry(l.Data)
		if errors.Is(err, tandem.ErrNewerEntryFormat) {
			// Left for the store to refuse: it stops the node below.
			continue
		}
		if err != nil {
			// Every node decodes the same bytes the same way, so skipping
			// is deterministic; it should never happen with our proposer.
			f.log.Error("undecodable log entry; applying no commands", "index", l.Index, "err", err)
			continue
		}
		entries[i].Entry = e
	}
	results, err := f.store.Apply(entries)
	if err != nil {
		// The store could not write. Continuing would let this node's state
		// silently diverge from the log, so stop here; on restart the
		// entries are replayed from the Raft log.
		panic(fmt.Sprintf("fsm: apply entries %d..%d: %v", logs[0].Index, logs[len(logs)-1].Index, err))
	}
	f.waiter.Advance(f.store.AppliedIndex())
	if f.OnApply != nil {
		f.OnApply(entries, results)
	}
	out := make([]any, len(logs))
	for i := range results {
		out[i] = results[i]
	}
	return out
}

// Snapshot captures the store at the last applied entry. Called on the FSM
// goroutine; the expensive part (Persist) runs concurrently with applies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := f.store.Snapshot()
	if err != nil {
		return nil, err
	}
	return &snapshot{sn: sn}, nil
}

// Restore replaces the store's state with a snapshot from the leader (or,
// after an interrupted restore, from the local snapshot store).
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.waiter.Advance(f.store.AppliedIndex())
	return nil
}

type snapshot struct{ sn *store.Snapshot }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.sn.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() { s.sn.Close() }
