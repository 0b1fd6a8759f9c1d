package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/api"
	"github.com/tandemdb/tandem/auth"
	"github.com/tandemdb/tandem/proposer"
)

// newPeerClient returns the client for calls to other nodes; tlsCfg is
// nil with Insecure.
func newPeerClient(tlsCfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 5 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// peerError is a failed call to another node. sent reports whether the
// request may have reached it (false only for dial failures).
type peerError struct {
	sent bool
	err  error
}

func (e *peerError) Error() string { return e.err.Error() }
func (e *peerError) Unwrap() error { return e.err }

// call sends a JSON request to another node's API and decodes the answer
// into out. A JSON error answer is returned as a *tandem.Error.
func (n *Node) call(ctx context.Context, method, addr, path string, in, out any) error {
	return n.callWith(ctx, n.peers, method, addr, path, in, out)
}

// callWith is call through hc.
func (n *Node) callWith(ctx context.Context, hc *http.Client, method, addr, path string, in, out any) error {
	resp, err := n.send(ctx, hc, method, addr, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &peerError{sent: true, err: fmt.Errorf("node at %s: %w", addr, err)}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// send sends a JSON request to another node's API and returns its 2xx
// answer, body unread; a non-2xx answer is read and returned as an error
// (a JSON error answer as a *tandem.Error).
func (n *Node) send(ctx context.Context, hc *http.Client, method, addr, path string, in any) (*http.Response, error) {
	var body io.Reader
	switch v := in.(type) {
	case nil:
	case []byte: // already encoded (forwarded command batches)
		body = bytes.NewReader(v)
	default:
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.scheme+"://"+addr+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.ForwardedHeader, n.opts.ID)
	if a := auth.CredentialsFrom(ctx); a != "" {
		// A remove passed on to the leader: the leader authenticates the
		// caller's own credentials (the node certificate only says which
		// node passed it on).
		req.Header.Set("Authorization", a)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var op *net.OpError
		sent := !(errors.As(err, &op) && op.Op == "dial")
		return nil, &peerError{sent: sent, err: fmt.Errorf("node at %s: %w", addr, err)}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &peerError{sent: true, err: fmt.Errorf("node at %s: %w", addr, err)}
	}
	return nil, peerAnswerError(addr, path, resp.StatusCode, data)
}

// peerAnswerError is the error for another node's non-2xx answer to path:
// its JSON error (see peerRefusal), or the status.
func peerAnswerError(addr, path string, status int, body []byte) error {
	var eb struct {
		Error tandem.Error `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		return peerRefusal(path, &eb.Error)
	}
	return &peerError{sent: true, err: fmt.Errorf("node at %s answered %d %s", addr, status, http.StatusText(status))}
}

// peerRefusal turns another node's refusal of an internal call (this node
// is not, or no longer, a member it trusts) into "unavailable": the client
// whose request this node was passing on made no mistake, and the request
// was not applied. Other errors pass as they are (a refused join token
// must reach the joining node as such).
func peerRefusal(path string, e *tandem.Error) error {
	if strings.HasPrefix(path, "/internal/") && (e.Code == tandem.CodeForbidden || e.Code == tandem.CodeUnauthenticated) {
		return tandem.WrapError(tandem.CodeUnavailable, e, "another node refused this node's internal call (is it still a member of the cluster?): %s", e.Message)
	}
	return e
}

// errSelfLeader is leaderHTTP's answer when this node has become the
// leader: its caller decided to go to another node while this one was a
// follower, and must start over rather than call itself. (A forwarded batch
// sent to our own /internal/v1/propose would wait for the proposer slot its
// own dispatch holds, stalling every write until the dispatch times out.)
var errSelfLeader = &tandem.Error{
	Code:    tandem.CodeUnavailable,
	Message: "this node has just become the leader; the request was not applied, retry it",
	Err:     proposer.ErrNotForwarded, // the proposer then commits the batch itself
}

// leaderHTTP returns the leader's HTTP address, waiting (until ctx ends)
// for a leader to be elected and registered. It fails with errSelfLeader
// if the leader is this node.
func (n *Node) leaderHTTP(ctx context.Context) (string, error) {
	for {
		id, _ := n.raft.Leader()
		if id == n.opts.ID {
			return "", errSelfLeader
		}
		if id != "" {
			for _, info := range n.store.Nodes() {
				if info.ID == id {
					return info.HTTPAddr, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if id == "" {
				return "", tandem.Errorf(tandem.CodeUnavailable, "no leader is elected (is a majority of nodes up?)")
			}
			return "", tandem.Errorf(tandem.CodeUnavailable, "the leader %s has not registered its address yet", id)
		case <-n.ctx.Done():
			return "", tandem.Errorf(tandem.CodeUnavailable, "node is shutting down")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Forward implements proposer.Forwarder: one call carries a whole batch.
// A batch that surely did not reach the leader (dial failure, leader that
// answers "not leader") is retried against the new leader.
func (n *Node) Forward(ctx context.Context, cmds []tandem.Command) ([]tandem.Result, error) {
	body, err := tandem.AppendCommands(nil, cmds)
	if err != nil {
		return nil, tandem.WrapError(tandem.CodeInvalid, err, "cannot encode commands: %v", err)
	}
	for {
		addr, err := n.leaderHTTP(ctx)
		if err != nil {
			return nil, err
		}
		var resp api.ProposeResponse
		err = n.callMux(ctx, http.MethodPost, addr, "/internal/v1/propose", body, &resp)
		if err == nil {
			res := make([]tandem.Result, len(resp.Results))
			for i, r := range resp.Results {
				res[i].Index = r.Index
				if r.Error != nil {
					res[i].Err = r.Error
				}
			}
			return res, nil
		}
		var pe *peerError
		if errors.As(err, &pe) && !pe.sent {
			if !sleepCtx(ctx, 20*time.Millisecond) {
				return nil, tandem.WrapError(tandem.CodeUnavailable, err, "cannot reach the leader: %v", err)
			}
			continue
		}
		return nil, err
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// forwardCall runs a contract call on the leader: one request per call
// (POST /internal/v1/call) on the follower's multiplexed connection to the
// leader, where the calls in flight together share messages, as forwarded
// write batches do. Batches of calls over HTTP/1.1 (POST
// /internal/v1/calls, still served for followers of an older version)
// held a batch's slot until its slowest call had committed, and calls
// queued for a free slot: that was 40% of a forwarded call's latency
// under transfers (docs/benchmarks.md).
//
// A call that surely did not reach the leader is retried against the new
// one; if this node has become the leader it runs the call itself. A
// call whose caller stops waiting still runs to its end on the leader
// (bounded by the leader's write timeout): its outcome is unknown to the
// caller, as with any write that times out.
func (n *Node) forwardCall(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, tandem.WrapError(tandem.CodeInvalid, err, "cannot encode the contract call: %v", err)
	}
	// A node that is shutting down stops waiting for the leader at once,
	// so that its HTTP server's shutdown does not wait for the answers.
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(n.ctx, cancel)()
	for {
		addr, err := n.leaderHTTP(wait)
		if errors.Is(err, proposer.ErrNotForwarded) {
			return n.engine.CallLocal(ctx, req)
		}
		if err != nil {
			return nil, err
		}
		var res tandem.CallResult
		err = n.callMux(wait, http.MethodPost, addr, "/internal/v1/call", body, &res)
		if err == nil {
			return &res, nil
		}
		var pe *peerError
		switch {
		case !errors.As(err, &pe):
			return nil, err
		case n.ctx.Err() != nil:
			return nil, tandem.WrapError(tandem.CodeUnavailable, err, "node is shutting down; the contract call may or may not have been applied")
		case ctx.Err() != nil:
			return nil, tandem.WrapError(tandem.CodeTimeout, err, "timed out waiting for the leader to run the contract call; it may or may not have been applied")
		case !pe.sent && sleepCtx(wait, 20*time.Millisecond):
			continue
		}
		return nil, tandem.WrapError(tandem.CodeUnavailable, err, "lost the leader during the contract call; it may or may not have been applied: %v", err)
	}
}
