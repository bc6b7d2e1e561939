package api

import (
	"context"
	"net/http"
	"time"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/limit"
)

// AuthLimit decides one request of an anonymous auth route ("signup", "login", "refresh",
// "mfa") from a client IP.
type AuthLimit func(ctx context.Context, route, ip string) limit.Outcome

// authLimited throttles an anonymous route per client IP before anything else runs, so that
// a flood neither creates tenants nor fills the password hasher's queue.
func (a *API) authLimited(route string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		out := a.AuthLimit(r.Context(), route, infoFrom(r).IP)
		switch {
		case out.Denied:
			return &errs.Error{Kind: errs.KindUnavailable, Code: "limiter_unavailable",
				Message: "The rate limiter is unavailable; try again.", RetryAfter: time.Second}
		case !out.Allowed:
			return &errs.Error{Kind: errs.KindTooMany, Code: "rate_limited",
				Message: "Too many requests from this address; try again later.", RetryAfter: max(out.RetryAfter, time.Second)}
		}
		return h(w, r, c)
	}
}
