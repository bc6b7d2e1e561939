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

// asProblem returns the domain error inside err; anything else is an internal error whose
// cause stays out of the answer.
func asProblem(err error) *errs.Error {
	if e, ok := errs.As(err); ok {
		return e
	}
	return errs.Internal(err, "Internal error.")
}

// StatusOf is the HTTP status that answers e, from its code's row in the table.
func StatusOf(e *errs.Error) int { return codeOf(e).Status() }

// SetErrorHeaders sets the headers that go with e: its code's challenge and e's Retry-After.
// A caller that hands e on to someone else to answer (Caddy's handle_errors routes) sets them
// first.
func SetErrorHeaders(h http.Header, e *errs.Error) {
	if c := codeOf(e).Challenge; c != "" {
		h.Set("WWW-Authenticate", c)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
}

// WriteError answers with err as problem+json: the gateway's refusals and the control API's
// errors alike.
func WriteError(w http.ResponseWriter, err error) {
	e := asProblem(err)
	c := codeOf(e)
	SetErrorHeaders(w.Header(), e)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(c.Status())
	p := Problem{Type: ProblemType(e.Code), Title: c.Title(), Status: c.Status(), Detail: e.Message, Code: e.Code}
	if len(e.Extra) > 0 {
		_ = json.NewEncoder(w).Encode(withExtra(p, e.Extra))
		return
	}
	_ = json.NewEncoder(w).Encode(p)
}

// withExtra is p with an error's extra members (RFC 9457 extensions, such as a login's
// mfa_token); the problem's own members win over an extra of the same name.
func withExtra(p Problem, extra map[string]any) map[string]any {
	out := make(map[string]any, len(extra)+5)
	for k, v := range extra {
		out[k] = v
	}
	out["type"], out["title"], out["status"], out["code"] = p.Type, p.Title, p.Status, p.Code
	if p.Detail != "" {
		out["detail"] = p.Detail
	}
	return out
}

// writeError is WriteError for the API's handlers, which log what went wrong inside (with the
// request id); the gateway logs its own.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := errs.As(err); !ok || e.Kind == errs.KindInternal {
		a.Logger.Error("control API request failed",
			zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.String("request_id", infoFrom(r).RequestID), zap.Error(err))
	}
	WriteError(w, err)
}
