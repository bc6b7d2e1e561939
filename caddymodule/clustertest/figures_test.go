package clustertest

import (
	"net/http"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// A tenant whose bucket is full (new, or idle long enough) has the plan's whole burst: GET
// /rate-limit, which consumes nothing, shows all of it, and the request that takes one shows
// burst-1 in X-RateLimit-Remaining. The in-process limiter gives exactly these figures; the
// Redis one must agree, on every such request, or the first answer a returning tenant sees
// claims one request less than its plan grants. Each round empties the bucket in Redis, so the
// round starts from a full one.
func TestRedisLimiter_FullBucketShowsBurstMinusOneRemaining(t *testing.T) {
	t.Parallel()
	f := newFleet(t, planBlock("free", "5/1h", 5))
	g := f.start(t, 1)[0]
	token := g.newTenant(t, "full-bucket")
	rc := testenv.RedisClient(t)
	key := bucketKey(f.prefix, "full-bucket", "free")

	const rounds = 20
	var peeked, taken []string
	for range rounds {
		if err := rc.Del(ctx(t), key).Err(); err != nil {
			t.Fatalf("emptying %s: %v", key, err)
		}
		st := g.api.Do(t, http.MethodGet, "/rate-limit", token, nil)
		if st.Status != http.StatusOK {
			t.Fatalf("GET /rate-limit: %s", st)
		}
		if left := st.Body["requests_remaining"]; left != float64(5) {
			peeked = append(peeked, string(st.Raw))
		}
		r := g.mustTenantRequest(t, "full-bucket", token)
		if r.Status != http.StatusOK {
			t.Fatalf("request into a full bucket: %s", r)
		}
		if left := r.Header.Get("X-RateLimit-Remaining"); left != "4" {
			taken = append(taken, "X-RateLimit-Remaining "+left+", RateLimit "+r.Header.Get("RateLimit"))
		}
	}
	if len(peeked) > 0 {
		t.Errorf("GET /rate-limit on a full bucket of 5: not 5 remaining in %d of %d rounds, e.g. %s", len(peeked), rounds, peeked[0])
	}
	if len(taken) > 0 {
		t.Errorf("first request into a full bucket of 5: not 4 remaining in %d of %d rounds, e.g. %s", len(taken), rounds, taken[0])
	}
}
