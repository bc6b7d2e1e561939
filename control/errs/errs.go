// Package errs defines the domain error used across the control plane. A domain error carries
// a Kind (which the HTTP layer maps to a status) and a machine-readable Code (which clients
// match on). Domain packages return them; only control/api turns them into problem+json.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies a domain error independently of any transport.
type Kind int

const (
	KindInternal        Kind = iota // a bug or an infrastructure failure
	KindBadRequest                  // malformed input
	KindUnauthorized                // missing or bad credentials
	KindForbidden                   // authenticated but not allowed
	KindNotFound                    // no such resource (or not visible to the caller)
	KindConflict                    // state conflicts with the request (duplicates, last owner)
	KindInvalid                     // well-formed but semantically invalid input
	KindTooMany                     // throttled; RetryAfter says for how long
	KindPaymentRequired             // tenant suspended for billing
	KindUnavailable                 // a dependency is down or a feature is disabled
)

// Error is a domain error. Code is stable: control/api's error table and the README list every one.
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	RetryAfter time.Duration // for KindTooMany
	Extra      map[string]any
	Err        error // cause, never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// E builds a domain error.
func E(kind Kind, code, msg string) *Error {
	return &Error{Kind: kind, Code: code, Message: msg}
}

// Ef builds a domain error with a formatted message.
func Ef(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an infrastructure failure; the cause is logged, never returned to clients.
func Internal(err error, msg string) *Error {
	return &Error{Kind: KindInternal, Code: "internal", Message: msg, Err: err}
}

// As returns the domain error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Is reports whether err is a domain error with the given code.
func Is(err error, code string) bool {
	e, ok := As(err)
	return ok && e.Code == code
}

// Common errors shared by several packages.
var (
	ErrForbidden    = E(KindForbidden, "forbidden", "Your role does not allow this action.")
	ErrInvalidToken = E(KindUnauthorized, "invalid_token", "The access token is missing, malformed or expired.")
)
