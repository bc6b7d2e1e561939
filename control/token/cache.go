package token

import (
	"sync"

	"github.com/saasgate/saasgate/control/identity"
)

// VerifiedCache remembers access tokens that verified, until they expire, so the gateway pays
// for signature and claim checks once per token rather than once per request. It belongs to
// one Keys: a new secret means a new cache. Failed verifications are not remembered.
type VerifiedCache struct {
	keys *Keys
	max  int
	mu   sync.RWMutex
	m    map[string]*Caller
}

// Caller is a verified principal, with the forms the request path hands it on in made once
// per token instead of once per request: its user id boxed (for placeholders) and as a
// single-value list (for headers). The list is shared: never append to it.
type Caller struct {
	identity.Principal
	BoxedUserID any
	UserIDList  []string
	exp         int64 // unix ns, with the leeway added
}

// NewVerifiedCache caches at most max tokens of keys.
func NewVerifiedCache(keys *Keys, max int) *VerifiedCache {
	return &VerifiedCache{keys: keys, max: max, m: make(map[string]*Caller, max/4)}
}

// Verify is Keys.Verify, answered from memory for a token seen before.
func (c *VerifiedCache) Verify(raw string) (*Caller, error) {
	now := c.keys.now().UnixNano()
	c.mu.RLock()
	v := c.m[raw]
	c.mu.RUnlock()
	if v != nil && now < v.exp {
		return v, nil
	}
	p, exp, err := c.keys.verify(raw)
	if err != nil {
		return nil, err
	}
	v = &Caller{Principal: p, BoxedUserID: p.UserID, UserIDList: []string{p.UserID},
		exp: exp.Add(Leeway).UnixNano()}
	c.mu.Lock()
	if len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[raw] = v
	c.mu.Unlock()
	return v, nil
}

// evict drops expired tokens, then arbitrary ones down to 90 % of max. Called with mu held.
func (c *VerifiedCache) evict(now int64) {
	for k, v := range c.m {
		if v.exp <= now {
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
func (c *VerifiedCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
