package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/tandemdb/tandem"
)

// Key prefixes of join state:
//
//	j/<token id>  JSON of tandem.JoinToken
//	x/<node id>   empty: the node was removed and has not enrolled since
const (
	prefixJoinToken   = "j/"
	prefixRemovedNode = "x/"
)

func joinTokenKey(id string) []byte   { return []byte(prefixJoinToken + id) }
func removedNodeKey(id string) []byte { return []byte(prefixRemovedNode + id) }

// Removed reports whether node id was removed from the cluster and has not
// enrolled again with a join token since: its certificate no longer lets
// it join.
func (s *Store) Removed(id string) bool {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	_, closer, err := s.db.Get(removedNodeKey(id))
	if err != nil {
		return false
	}
	closer.Close()
	return true
}

// JoinToken returns the join token id, or a CodeNotFound error.
func (s *Store) JoinToken(id string) (tandem.JoinToken, error) {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return tandem.JoinToken{}, closedError()
	}
	return readJoinToken(s.db, id)
}

// JoinTokens returns every stored join token, in ID order.
func (s *Store) JoinTokens() ([]tandem.JoinToken, error) {
	s.restoring.RLock()
	defer s.restoring.RUnlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, closedError()
	}
	var out []tandem.JoinToken
	err := scanPrefix(s.db, []byte(prefixJoinToken), func(_, v []byte) error {
		var t tandem.JoinToken
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read join tokens: %w", err)
	}
	return out, nil
}

func readJoinToken(r pebble.Reader, id string) (tandem.JoinToken, error) {
	var t tandem.JoinToken
	v, closer, err := r.Get(joinTokenKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return t, tandem.Errorf(tandem.CodeNotFound, "no join token %q", id)
	}
	if err != nil {
		return t, fmt.Errorf("store: read join token: %w", err)
	}
	defer closer.Close()
	if err := json.Unmarshal(v, &t); err != nil {
		return t, fmt.Errorf("store: join token %s: %w", id, err)
	}
	return t, nil
}

// applyJoinToken applies the three join token commands. Expiry is judged
// by the entry's time, so every node reaches the same verdict.
func (a *applier) applyJoinToken(c *tandem.Command) error {
	if c.Type == tandem.CmdDeleteJoinToken {
		if c.Name == "" {
			return tandem.Errorf(tandem.CodeInvalid, "delete_join_token command without a token ID")
		}
		if _, err := readJoinToken(a.b, c.Name); err != nil {
			return err
		}
		return a.b.Delete(joinTokenKey(c.Name), nil)
	}
	t := c.JoinToken
	if t == nil || t.ID == "" {
		return tandem.Errorf(tandem.CodeInvalid, "%s command without a token ID", c.Type)
	}
	switch c.Type {
	case tandem.CmdCreateJoinToken:
		if t.SecretHash == "" || t.Expires <= a.time || t.UsedBy != "" {
			return tandem.Errorf(tandem.CodeInvalid, "create_join_token needs a secret hash, a future expiry and no user")
		}
		if _, err := readJoinToken(a.b, t.ID); err == nil {
			return tandem.Errorf(tandem.CodeConflict, "join token %s exists", t.ID)
		} else if tandem.ErrorCode(err) != tandem.CodeNotFound {
			return err
		}
		stored := *t
		stored.Created = a.time
		return a.putJoinToken(&stored)
	case tandem.CmdUseJoinToken:
		if t.UsedBy == "" {
			return tandem.Errorf(tandem.CodeInvalid, "use_join_token command without a node ID")
		}
		cur, err := readJoinToken(a.b, t.ID)
		if tandem.ErrorCode(err) == tandem.CodeNotFound {
			return tandem.Errorf(tandem.CodeUnauthenticated, "join token %s is not known (revoked or never created)", t.ID)
		} else if err != nil {
			return err
		}
		if cur.UsedBy != "" {
			return tandem.Errorf(tandem.CodeUnauthenticated, "join token %s was already used (by node %s)", t.ID, cur.UsedBy)
		}
		if cur.Expires <= a.time {
			return tandem.Errorf(tandem.CodeUnauthenticated, "join token %s has expired", t.ID)
		}
		cur.UsedBy, cur.UsedAt = t.UsedBy, a.time
		if err := a.b.Delete(removedNodeKey(t.UsedBy), nil); err != nil {
			return err
		}
		return a.putJoinToken(&cur)
	}
	return tandem.Errorf(tandem.CodeInvalid, "unknown command type %q", c.Type)
}

func (a *applier) putJoinToken(t *tandem.JoinToken) error {
	v, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return a.b.Set(joinTokenKey(t.ID), v, nil)
}
