package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tandemdb/tandem"
)

// IndexHeader carries the commit index of a write, or the applied index a
// read was served at.
const IndexHeader = "Tandem-Index"

// ForwardedHeader marks a request one node passed to another, so the
// receiver does not pass it on again.
const ForwardedHeader = "Tandem-Forwarded"

type errorBody struct {
	Error tandem.Error `json:"error"`
}

// httpStatus maps error codes to HTTP statuses. The only place that does.
func httpStatus(c tandem.Code) int {
	switch c {
	case tandem.CodeInvalid:
		return http.StatusBadRequest
	case tandem.CodeNotFound:
		return http.StatusNotFound
	case tandem.CodeConflict:
		return http.StatusConflict
	case tandem.CodePreconditionFailed:
		return http.StatusPreconditionFailed
	case tandem.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case tandem.CodeUnavailable:
		return http.StatusServiceUnavailable
	case tandem.CodeTimeout:
		return http.StatusGatewayTimeout
	case tandem.CodeUnauthenticated:
		return http.StatusUnauthorized
	case tandem.CodeForbidden:
		return http.StatusForbidden
	case tandem.CodeRateLimited:
		return http.StatusTooManyRequests
	case tandem.CodeContractError, tandem.CodeContractFault:
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	securityHeaders(w, err)
	code := tandem.ErrorCode(err)
	writeJSON(w, httpStatus(code), errorBody{Error: tandem.Error{Code: code, Message: tandem.ErrorMessage(err)}})
}

// readLimited reads the request body up to limit bytes. A body of
// declared length is read into a buffer of that size: io.ReadAll's
// doubling from 512 bytes cost a leader 2.5% of its CPU on the batches
// followers forward (several KiB each).
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	var b []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= limit {
		// net/http ends the body at its declared length.
		b = make([]byte, n)
		_, err = io.ReadFull(body, b)
	} else {
		b, err = io.ReadAll(body)
	}
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, tandem.Errorf(tandem.CodeTooLarge, "request body is larger than %d bytes", limit)
		}
		return nil, tandem.Errorf(tandem.CodeInvalid, "cannot read request body: %v", err)
	}
	return b, nil
}

// readBody reads the request body up to the server's limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := readLimited(w, r, s.opts.MaxBody)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, tandem.Errorf(tandem.CodeInvalid, "request body is empty; expected JSON")
	}
	return body, nil
}

// decodeStrict decodes a JSON body into v, refusing unknown fields and
// trailing data, with messages that name the problem.
func (s *Server) decodeStrict(w http.ResponseWriter, r *http.Request, what string, v any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeStrictBytes(body, what, v)
}

// decodeStrictBytes is decodeStrict's decoding step.
func decodeStrictBytes(body []byte, what string, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return tandem.Errorf(tandem.CodeInvalid, "%s: field %q must be %s, not a JSON %s", what, te.Field, te.Type, te.Value)
		}
		return tandem.Errorf(tandem.CodeInvalid, "%s is not valid: %v", what, err)
	}
	if dec.More() {
		return tandem.Errorf(tandem.CodeInvalid, "%s: unexpected data after the JSON value", what)
	}
	return nil
}

const maxTimeout = 60 * time.Second

// timeout returns the request's ?timeout= or def.
func timeout(q url.Values, def time.Duration) (time.Duration, error) {
	v := q.Get("timeout")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, tandem.Errorf(tandem.CodeInvalid, "timeout %q is not a positive Go duration such as 5s or 500ms", v)
	}
	return min(d, maxTimeout), nil
}

// readBarrier waits until this node's state satisfies the read consistency
// the request asks for (docs/api.md, "Read consistency"). q is the request's
// parsed query string.
func (s *Server) readBarrier(r *http.Request, q url.Values) error {
	cons, mi := q.Get("consistency"), q.Get("min_index")
	if cons == string(tandem.ReadLocal) || mi != "" {
		if err := s.opts.Cluster.LocalReadable(); err != nil {
			return err
		}
	}
	if cons == string(tandem.ReadLocal) && mi == "" {
		return nil // the common fast path: no waiting, no timer
	}
	d, err := timeout(q, s.opts.ReadTimeout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()

	if mi != "" {
		n, err := strconv.ParseUint(mi, 10, 64)
		if err != nil {
			return tandem.Errorf(tandem.CodeInvalid, "min_index %q is not a non-negative integer", mi)
		}
		if err := s.opts.Cluster.WaitApplied(ctx, n); err != nil {
			return waitError(err, fmt.Sprintf("this node has not applied index %d yet", n))
		}
		if cons == "" {
			return nil // min_index alone: no leader round trip
		}
	}
	switch tandem.Consistency(cons) {
	case tandem.ReadLocal:
		return nil
	case "", tandem.ReadLinearizable:
		idx, err := s.opts.Cluster.ReadIndex(ctx)
		if err != nil {
			return waitError(err, "could not confirm the read with the leader")
		}
		if err := s.opts.Cluster.WaitApplied(ctx, idx); err != nil {
			return waitError(err, fmt.Sprintf("this node has not applied the read index %d yet", idx))
		}
		return nil
	default:
		return tandem.Errorf(tandem.CodeInvalid, "consistency %q is not one of local, linearizable", cons)
	}
}

func waitError(err error, msg string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return tandem.WrapError(tandem.CodeTimeout, err, "%s (timed out)", msg)
	}
	if errors.Is(err, context.Canceled) {
		return tandem.WrapError(tandem.CodeTimeout, err, "%s (request canceled)", msg)
	}
	var te *tandem.Error
	if errors.As(err, &te) {
		return te
	}
	return tandem.WrapError(tandem.CodeUnavailable, err, "%s: %v", msg, err)
}

// propose submits cmd with the request's write timeout and sets the index
// header on success.
func (s *Server) propose(w http.ResponseWriter, r *http.Request, cmd tandem.Command) (tandem.Result, error) {
	d, err := timeout(r.URL.Query(), s.opts.WriteTimeout)
	if err != nil {
		return tandem.Result{}, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	res, err := s.opts.Proposer.Propose(ctx, cmd)
	if err != nil {
		return res, err
	}
	if res.Err != nil {
		return res, res.Err
	}
	w.Header().Set(IndexHeader, strconv.FormatUint(res.Index, 10))
	return res, nil
}

func setReadIndex(w http.ResponseWriter, idx uint64) {
	w.Header().Set(IndexHeader, strconv.FormatUint(idx, 10))
}

func etag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }
