package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/tandemdb/tandem"
)

// Security state: users, roles and API tokens live in their own key
// ranges and, being small, also in memory (secState), replaced after each
// commit that changes them like the schemas, so that authenticating a
// request reads no disk and sees every applied change at once. The audit
// log is on disk only. See doc.go for the keys.
const (
	prefixAudit    = "a/"
	prefixRole     = "g/"
	prefixAPIToken = "k/"
	prefixUser     = "u/"

	// maxAuditScan bounds the entries one Audit call examines, so a
	// narrow filter over a long log answers in bounded time (with a
	// cursor to go on).
	maxAuditScan = 100000
)

// secState is the committed security state. It is never modified once
// published; writers build a new one.
type secState struct {
	users  map[string]*tandem.User
	roles  map[string]*tandem.Role // stored roles; built-ins are not stored
	tokens map[string]*tandem.APIToken
}

func emptySec() *secState {
	return &secState{users: map[string]*tandem.User{}, roles: map[string]*tandem.Role{}, tokens: map[string]*tandem.APIToken{}}
}

func (st *secState) clone() *secState {
	return &secState{users: maps.Clone(st.users), roles: maps.Clone(st.roles), tokens: maps.Clone(st.tokens)}
}

// loadSec reads the security state from r.
func loadSec(r reader) (*secState, error) {
	st := emptySec()
	scans := []struct {
		prefix string
		fn     func(v []byte) error
	}{
		{prefixUser, func(v []byte) error {
			u := &tandem.User{}
			if err := json.Unmarshal(v, u); err != nil {
				return err
			}
			st.users[u.Name] = u
			return nil
		}},
		{prefixRole, func(v []byte) error {
			ro := &tandem.Role{}
			if err := json.Unmarshal(v, ro); err != nil {
				return err
			}
			st.roles[ro.Name] = ro
			return nil
		}},
		{prefixAPIToken, func(v []byte) error {
			t := &tandem.APIToken{}
			if err := json.Unmarshal(v, t); err != nil {
				return err
			}
			st.tokens[t.ID] = t
			return nil
		}},
	}
	for _, sc := range scans {
		err := scanPrefix(r, []byte(sc.prefix), func(k, v []byte) error {
			if err := sc.fn(v); err != nil {
				return fmt.Errorf("store: decode %q: %w", k, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return st, nil
}

// User returns the user name. The result is shared: do not modify it.
func (s *Store) User(name string) (*tandem.User, bool) {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	u, ok := s.sec.Load().users[name]
	return u, ok
}

// HasUsers reports whether any user exists.
func (s *Store) HasUsers() bool {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	return len(s.sec.Load().users) > 0
}

// Role returns the stored role name (built-in roles are not stored). The
// result is shared: do not modify it.
func (s *Store) Role(name string) (*tandem.Role, bool) {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	r, ok := s.sec.Load().roles[name]
	return r, ok
}

// APIToken returns the API token id. The result is shared: do not modify
// it.
func (s *Store) APIToken(id string) (*tandem.APIToken, bool) {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	t, ok := s.sec.Load().tokens[id]
	return t, ok
}

// Users returns copies of every user, sorted by name.
func (s *Store) Users() []tandem.User {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	return sortedCopies(s.sec.Load().users, func(a, b *tandem.User) bool { return a.Name < b.Name })
}

// Roles returns copies of every stored role, sorted by name.
func (s *Store) Roles() []tandem.Role {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	return sortedCopies(s.sec.Load().roles, func(a, b *tandem.Role) bool { return a.Name < b.Name })
}

// APITokens returns copies of every API token, sorted by owner and ID.
func (s *Store) APITokens() []tandem.APIToken {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	return sortedCopies(s.sec.Load().tokens, func(a, b *tandem.APIToken) bool {
		return a.Owner < b.Owner || a.Owner == b.Owner && a.ID < b.ID
	})
}

func sortedCopies[T any](m map[string]*T, less func(a, b *T) bool) []T {
	ps := slices.Collect(maps.Values(m))
	sort.Slice(ps, func(i, j int) bool { return less(ps[i], ps[j]) })
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}

// Audit returns the audit entries matching q. Errors: CodeInvalid (bad
// cursor), CodeUnavailable (closed).
func (s *Store) Audit(q tandem.AuditQuery) (*tandem.AuditPage, error) {
	if q.Limit <= 0 || q.Limit > tandem.MaxLimit {
		q.Limit = tandem.MaxLimit
	}
	lower := []byte(prefixAudit)
	if q.Cursor != "" {
		c, err := hex.DecodeString(q.Cursor)
		if err != nil || len(c) != 12 {
			return nil, tandem.Errorf(tandem.CodeInvalid, "audit cursor %q is not one this server returned", q.Cursor)
		}
		lower = append(append(lower, c...), 0) // just after the cursor's key
	}
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, closedError()
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, tandem.WrapError(tandem.CodeInternal, err, "read failed")
	}
	defer it.Close()
	page := &tandem.AuditPage{Entries: []tandem.AuditEntry{}}
	upper := prefixEnd([]byte(prefixAudit))
	var last []byte // key of the last entry examined
	scanned := 0
	for valid := it.SeekGE(lower); valid && bytes.Compare(it.Key(), upper) < 0; valid = it.Next() {
		k := it.Key()
		if len(page.Entries) == q.Limit || scanned == maxAuditScan {
			// More to come: resume after the last entry examined.
			page.Next = hex.EncodeToString(last[len(prefixAudit):])
			break
		}
		scanned++
		last = append(last[:0], k...)
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, tandem.WrapError(tandem.CodeInternal, err, "read failed")
		}
		var e tandem.AuditEntry
		if len(k) != len(prefixAudit)+12 || json.Unmarshal(v, &e) != nil {
			return nil, tandem.Errorf(tandem.CodeInternal, "corrupt audit entry %x", k)
		}
		e.Index = binary.BigEndian.Uint64(k[len(prefixAudit):])
		if (q.Since != 0 && e.Time < q.Since) || (q.Until != 0 && e.Time >= q.Until) ||
			(q.Principal != "" && e.Principal != q.Principal) || (q.Action != "" && e.Action != q.Action) {
			continue
		}
		page.Entries = append(page.Entries, e)
	}
	return page, it.Error()
}
