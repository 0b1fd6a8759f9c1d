package checker

import (
	"errors"
	"net"
	"net/http"

	"github.com/tandemdb/tandem/client"
)

// Outcome is what a client knows about an operation once its call returned.
type Outcome string

// Outcomes.
const (
	Ok      Outcome = "ok"       // the server acknowledged it
	Fail    Outcome = "fail"     // definitely not applied (a 4xx answer)
	Unknown Outcome = "unknown"  // may or may not have been applied
	NotSent Outcome = "not_sent" // never reached a server
)

// Classify turns the error of a client call into an Outcome. Server errors
// (5xx, including 503 and 504), timeouts and broken connections are
// Unknown: the request may have been applied. A 4xx answer is a definite
// Fail. A connection that could not be dialled is NotSent.
func Classify(err error) Outcome {
	if err == nil {
		return Ok
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		if ce.Status >= http.StatusInternalServerError || ce.Status == 0 {
			// Status 0 is the client refusing a call before sending it;
			// the workloads never make such calls, so be conservative.
			return Unknown
		}
		return Fail
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return NotSent
	}
	return Unknown
}

// Status returns the HTTP status of an API error, or 0.
func Status(err error) int {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Status
	}
	return 0
}

// Consistency levels of reads, as recorded in histories.
const (
	Linearizable = "linearizable"
	Local        = "local"
	MinIndex     = "min_index"
)
