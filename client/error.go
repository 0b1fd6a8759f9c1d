package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/tandemdb/tandem"
)

// Error is a call the server (or, with Status 0, the client itself) turned
// down. It unwraps to a *tandem.Error with the same code and message, so
// tandem.ErrorCode works on errors from a Client as on errors from an
// in-process node.
type Error struct {
	Status  int         // HTTP status; 0 when the call was not sent
	Code    tandem.Code // the server's error code
	Message string      // the server's explanation
}

func (e *Error) Error() string { return "tandem: " + string(e.Code) + ": " + e.Message }

func (e *Error) Unwrap() error { return &tandem.Error{Code: e.Code, Message: e.Message} }

// IsCode reports whether err is, or wraps, an *Error with the given code.
func IsCode(err error, code tandem.Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// invalid rejects a call before it is sent.
func invalid(msg string) *Error {
	return &Error{Code: tandem.CodeInvalid, Message: msg}
}

// errorFromReply decodes {"error": {"code", "message"}}. A reply in another
// shape (from a proxy, say) gets a code guessed from its status and its body
// as the message.
func errorFromReply(r *reply) *Error {
	var env struct {
		Error *struct {
			Code    tandem.Code `json:"code"`
			Message string      `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(r.body, &env) == nil && env.Error != nil && env.Error.Code != "" {
		return &Error{Status: r.status, Code: env.Error.Code, Message: env.Error.Message}
	}
	msg := strings.TrimSpace(string(r.body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(r.status)
	}
	return &Error{Status: r.status, Code: codeForStatus(r.status), Message: msg}
}

func codeForStatus(status int) tandem.Code {
	switch status {
	case http.StatusBadRequest:
		return tandem.CodeInvalid
	case http.StatusNotFound:
		return tandem.CodeNotFound
	case http.StatusConflict:
		return tandem.CodeConflict
	case http.StatusPreconditionFailed:
		return tandem.CodePreconditionFailed
	case http.StatusUnauthorized:
		return tandem.CodeUnauthenticated
	case http.StatusForbidden:
		return tandem.CodeForbidden
	case http.StatusTooManyRequests:
		return tandem.CodeRateLimited
	case http.StatusRequestEntityTooLarge:
		return tandem.CodeTooLarge
	case http.StatusServiceUnavailable:
		return tandem.CodeUnavailable
	case http.StatusGatewayTimeout:
		return tandem.CodeTimeout
	}
	if status >= 500 {
		return tandem.CodeInternal
	}
	return tandem.CodeInvalid
}
