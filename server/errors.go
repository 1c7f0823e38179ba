package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/streamspace/enterprise/schemas"
)

// Code is a stable, documented error code: clients switch on it, so a code is
// never renamed or reused for another meaning.
type Code string

// The error codes of the API. statusOf maps each to its HTTP status.
const (
	CodeValidation       Code = "VALIDATION_ERROR"
	CodeUnauthorized     Code = "UNAUTHORIZED"
	CodeForbidden        Code = "FORBIDDEN"
	CodeNotFound         Code = "NOT_FOUND"
	CodeMethodNotAllowed Code = "METHOD_NOT_ALLOWED"
	CodeConflict         Code = "CONFLICT"
	CodeQuotaExceeded    Code = "QUOTA_EXCEEDED" // details: resource, limit, used
	CodePayloadTooLarge  Code = "PAYLOAD_TOO_LARGE"
	CodeRateLimited      Code = "RATE_LIMITED"
	CodeUnavailable      Code = "UNAVAILABLE"
	CodeInternal         Code = "INTERNAL"
	// CodeIPNotAllowed: the request's client address is outside the IP
	// allowlist that applies to the caller (details: client_ip).
	CodeIPNotAllowed Code = "IP_NOT_ALLOWED"
	// CodeLockoutRisk: an allowlist change would refuse the caller's own
	// current address; repeat it with force to apply it anyway (details:
	// client_ip, reason).
	CodeLockoutRisk Code = "LOCKOUT_RISK"
	// CodeAccountLocked: too many failed sign-ins in a row; the account is
	// locked until details.locked_until (or an admin clears it).
	CodeAccountLocked Code = "ACCOUNT_LOCKED"
	// CodeMFARequired: the change needs a fresh MFA code, and none (or a
	// wrong one) came with it.
	CodeMFARequired Code = "MFA_REQUIRED"
	// CodeMFAEnrollmentRequired: an MFA policy covers the caller, who must
	// set up a method before anything else.
	CodeMFAEnrollmentRequired Code = "MFA_ENROLLMENT_REQUIRED"
)

// statusOf is the one table from error code to HTTP status.
func statusOf(c Code) int {
	switch c {
	case CodeValidation:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden, CodeIPNotAllowed, CodeAccountLocked, CodeMFARequired, CodeMFAEnrollmentRequired:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict, CodeQuotaExceeded, CodeLockoutRisk:
		return http.StatusConflict
	case CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is an error a client may see: its code, message and details are sent
// as the seed's envelope {"error":{"code","message","details"}}.
type Error struct {
	Code    Code
	Message string
	Details map[string]any
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf builds a client-facing error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// fieldError is a VALIDATION_ERROR about one field, in the seed's shape.
func fieldError(field, issue string) *Error {
	return &Error{Code: CodeValidation, Message: "Invalid request parameters",
		Details: map[string]any{"field": field, "issue": issue}}
}

type envelope struct {
	Error envelopeBody `json:"error"`
}

type envelopeBody struct {
	Code    Code           `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// writeError answers with the envelope for err. Errors that are not *Error
// are internal: they are logged with the request ID and the client sees only
// that ID, never the cause.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, schemas.ErrNotFound):
		e = Errorf(CodeNotFound, "resource not found")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away; nobody reads the answer
	default:
		logger.ErrorContext(r.Context(), "request failed", "err", err, "request_id", requestID(r.Context()))
		e = &Error{Code: CodeInternal, Message: "internal error",
			Details: map[string]any{"request_id": requestID(r.Context())}}
	}
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	writeJSON(w, statusOf(e.Code), envelope{Error: envelopeBody{Code: e.Code, Message: e.Message, Details: details}})
}
