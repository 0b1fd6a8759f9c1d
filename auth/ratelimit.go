package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds each limiter map: an attacker trying random user
// names must not grow it without bound.
const maxLimiters = 100000

// limiters holds one token bucket of failures per key (user name or client
// address). A key whose bucket is empty may not try again until it
// refills.
type limiters struct {
	lim Limit
	now func() time.Time

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLimiters(l Limit, now func() time.Time) *limiters {
	return &limiters{lim: l, now: now, m: map[string]*rate.Limiter{}}
}

func (l *limiters) every() rate.Limit {
	return rate.Every(l.lim.Per / time.Duration(l.lim.Burst))
}

// wait returns how long key must wait before its next attempt (0: may
// try now). It consumes nothing: only failures do.
func (l *limiters) wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.m[key]
	if r == nil {
		return 0
	}
	tokens := r.TokensAt(l.now())
	if tokens >= 1 {
		return 0
	}
	d := time.Duration((1 - tokens) / float64(r.Limit()) * float64(time.Second))
	return max(d, time.Second)
}

// fail records one failure of key.
func (l *limiters) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r := l.m[key]
	if r == nil {
		if len(l.m) >= maxLimiters {
			l.pruneLocked(now)
		}
		r = rate.NewLimiter(l.every(), l.lim.Burst)
		l.m[key] = r
	}
	r.AllowN(now, 1)
}

// pruneLocked forgets keys whose bucket has refilled (they behave like new
// keys), and if that is not enough, every key.
// REQUIRES: l.mu held.
func (l *limiters) pruneLocked(now time.Time) {
	for k, r := range l.m {
		if r.TokensAt(now) >= float64(l.lim.Burst) {
			delete(l.m, k)
		}
	}
	if len(l.m) >= maxLimiters {
		clear(l.m)
	}
}
