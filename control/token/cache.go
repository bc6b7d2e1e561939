package token

import (
	"sync"
	"sync/atomic"

	"github.com/saasgate/saasgate/control/identity"
)

// VerifiedCache remembers access tokens that verified, until they expire, so the gateway pays
// for signature and claim checks once per token rather than once per request. It belongs to
// one Keys: a new secret means a new cache (Keys.Fingerprint tells when another Keys verifies
// alike, so the cache can serve it too). Failed verifications are not remembered.
//
// What it keeps of a token is a V built once from the token's principal: the adapter keeps
// the principal with the forms its request path hands it on in (boxed for placeholders, as
// header values), so that a request allocates none of them and this package knows nothing of
// them.
type VerifiedCache[V any] struct {
	keys  *Keys
	max   int
	build func(identity.Principal) V
	mu    sync.RWMutex
	m     map[string]verified[V]
	// checks counts the signature and claim checks made: tokens not (or no longer) cached.
	checks atomic.Uint64
}

type verified[V any] struct {
	v   V
	exp int64 // unix ns, with the leeway added
}

// NewVerifiedCache caches at most max tokens of keys, keeping build(principal) for each.
func NewVerifiedCache[V any](keys *Keys, max int, build func(identity.Principal) V) *VerifiedCache[V] {
	return &VerifiedCache[V]{keys: keys, max: max, build: build, m: make(map[string]verified[V], max/4)}
}

// Verify is Keys.Verify, answered from memory for a token seen before.
func (c *VerifiedCache[V]) Verify(raw string) (V, error) {
	now := c.keys.now().UnixNano()
	c.mu.RLock()
	e, ok := c.m[raw]
	c.mu.RUnlock()
	if ok && now < e.exp {
		return e.v, nil
	}
	c.checks.Add(1)
	p, claims, err := c.keys.verify(raw, TypeAccess)
	if err != nil {
		var zero V
		return zero, err
	}
	e = verified[V]{v: c.build(p), exp: claims.ExpiresAt.Time.Add(Leeway).UnixNano()}
	c.mu.Lock()
	if len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[raw] = e
	c.mu.Unlock()
	return e.v, nil
}

// evict drops expired tokens, then arbitrary ones down to 90 % of max. Called with mu held.
func (c *VerifiedCache[V]) evict(now int64) {
	for k, e := range c.m {
		if e.exp <= now {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) < c.max*9/10 {
			break
		}
		delete(c.m, k)
	}
}

// Len reports how many tokens are cached.
func (c *VerifiedCache[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Checks reports how many tokens Verify has checked (signature and claims) rather than
// answered from memory, failed ones included.
func (c *VerifiedCache[V]) Checks() uint64 { return c.checks.Load() }
