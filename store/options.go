package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configures Open. The zero value of every field but Dir is a
// usable default.
type Options struct {
	// Dir is the directory of the Pebble database. Required.
	Dir string
	// Logger receives Pebble's messages: its informational chatter at debug
	// level, errors at error level. Default slog.Default().
	Logger *slog.Logger
	// CacheSize is the size of Pebble's block cache in bytes. Default 256
	// MiB: with 64 MiB, random reads over a 30 MB table still missed the
	// cache on half of all Gets (Pebble's sharded cache evicts early).
	CacheSize int64
	// FS is the filesystem Pebble uses. Default vfs.Default; tests pass a
	// crashable in-memory FS to simulate power loss.
	FS vfs.FS
}

// DefaultCacheSize is the block cache size used when Options.CacheSize is 0.
const DefaultCacheSize = 256 << 20

// withDefaults returns a copy of o with defaults filled in, or an error.
func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, fmt.Errorf("store: Options.Dir is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.CacheSize < 0 {
		return o, fmt.Errorf("store: Options.CacheSize is negative")
	}
	return o, nil
}

// pebbleOptions returns the Pebble options for o. The caller must Unref
// the cache after opening the database.
func (o Options) pebbleOptions(cache *pebble.Cache) *pebble.Options {
	po := &pebble.Options{
		Cache:              cache,
		FS:                 o.FS,
		Logger:             pebbleLogger{o.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		// Raft's log is the durability point, so Pebble keeps no WAL of its
		// own: every batch carries the applied index, so whatever prefix of
		// batches a crash leaves in flushed tables is consistent, and Raft
		// replays the rest. Before a snapshot lets Raft drop log entries,
		// the memtable is flushed (Store.syncLocked). Writing a second WAL
		// cost a write syscall per apply on every node (measured: ~8% of a
		// leader's CPU under write load; docs/benchmarks.md).
		DisableWAL:                  true,
		MemTableSize:                32 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
	}
	// Bloom filters on every level: a record read is a point Get, and
	// without filters each Get searched every overlapping table (measured:
	// Pebble lookups were ~30% of a node's CPU under read load).
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return po
}

// pebbleLogger adapts slog to Pebble's logger. Pebble reports routine
// events (flushes, compactions) through Infof, so those go to debug level.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble when it cannot continue (for example a failed
// WAL write); it must not return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	panic("pebble: " + msg)
}
