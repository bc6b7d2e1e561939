package clustertest

import (
	"net/http"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// With Redis, the anonymous auth routes' limits are counted there, so every replica spends
// one budget per client address: three signups spread over two replicas use up 3/1h on both.
func TestReplicas_AuthRouteLimitIsOneBudgetAcrossReplicas(t *testing.T) {
	f := newFleet(t, "")
	f.extra = "\t\tauth_rate signup 3/1h\n"
	gws := f.start(t, 2)
	for i, name := range []string{"shared-one", "shared-two", "shared-three"} {
		gws[i%2].newTenant(t, name)
	}
	for _, g := range gws {
		r := g.api.Do(t, http.MethodPost, "/auth/signup", "",
			map[string]string{"email": "owner@shared-four.test", "password": testenv.Password, "tenant": "shared-four"})
		if r.Status != http.StatusTooManyRequests || r.Code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: a fourth signup from the address answered %s (Retry-After %q), want 429 rate_limited with Retry-After",
				g.name, r, r.Header.Get("Retry-After"))
		}
	}
}
