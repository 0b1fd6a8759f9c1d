package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemdb/tandem"
)

// AuditLogOptions configure an AuditLog. Zero values get the defaults.
type AuditLogOptions struct {
	Proposer Proposer // required
	// QueueSize bounds the entries waiting to be proposed (default 4096).
	QueueSize int
	// BatchSize bounds the entries of one audit command (default 256).
	BatchSize int
	// Interval is the least time between two batches (default 100ms).
	// With BatchSize it caps what failures and denials can make one node
	// write: 2560 entries a second by default, however many arrive.
	Interval time.Duration
	Logger   *slog.Logger
}

// AuditLog feeds failed logins and permission denials into the replicated
// audit log. They are caused by unauthenticated or unauthorised clients,
// so they must not turn into a write amplification attack: Record never
// blocks, entries wait in a bounded queue, a single goroutine proposes them
// in batches at a bounded rate, and what does not fit is dropped and
// counted (Dropped, exported as tandem_audit_dropped_total). Changes
// (users, roles, tokens, contracts, membership) are not queued: they carry
// their audit entry in their own command, or use Commit.
type AuditLog struct {
	opts    AuditLogOptions
	ch      chan tandem.AuditEntry
	dropped atomic.Uint64

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once
}

// NewAuditLog returns an AuditLog; Start starts its goroutine.
func NewAuditLog(opts AuditLogOptions) *AuditLog {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.BatchSize <= 0 || opts.BatchSize > tandem.MaxAuditBatch {
		opts.BatchSize = 256
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &AuditLog{opts: opts, ch: make(chan tandem.AuditEntry, opts.QueueSize), ctx: ctx, cancel: cancel}
}

// Start starts proposing queued entries. Safe to call twice.
func (l *AuditLog) Start() {
	l.startOnce.Do(func() {
		l.wg.Add(1)
		go l.loop()
	})
}

// Close stops the goroutine; entries still queued are dropped (and
// counted). Safe to call twice.
func (l *AuditLog) Close() {
	l.closeOnce.Do(func() {
		l.cancel()
		l.wg.Wait()
	})
}

// Record queues e without blocking; if the queue is full e is dropped.
func (l *AuditLog) Record(e tandem.AuditEntry) {
	select {
	case l.ch <- e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped is the number of entries dropped so far.
func (l *AuditLog) Dropped() uint64 { return l.dropped.Load() }

// Commit proposes entries now and waits for the outcome.
func (l *AuditLog) Commit(ctx context.Context, entries []tandem.AuditEntry) error {
	res, err := l.opts.Proposer.Propose(ctx, tandem.Command{Type: tandem.CmdAudit, Audit: entries})
	if err == nil {
		err = res.Err
	}
	return err
}

func (l *AuditLog) loop() {
	defer l.wg.Done()
	batch := make([]tandem.AuditEntry, 0, l.opts.BatchSize)
	for {
		select {
		case <-l.ctx.Done():
			l.dropped.Add(uint64(len(l.ch)))
			return
		case e := <-l.ch:
			batch = append(batch[:0], e)
		}
	fill:
		for len(batch) < l.opts.BatchSize {
			select {
			case e := <-l.ch:
				batch = append(batch, e)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
		if err := l.Commit(ctx, batch); err != nil {
			l.dropped.Add(uint64(len(batch)))
			if l.ctx.Err() == nil {
				l.opts.Logger.Warn("audit: could not record entries", "entries", len(batch), "err", err)
			}
		}
		cancel()
		select {
		case <-l.ctx.Done():
		case <-time.After(l.opts.Interval):
		}
	}
}

// getAudit answers GET /v1/audit?since=&until=&principal=&action=&limit=&cursor=
// (times as RFC 3339).
func (s *Server) getAudit(w http.ResponseWriter, r *http.Request) {
	if s.opts.Security == nil {
		writeError(w, tandem.Errorf(tandem.CodeNotFound, "the audit log is off: this node runs insecure"))
		return
	}
	qv := r.URL.Query()
	q := tandem.AuditQuery{Principal: qv.Get("principal"), Action: qv.Get("action"), Cursor: qv.Get("cursor")}
	for _, t := range []struct {
		name string
		dst  *int64
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := qv.Get(t.name); v != "" {
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(w, tandem.Errorf(tandem.CodeInvalid, "%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", t.name, v))
				return
			}
			*t.dst = ts.UnixNano()
		}
	}
	if v := qv.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > tandem.MaxLimit {
			writeError(w, tandem.Errorf(tandem.CodeInvalid, "limit %q is not between 1 and %d", v, tandem.MaxLimit))
			return
		}
		q.Limit = n
	} else {
		q.Limit = tandem.DefaultLimit
	}
	if err := s.readBarrier(r, qv); err != nil {
		writeError(w, err)
		return
	}
	setReadIndex(w, s.opts.Reader.AppliedIndex())
	page, err := s.opts.Security.State.Audit(q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
