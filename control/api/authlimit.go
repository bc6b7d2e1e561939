package api

import (
	"context"
	"net/http"

	"github.com/saasgate/saasgate/control/limit"
)

// AuthLimit decides one request of an anonymous auth route ("signup", "login", "refresh",
// "mfa") from a client IP.
type AuthLimit func(ctx context.Context, route, ip string) limit.Outcome

// authLimited throttles an anonymous route per client IP before anything else runs, so that
// a flood neither creates tenants nor fills the password hasher's queue.
func (a *API) authLimited(route string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if err := a.AuthLimit(r.Context(), route, infoFrom(r).IP).Refusal(limit.PerAddress); err != nil {
			return err
		}
		return h(w, r, c)
	}
}
