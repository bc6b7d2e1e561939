package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/errs"
)

// Problem is an RFC 9457 problem document with saasgate's machine-readable code.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
}

// ProblemType is the type URI of a code.
func ProblemType(code string) string { return "urn:saasgate:error:" + code }

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

// StatusOf is the HTTP status of a domain error kind.
func StatusOf(k errs.Kind) int { return kindStatus[k] }

// WriteProblem writes status, code and detail as application/problem+json.
func WriteProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{Type: ProblemType(code), Title: http.StatusText(status), Status: status, Detail: detail, Code: code})
}

// writeError turns any error into a problem. Domain errors keep their code; anything else
// is a 500 whose cause is logged (with the request id) and never shown.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := errs.As(err)
	if !ok {
		e = errs.Internal(err, "Internal error.")
	}
	status := StatusOf(e.Kind)
	if e.Kind == errs.KindInternal {
		a.Logger.Error("control API request failed",
			zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.String("request_id", infoFrom(r).RequestID), zap.Error(err))
	}
	if e.Code == "invalid_token" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	WriteProblem(w, status, e.Code, e.Message)
}
