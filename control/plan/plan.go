// Package plan holds the plan catalog: what each plan allows (rate, burst, monthly quota) and
// which Stripe price buys it. Plans are configuration, not data: every replica builds the same
// catalog from its config.
package plan

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Rate is Count requests per Period.
type Rate struct {
	Count  int64
	Period time.Duration
}

// Interval is the emission interval of the rate: the time one request "costs".
func (r Rate) Interval() time.Duration { return r.Period / time.Duration(r.Count) }

func (r Rate) String() string { return strconv.FormatInt(r.Count, 10) + "/" + formatPeriod(r.Period) }

// Plan is one entry of the catalog.
type Plan struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Rate        Rate   `json:"-"`
	Burst       int64  `json:"burst"`
	Quota       int64  `json:"quota,omitempty"` // requests per month; 0 means unlimited
	StripePrice string `json:"-"`
	// Exact plans are decided by one Redis call per request instead of leased blocks.
	Exact bool `json:"-"`
}

// Purchasable reports whether the plan can be bought through Stripe Checkout.
func (p *Plan) Purchasable() bool { return p.StripePrice != "" }

// Catalog is an immutable set of plans plus the default one.
type Catalog struct {
	plans       map[string]*Plan
	byPrice     map[string]*Plan
	order       []string
	defaultPlan string
}

// DefaultPlans is the catalog used when the configuration defines no plan.
func DefaultPlans() []*Plan {
	return []*Plan{{ID: "free", Name: "Free", Rate: Rate{Count: 60, Period: time.Minute}, Burst: 60, Quota: 10000}}
}

// NewCatalog validates plans and builds a catalog. defaultPlan must name one of them.
func NewCatalog(plans []*Plan, defaultPlan string) (*Catalog, error) {
	if len(plans) == 0 {
		plans = DefaultPlans()
	}
	c := &Catalog{plans: make(map[string]*Plan, len(plans)), byPrice: map[string]*Plan{}, defaultPlan: defaultPlan}
	for _, p := range plans {
		if !ValidID(p.ID) {
			return nil, fmt.Errorf("plan id %q: use lower-case letters, digits, '-' and '_' (at most 64)", p.ID)
		}
		if _, dup := c.plans[p.ID]; dup {
			return nil, fmt.Errorf("plan %q defined twice", p.ID)
		}
		if p.Rate.Count <= 0 || p.Rate.Period <= 0 {
			return nil, fmt.Errorf("plan %q: a rate is required (e.g. 100/1h)", p.ID)
		}
		if p.Burst == 0 {
			p.Burst = p.Rate.Count
		}
		if p.Burst < 0 {
			return nil, fmt.Errorf("plan %q: burst must be positive", p.ID)
		}
		// The limiter computes in microseconds in doubles (Redis Lua): keep burst × interval,
		// the bucket's depth in time, far from 2^53 µs.
		if float64(p.Burst)*float64(p.Rate.Interval()/time.Microsecond) > 1e15 {
			return nil, fmt.Errorf("plan %q: burst × (period / count) exceeds 30 years", p.ID)
		}
		if p.Quota < 0 {
			return nil, fmt.Errorf("plan %q: quota must be positive", p.ID)
		}
		if p.Name == "" {
			p.Name = p.ID
		}
		if p.StripePrice != "" {
			if other, dup := c.byPrice[p.StripePrice]; dup {
				return nil, fmt.Errorf("plans %q and %q have the same stripe_price %q", other.ID, p.ID, p.StripePrice)
			}
			c.byPrice[p.StripePrice] = p
		}
		c.plans[p.ID] = p
		c.order = append(c.order, p.ID)
	}
	sort.Strings(c.order)
	if _, ok := c.plans[defaultPlan]; !ok {
		return nil, fmt.Errorf("default_plan %q is not a defined plan (defined: %s)", defaultPlan, strings.Join(c.order, ", "))
	}
	return c, nil
}

// Get returns a plan by id.
func (c *Catalog) Get(id string) (*Plan, bool) {
	p, ok := c.plans[id]
	return p, ok
}

// ByPrice returns the plan a Stripe price buys.
func (c *Catalog) ByPrice(price string) (*Plan, bool) {
	p, ok := c.byPrice[price]
	return p, ok
}

// Default returns the plan new tenants start on.
func (c *Catalog) Default() *Plan { return c.plans[c.defaultPlan] }

// All returns the plans sorted by id.
func (c *Catalog) All() []*Plan {
	out := make([]*Plan, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.plans[id])
	}
	return out
}

// ValidID reports whether s can be a plan id.
func ValidID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// ParseRate parses "<n>/<duration>" such as "100/1h" or "20/1s". A bare unit ("10/s", "5/m")
// means one of that unit.
func ParseRate(s string) (Rate, error) {
	countStr, perStr, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want <n>/<duration>, e.g. 100/1h", s)
	}
	n, err := strconv.ParseInt(countStr, 10, 64)
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("rate %q: count must be a positive integer", s)
	}
	if perStr != "" && (perStr[0] < '0' || perStr[0] > '9') {
		perStr = "1" + perStr
	}
	d, err := parseDuration(perStr)
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a positive duration (e.g. 1s, 1m, 1h, 1d)", s, perStr)
	}
	if d/time.Duration(n) < time.Microsecond {
		return Rate{}, fmt.Errorf("rate %q: more than a million requests per second is not supported", s)
	}
	return Rate{Count: n, Period: d}, nil
}

// ParseQuota parses "<n>/month".
func ParseQuota(s string) (int64, error) {
	countStr, unit, ok := strings.Cut(s, "/")
	if !ok || unit != "month" {
		return 0, fmt.Errorf("quota %q: want <n>/month, e.g. 100000/month", s)
	}
	n, err := strconv.ParseInt(countStr, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("quota %q: count must be a positive integer", s)
	}
	return n, nil
}

// parseDuration accepts Go durations plus a "d" (day) suffix, like Caddy's durations.
func parseDuration(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		days, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil {
			return 0, err
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

func formatPeriod(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
