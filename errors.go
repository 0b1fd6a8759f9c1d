package tandem

import (
	"errors"
	"fmt"
)

// Code classifies an error. The API layer maps codes to HTTP status codes;
// nothing below it knows about HTTP.
type Code string

// Error codes. The string values appear in API responses and are stable.
const (
	CodeInvalid            Code = "invalid"             // malformed or ill-typed input
	CodeNotFound           Code = "not_found"           // table, record or node does not exist
	CodeConflict           Code = "conflict"            // insert of an existing key, failed tx condition
	CodePreconditionFailed Code = "precondition_failed" // If-Match version is stale
	CodeTooLarge           Code = "too_large"           // body or result over a limit
	CodeUnavailable        Code = "unavailable"         // no leader, shutting down
	CodeTimeout            Code = "timeout"             // deadline passed; outcome unknown
	CodeInternal           Code = "internal"            // a bug or an I/O failure

	// Security (docs/security.md).
	CodeUnauthenticated Code = "unauthenticated" // no or bad credentials
	CodeForbidden       Code = "forbidden"       // authenticated, but lacks a permission
	CodeRateLimited     Code = "rate_limited"    // too many failed logins; retry later
	// CodeContractError: a contract function returned an error (its own
	// business rule said no, e.g. "insufficient balance").
	CodeContractError Code = "contract_error"
	// CodeContractFault: a contract misbehaved (panicked, ran past its time
	// or memory limit, wrote too much, broke the host ABI). Only its own
	// call fails.
	CodeContractFault Code = "contract_fault"
)

// Error is the error type that crosses package boundaries. Message is meant
// for the client and must say what was wrong with the request.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Err is the cause, kept for logs and errors.Is; never sent to clients.
	Err error `json:"-"`
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return "tandem: " + string(e.Code) + ": " + e.Err.Error()
	}
	return "tandem: " + string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with the given code whose cause is err.
func WrapError(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of err: the code of the first *Error in its
// chain, CodeInternal for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-facing message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Message != "" {
			return e.Message
		}
		if e.Err != nil {
			return e.Err.Error()
		}
	}
	if err == nil {
		return ""
	}
	return "internal error"
}
