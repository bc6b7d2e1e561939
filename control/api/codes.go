package api

import (
	"net/http"
	"slices"

	"github.com/saasgate/saasgate/control/errs"
)

// ErrorCode is one word of saasgate's error vocabulary: the code a client matches on and how
// an answer carrying it looks. An answer's detail and Retry-After come from the error itself.
type ErrorCode struct {
	Code string
	Kind errs.Kind
	// Challenge, when set, is the WWW-Authenticate value of every answer with this code.
	Challenge string
}

// Status is the HTTP status of the code's answers.
func (c ErrorCode) Status() int { return kindStatus[c.Kind] }

// Title is the problem's title: the status text, so that it reads the same for every code
// of a status.
func (c ErrorCode) Title() string { return http.StatusText(c.Status()) }

var kindStatus = map[errs.Kind]int{
	errs.KindInternal:        http.StatusInternalServerError,
	errs.KindBadRequest:      http.StatusBadRequest,
	errs.KindUnauthorized:    http.StatusUnauthorized,
	errs.KindForbidden:       http.StatusForbidden,
	errs.KindNotFound:        http.StatusNotFound,
	errs.KindConflict:        http.StatusConflict,
	errs.KindInvalid:         http.StatusUnprocessableEntity,
	errs.KindTooMany:         http.StatusTooManyRequests,
	errs.KindPaymentRequired: http.StatusPaymentRequired,
	errs.KindUnavailable:     http.StatusServiceUnavailable,
}

// errorCodes is every code the gateway and the control API answer with. A test holds it to
// the errs values the code declares and to the README's table.
var errorCodes = []ErrorCode{
	// Any route.
	{Code: "internal", Kind: errs.KindInternal},
	{Code: "bad_request", Kind: errs.KindBadRequest},
	{Code: "not_found", Kind: errs.KindNotFound},
	{Code: "not_ready", Kind: errs.KindUnavailable},
	{Code: "invalid_token", Kind: errs.KindUnauthorized, Challenge: `Bearer error="invalid_token"`},
	{Code: "forbidden", Kind: errs.KindForbidden},

	// The gateway's directives.
	{Code: "tenant_missing", Kind: errs.KindBadRequest},
	{Code: "tenant_conflict", Kind: errs.KindBadRequest},
	{Code: "tenant_not_found", Kind: errs.KindNotFound},
	{Code: "tenant_lookup_failed", Kind: errs.KindUnavailable},
	{Code: "tenant_suspended", Kind: errs.KindPaymentRequired},
	{Code: "tenant_mismatch", Kind: errs.KindForbidden},
	{Code: "rate_limited", Kind: errs.KindTooMany},
	{Code: "quota_exceeded", Kind: errs.KindTooMany},
	{Code: "limiter_unavailable", Kind: errs.KindUnavailable},
	{Code: "misconfigured", Kind: errs.KindInternal},

	// Accounts and roles.
	{Code: "invalid_credentials", Kind: errs.KindUnauthorized},
	{Code: "login_locked", Kind: errs.KindTooMany},
	{Code: "busy", Kind: errs.KindUnavailable},
	{Code: "invalid_email", Kind: errs.KindInvalid},
	{Code: "weak_password", Kind: errs.KindInvalid},
	{Code: "email_taken", Kind: errs.KindConflict},
	{Code: "invitation_required", Kind: errs.KindForbidden},
	{Code: "invalid_invitation", Kind: errs.KindForbidden},
	{Code: "tenant_required", Kind: errs.KindBadRequest},
	{Code: "user_not_found", Kind: errs.KindNotFound},
	{Code: "invalid_role", Kind: errs.KindInvalid},
	{Code: "last_owner", Kind: errs.KindConflict},
	{Code: "roles_busy", Kind: errs.KindUnavailable},

	// MFA.
	{Code: "mfa_required", Kind: errs.KindUnauthorized},
	{Code: "invalid_mfa_token", Kind: errs.KindUnauthorized},
	{Code: "invalid_mfa_code", Kind: errs.KindUnauthorized},
	{Code: "mfa_not_enrolled", Kind: errs.KindConflict},
	{Code: "mfa_not_enabled", Kind: errs.KindConflict},
	{Code: "mfa_already_enabled", Kind: errs.KindConflict},
	{Code: "mfa_enrollment_required", Kind: errs.KindForbidden},

	// Tenants.
	{Code: "invalid_tenant", Kind: errs.KindInvalid},
	{Code: "tenant_reserved", Kind: errs.KindInvalid},
	{Code: "tenant_exists", Kind: errs.KindConflict},
	{Code: "invalid_status", Kind: errs.KindInvalid},
	{Code: "unknown_plan", Kind: errs.KindInvalid},

	// Billing.
	{Code: "billing_disabled", Kind: errs.KindUnavailable},
	{Code: "billing_busy", Kind: errs.KindUnavailable},
	{Code: "store_unavailable", Kind: errs.KindUnavailable},
	{Code: "plan_not_purchasable", Kind: errs.KindInvalid},
	{Code: "subscription_exists", Kind: errs.KindConflict},
	{Code: "no_subscription", Kind: errs.KindConflict},
	{Code: "stripe_unavailable", Kind: errs.KindUnavailable},
	{Code: "invalid_signature", Kind: errs.KindBadRequest},
	{Code: "api_version_mismatch", Kind: errs.KindBadRequest},
	{Code: "event_in_progress", Kind: errs.KindConflict},

	// Webhook endpoints and deliveries.
	{Code: "invalid_webhook_url", Kind: errs.KindInvalid},
	{Code: "invalid_webhook_description", Kind: errs.KindInvalid},
	{Code: "invalid_event_type", Kind: errs.KindInvalid},
	{Code: "invalid_webhook_filter", Kind: errs.KindBadRequest},
	{Code: "webhook_endpoint_not_found", Kind: errs.KindNotFound},
	{Code: "webhook_delivery_not_found", Kind: errs.KindNotFound},
	{Code: "webhook_endpoint_limit", Kind: errs.KindConflict},
}

var codeIndex = func() map[string]ErrorCode {
	m := make(map[string]ErrorCode, len(errorCodes))
	for _, c := range errorCodes {
		m[c.Code] = c
	}
	return m
}()

// ErrorCodes lists every error code, grouped by where it arises.
func ErrorCodes() []ErrorCode { return slices.Clone(errorCodes) }

// codeOf is the row of e's code. A code missing from the table (its test forbids that) still
// answers with its kind's status.
func codeOf(e *errs.Error) ErrorCode {
	if c, ok := codeIndex[e.Code]; ok {
		return c
	}
	return ErrorCode{Code: e.Code, Kind: e.Kind}
}
