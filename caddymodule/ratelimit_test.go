package caddymodule

import "testing"

func TestRateLimitLists(t *testing.T) {
	for _, c := range []struct {
		remaining, reset int64
		rateLimit, left  string
	}{
		{0, 1, `"free";r=0;t=1`, "0"},
		{999_999, 86_400, `"free";r=999999;t=86400`, "999999"},
		{-1, 0, `"free";r=-1;t=0`, "-1"},
	} {
		l := rateLimitLists(`"free";r=`, c.remaining, c.reset)
		if len(l) != 2 || l[0] != c.rateLimit || l[1] != c.left {
			t.Errorf("rateLimitLists(%d, %d) = %q, want [%q %q]", c.remaining, c.reset, l, c.rateLimit, c.left)
		}
	}
	long := `"` + string(make([]byte, 200)) + `";r=` // longer than the stack buffer
	if l := rateLimitLists(long, 7, 3); l[0] != long+"7;t=3" || l[1] != "7" {
		t.Errorf("a long plan name: %q", l)
	}
}
