package api

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/tandemdb/tandem"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "id": s.opts.Cluster.Self().ID})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Cluster.Ready(); err != nil {
		writeError(w, err)
		return
	}
	self := s.opts.Cluster.Self()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "id": self.ID, "applied_index": self.AppliedIndex})
}

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	leader, nodes, err := s.opts.Cluster.Status(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"leader": leader, "nodes": nodes})
}

func validateNodeInfo(n *tandem.NodeInfo) error {
	if err := tandem.ValidateName("node", n.ID); err != nil {
		return err
	}
	for _, a := range []struct{ name, addr string }{{"http_addr", n.HTTPAddr}, {"raft_addr", n.RaftAddr}} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			return tandem.Errorf(tandem.CodeInvalid, "%s %q is not a host:port address", a.name, a.addr)
		}
	}
	return nil
}

func (s *Server) clusterJoin(w http.ResponseWriter, r *http.Request) {
	var n tandem.NodeInfo
	if err := s.decodeStrict(w, r, "join request", &n); err != nil {
		writeError(w, err)
		return
	}
	if err := validateNodeInfo(&n); err != nil {
		writeError(w, err)
		return
	}
	if err := s.checkJoiner(r, n.ID); err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	forwarded := r.Header.Get(ForwardedHeader) != ""
	if err := s.opts.Cluster.Join(ctx, n, forwarded); err != nil {
		writeError(w, err)
		return
	}
	// Recorded once: by the node the client called, or here when the
	// joining node asked itself (its requests carry the forwarded mark).
	if !forwarded || r.Header.Get(ForwardedHeader) == n.ID {
		s.auditCommitted(r, "join_node", n.ID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"joined": n.ID})
}

func (s *Server) clusterRemove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := tandem.ValidateName("node", id); err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	forwarded := r.Header.Get(ForwardedHeader) != ""
	if err := s.opts.Cluster.Remove(ctx, id, forwarded); err != nil {
		writeError(w, err)
		return
	}
	if !forwarded {
		s.auditCommitted(r, "remove_node", id)
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": id})
}

// ProposeResult is one command's outcome in a ProposeResponse.
type ProposeResult struct {
	Index uint64        `json:"index,omitempty"`
	Error *tandem.Error `json:"error,omitempty"`
}

// ProposeResponse answers POST /internal/v1/propose.
type ProposeResponse struct {
	Results []ProposeResult `json:"results"`
}

func (s *Server) internalPropose(w http.ResponseWriter, r *http.Request) {
	// The body is a batch of commands in the log entry encoding
	// (tandem.AppendCommands): forwarding must cost little. Its size is
	// bounded by what an entry may hold, not by the client body limit: a
	// batch of many small writes, or one contract deploy, is larger than
	// any single client request.
	body, err := readLimited(w, r, tandem.MaxEntrySize)
	var cmds []tandem.Command
	if err == nil {
		cmds, err = tandem.DecodeCommands(body)
	}
	if err != nil {
		writeError(w, tandem.Errorf(tandem.CodeInvalid, "propose request: %s", tandem.ErrorMessage(err)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.WriteTimeout)
	defer cancel()
	results, err := s.opts.Proposer.ProposeLocal(ctx, r.Header.Get(ForwardedHeader), cmds)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := ProposeResponse{Results: make([]ProposeResult, len(results))}
	for i, res := range results {
		resp.Results[i].Index = res.Index
		if res.Err != nil {
			resp.Results[i].Error = &tandem.Error{Code: tandem.ErrorCode(res.Err), Message: tandem.ErrorMessage(res.Err)}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) internalReadIndex(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadTimeout)
	defer cancel()
	idx, err := s.opts.Cluster.LeaderReadIndex(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"index": idx})
}

func (s *Server) internalStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.opts.Cluster.Self())
}
