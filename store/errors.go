package store

import (
	"errors"
	"fmt"

	"github.com/tandemdb/tandem"
)

// Sentinel errors. Errors meant for clients are *tandem.Error values whose
// Err, where relevant, is one of these.
var (
	// ErrClosed is the cause of every error returned after Close.
	ErrClosed = errors.New("store: closed")
	// ErrDirty is returned by Apply and Snapshot while an interrupted
	// Restore has left the state incomplete.
	ErrDirty = errors.New("store: an interrupted restore left the state incomplete; restore a snapshot")
	// ErrCorruptSnapshot is the cause of Restore's errors for a snapshot
	// that is truncated, corrupt or of an unknown format.
	ErrCorruptSnapshot = errors.New("store: corrupt snapshot")

	errBadRecord = errors.New("store: malformed stored record")
)

func closedError() error {
	return tandem.WrapError(tandem.CodeUnavailable, ErrClosed, "the store is closed")
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptSnapshot}, args...)...)
}

// notFoundTable is the error for a missing table.
func notFoundTable(name string) error {
	return tandem.Errorf(tandem.CodeNotFound, "table %q does not exist", name)
}

// isCommandError reports whether err rejects a single command (as opposed
// to an I/O failure that must stop the state machine).
func isCommandError(err error) bool {
	var e *tandem.Error
	return errors.As(err, &e) && e.Code != tandem.CodeInternal
}
