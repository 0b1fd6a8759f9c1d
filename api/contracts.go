package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tandemdb/tandem"
	"github.com/tandemdb/tandem/auth"
)

// Contracts deploys and runs contracts (package contract's Engine over the
// local store).
type Contracts interface {
	// Validate compiles a module and returns its functions, or a
	// CodeInvalid error that says why it is not a contract.
	Validate(ctx context.Context, wasm []byte) ([]tandem.ContractFunction, error)
	// Call runs a function as a transaction (or, if it is read-only,
	// once against the local state).
	Call(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error)
	// CallLocal is Call for a call another node forwarded here: it is
	// never forwarded again.
	CallLocal(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error)
	// ReadOnly runs a read-only function against the local state.
	ReadOnly(ctx context.Context, req tandem.ContractCall) (*tandem.CallResult, error)
	List() ([]tandem.ContractInfo, error)
	Get(name string) (*tandem.ContractInfo, error)
	// Events returns up to limit events committed after index after.
	Events(after uint64, limit int) ([]tandem.StoredEvent, error)
}

// Event page sizes for GET /v1/events.
const (
	defaultEventLimit = 100
	maxEventLimit     = 1000
)

func (s *Server) contracts() (Contracts, error) {
	if s.opts.Contracts == nil {
		return nil, tandem.Errorf(tandem.CodeUnavailable, "contracts are not enabled on this node")
	}
	return s.opts.Contracts, nil
}

// contractName validates the {name} path value.
func contractName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	return name, tandem.ValidateName("contract", name)
}

// namedContract returns the contracts and the validated {name}.
func (s *Server) namedContract(r *http.Request) (Contracts, string, error) {
	c, err := s.contracts()
	if err != nil {
		return nil, "", err
	}
	name, err := contractName(r)
	return c, name, err
}

// contractRead prepares a read of contract state: contracts enabled, a
// valid {name} if named, the read barrier passed. It answers the error
// itself and returns ok false then.
func (s *Server) contractRead(w http.ResponseWriter, r *http.Request, named bool) (c Contracts, name string, ok bool) {
	c, err := s.contracts()
	if err == nil && named {
		name, err = contractName(r)
	}
	if err == nil {
		err = s.readBarrier(r, r.URL.Query())
	}
	if err != nil {
		writeError(w, err)
		return nil, "", false
	}
	setReadIndex(w, s.opts.Reader.AppliedIndex())
	return c, name, true
}

func (s *Server) deployContract(w http.ResponseWriter, r *http.Request) {
	c, name, err := s.namedContract(r)
	if err != nil {
		writeError(w, err)
		return
	}
	// ?rights=contract (the default) or caller: whose permissions the
	// version's functions run with (docs/contracts.md, "Rights").
	rights, err := tandem.ParseRights(r.URL.Query().Get("rights"))
	if err != nil {
		writeError(w, err)
		return
	}
	wasm, err := readLimited(w, r, tandem.MaxContractSize)
	if err != nil {
		writeError(w, err)
		return
	}
	if len(wasm) == 0 {
		writeError(w, tandem.Errorf(tandem.CodeInvalid, "request body is empty; expected a WebAssembly module"))
		return
	}
	fns, err := c.Validate(r.Context(), wasm)
	if err != nil {
		writeError(w, err)
		return
	}
	d := &tandem.ContractDeploy{Name: name, Wasm: wasm, SHA256: tandem.WasmSHA256(wasm), Functions: fns, Rights: rights}
	if err := tandem.ValidateContractDeploy(d); err != nil {
		writeError(w, err)
		return
	}
	// The audit entry rides in the command: apply writes it with the
	// deploy, so no deploy goes unrecorded.
	res, err := s.propose(w, r, tandem.Command{Type: tandem.CmdDeployContract, Contract: d,
		Audit: s.changeAudit(r, "deploy_contract", name)})
	if err != nil {
		writeError(w, err)
		return
	}
	s.writeContractAt(w, r, name, res.Index, http.StatusCreated)
}

// writeContractAt answers with contract name as of (at least) index, once
// this node has applied it.
func (s *Server) writeContractAt(w http.ResponseWriter, r *http.Request, name string, index uint64, status int) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadTimeout)
	defer cancel()
	if err := s.opts.Cluster.WaitApplied(ctx, index); err != nil {
		writeError(w, waitError(err, "the change is committed but this node has not applied it yet"))
		return
	}
	info, err := s.opts.Contracts.Get(name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, status, map[string]any{"contract": info})
}

func (s *Server) listContracts(w http.ResponseWriter, r *http.Request) {
	c, _, ok := s.contractRead(w, r, false)
	if !ok {
		return
	}
	list, err := c.List()
	if err != nil {
		writeError(w, err)
		return
	}
	perms := s.principal(r).Perms
	visible := list[:0]
	for _, info := range list {
		if perms.AnyOn(info.Name, tandem.ActContractDeploy, tandem.ActContractCall) {
			visible = append(visible, info)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"contracts": visible})
}

func (s *Server) getContract(w http.ResponseWriter, r *http.Request) {
	c, name, ok := s.contractRead(w, r, true)
	if !ok {
		return
	}
	if !s.principal(r).Perms.AnyOn(name, tandem.ActContractDeploy, tandem.ActContractCall) {
		writeError(w, s.denied(r, auth.Forbidden(tandem.ActContractCall, name)))
		return
	}
	info, err := c.Get(name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"contract": info})
}

func (s *Server) rollbackContract(w http.ResponseWriter, r *http.Request) {
	c, name, err := s.namedContract(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var body struct {
		Version uint64 `json:"version"`
	}
	if err := s.decodeStrict(w, r, "rollback", &body); err != nil {
		writeError(w, err)
		return
	}
	if body.Version == 0 {
		writeError(w, tandem.Errorf(tandem.CodeInvalid, "rollback needs a version above 0"))
		return
	}
	// Refuse what is certainly wrong before proposing; apply checks again.
	if info, err := c.Get(name); err != nil {
		writeError(w, err)
		return
	} else if body.Version > uint64(len(info.Versions)) {
		writeError(w, tandem.Errorf(tandem.CodeNotFound, "contract %q has no version %d (it has 1 to %d)", name, body.Version, len(info.Versions)))
		return
	}
	res, err := s.propose(w, r, tandem.Command{Type: tandem.CmdActivateContract, Name: name, Version: body.Version,
		Audit: s.changeAudit(r, "rollback_contract", fmt.Sprintf("%s@%d", name, body.Version))})
	if err != nil {
		writeError(w, err)
		return
	}
	s.writeContractAt(w, r, name, res.Index, http.StatusOK)
}

func (s *Server) callContract(w http.ResponseWriter, r *http.Request) {
	c, name, err := s.namedContract(r)
	if err != nil {
		writeError(w, err)
		return
	}
	fn := r.PathValue("function")
	if err := tandem.ValidateName("function", fn); err != nil {
		writeError(w, err)
		return
	}
	arg, err := readLimited(w, r, s.opts.MaxBody)
	if err != nil {
		writeError(w, err)
		return
	}
	if len(arg) > 0 && !json.Valid(arg) {
		writeError(w, tandem.Errorf(tandem.CodeInvalid, "the argument is not valid JSON"))
		return
	}
	q := r.URL.Query()
	req := tandem.ContractCall{Contract: name, Function: fn, Arg: arg, Caller: callerOf(r)}
	// Read-only functions run here; everything else goes to the engine,
	// which passes it to the leader. A contract this node does not know
	// may be one it lags behind on (a deploy not applied here yet, or a
	// store that came back from a restart behind the log): catch up to a
	// linearizable read index first, whatever consistency the call asked
	// for, so that a read-only function is never mistaken for a write and
	// run on the leader over in-flight writes. Still unknown, it is the
	// leader's to judge.
	info, err := c.Get(name)
	if tandem.ErrorCode(err) == tandem.CodeNotFound {
		if berr := s.readBarrier(r, url.Values{}); berr != nil {
			writeError(w, berr)
			return
		}
		info, err = c.Get(name)
	}
	if err != nil && tandem.ErrorCode(err) != tandem.CodeNotFound {
		writeError(w, err)
		return
	}
	var res *tandem.CallResult
	if f := info.Function(fn); err == nil && f != nil && f.ReadOnly {
		if err := s.readBarrier(r, q); err != nil {
			writeError(w, err)
			return
		}
		res, err = c.ReadOnly(r.Context(), req)
	} else {
		d, terr := timeout(q, s.opts.WriteTimeout)
		if terr != nil {
			writeError(w, terr)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		res, err = c.Call(ctx, req)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set(IndexHeader, strconv.FormatUint(res.Index, 10))
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	c, err := s.contracts()
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	after, limit := uint64(0), defaultEventLimit
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, tandem.Errorf(tandem.CodeInvalid, "after %q is not a non-negative integer", v))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxEventLimit {
			writeError(w, tandem.Errorf(tandem.CodeInvalid, "limit %q is not between 1 and %d", v, maxEventLimit))
			return
		}
	}
	if _, _, ok := s.contractRead(w, r, false); !ok {
		return
	}
	evs, err := c.Events(after, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	// Only events of contracts the caller may deploy or call. A page may
	// then hold fewer than limit events; "next" says where to go on.
	perms := s.principal(r).Perms
	next := after
	visible := evs[:0]
	for _, ev := range evs {
		next = ev.Index
		if perms.AnyOn(ev.Contract, tandem.ActContractDeploy, tandem.ActContractCall) {
			visible = append(visible, ev)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": visible, "next_after": next})
}

// internalCall runs a contract call a follower passed to this node (the
// leader). The caller identity comes from the forwarding node, a member
// authenticated by its node certificate (nodeOnly), which checked the
// caller's contract.call permission.
func (s *Server) internalCall(w http.ResponseWriter, r *http.Request) {
	c, err := s.contracts()
	if err != nil {
		writeError(w, err)
		return
	}
	var req tandem.ContractCall
	if err := s.decodeStrict(w, r, "contract call", &req); err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.WriteTimeout)
	defer cancel()
	res, err := c.CallLocal(ctx, req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// Limits of a batch of forwarded calls (POST /internal/v1/calls). Nodes of
// this version forward each call on its own (POST /internal/v1/call over
// their multiplexed connection); the batch endpoint serves followers of
// older versions during a rolling upgrade, which cut their batches to
// fit (a single call larger than MaxCallBatchBytes went alone, bounded by
// the body limit instead).
const (
	MaxCallBatch      = 256
	MaxCallBatchBytes = 16 << 20
)

// CallBatchRequest is the body of POST /internal/v1/calls: contract calls
// a follower passes to the leader together, each with its own caller.
type CallBatchRequest struct {
	Calls []tandem.ContractCall `json:"calls"`
}

// CallBatchResult is one call's outcome in a CallBatchResponse: its result
// or its error, in the shape of an error answer.
type CallBatchResult struct {
	Result *tandem.CallResult `json:"result,omitempty"`
	Error  *tandem.Error      `json:"error,omitempty"`
}

// CallBatchResponse answers POST /internal/v1/calls when the follower does
// not accept NDJSON (an older version), one result per call in the
// request's order.
type CallBatchResponse struct {
	Results []CallBatchResult `json:"results"`
}

// internalCalls runs a batch of contract calls a follower passed to this
// node (the leader), as internalCall runs one: each call has its own
// caller and its own timeout. The calls run concurrently, started in the
// batch's order; the engine's execution slots bound how many execute at
// once and serve them in that order. A follower that accepts NDJSON gets
// each call's outcome as soon as it finishes (streamLines); an older one
// gets one CallBatchResponse once all have finished.
func (s *Server) internalCalls(w http.ResponseWriter, r *http.Request) {
	c, err := s.contracts()
	if err != nil {
		writeError(w, err)
		return
	}
	// A batch holds several calls, each up to the body limit on the
	// follower; a single call may still be as large as MaxBody.
	body, err := readLimited(w, r, max(MaxCallBatchBytes, s.opts.MaxBody)+4096)
	if err != nil {
		writeError(w, err)
		return
	}
	var req CallBatchRequest
	if err := decodeStrictBytes(body, "contract call batch", &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Calls) == 0 || len(req.Calls) > MaxCallBatch {
		writeError(w, tandem.Errorf(tandem.CodeInvalid, "contract call batch: %d calls; a batch holds 1 to %d", len(req.Calls), MaxCallBatch))
		return
	}
	lines := s.runBatch(r.Context(), c, req.Calls)
	if acceptsNDJSON(r) {
		streamLines(w, lines, len(req.Calls))
		return
	}
	resp := CallBatchResponse{Results: make([]CallBatchResult, len(req.Calls))}
	for range req.Calls {
		line := <-lines
		resp.Results[line.I] = line.CallBatchResult
	}
	writeJSON(w, http.StatusOK, resp)
}

// runBatch starts every call of a batch concurrently, in the batch's
// order, and returns their outcomes in completion order. The channel
// holds them all, so no call waits for a reader.
func (s *Server) runBatch(ctx context.Context, c Contracts, calls []tandem.ContractCall) <-chan CallStreamLine {
	lines := make(chan CallStreamLine, len(calls))
	for i := range calls {
		go func() {
			lines <- CallStreamLine{I: i, CallBatchResult: s.runForwarded(ctx, c, calls[i])}
		}()
	}
	return lines
}

// NDJSON is the media type of a streamed answer to POST
// /internal/v1/calls: a follower that sends it in Accept gets one
// CallStreamLine per call, written as each call finishes.
const NDJSON = "application/x-ndjson"

// CallStreamLine is one line of a streamed answer to POST
// /internal/v1/calls: the outcome of the call at index I of the batch.
type CallStreamLine struct {
	I int `json:"i"`
	CallBatchResult
}

// acceptsNDJSON reports whether the request's Accept header names NDJSON.
func acceptsNDJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), NDJSON) {
				return true
			}
		}
	}
	return false
}

// runForwarded runs one call of a batch with its own write timeout.
func (s *Server) runForwarded(ctx context.Context, c Contracts, call tandem.ContractCall) CallBatchResult {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	res, err := c.CallLocal(ctx, call)
	if err != nil {
		return CallBatchResult{Error: &tandem.Error{Code: tandem.ErrorCode(err), Message: tandem.ErrorMessage(err)}}
	}
	return CallBatchResult{Result: res}
}

// streamLines writes the n outcomes of a batch (runBatch) as lines as soon
// as each arrives. Lines that are ready together (calls of one Raft entry
// finish together) go out in one write: a flush per line was a system
// call per call on the leader. Once the follower is gone the remaining
// lines are dropped; the calls end with the request's context.
func streamLines(w http.ResponseWriter, lines <-chan CallStreamLine, n int) {
	w.Header().Set("Content-Type", NDJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w) // one value per line
	var failed bool
	for left := n; left > 0; {
		line := <-lines
		left--
		if failed {
			continue // the follower is gone
		}
		failed = enc.Encode(line) != nil
	ready: // the lines that are ready now go out with this one
		for !failed && left > 0 {
			select {
			case line := <-lines:
				left--
				failed = enc.Encode(line) != nil
			default:
				break ready
			}
		}
		if !failed {
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				failed = true
			}
		}
	}
}
