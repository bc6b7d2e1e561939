package limit

import (
	"testing"
	"time"
)

func TestMonthFrom(t *testing.T) {
	d := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ anchor, at, start, end string }{
		{"2026-01-15T10:00:00Z", "2026-01-15T10:00:00Z", "2026-01-15T10:00:00Z", "2026-02-15T10:00:00Z"},
		{"2026-01-15T10:00:00Z", "2026-02-15T09:59:59Z", "2026-01-15T10:00:00Z", "2026-02-15T10:00:00Z"},
		{"2026-01-15T10:00:00Z", "2026-03-20T00:00:00Z", "2026-03-15T10:00:00Z", "2026-04-15T10:00:00Z"},
		{"2026-01-15T10:00:00Z", "2025-12-20T00:00:00Z", "2025-12-15T10:00:00Z", "2026-01-15T10:00:00Z"}, // before the anchor
		{"2026-01-31T00:00:00Z", "2026-02-28T12:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"}, // clamped to February's end
		{"2026-01-31T00:00:00Z", "2026-02-27T12:00:00Z", "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"},
		{"2025-12-10T00:00:00Z", "2026-01-09T23:00:00Z", "2025-12-10T00:00:00Z", "2026-01-10T00:00:00Z"}, // across a year
	} {
		p := MonthFrom(d(c.anchor), d(c.at))
		if !p.Start.Equal(d(c.start)) || !p.End.Equal(d(c.end)) {
			t.Errorf("MonthFrom(%s, %s) = %s..%s, want %s..%s", c.anchor, c.at, p.Start, p.End, c.start, c.end)
		}
		if at := d(c.at); at.Before(p.Start) || !at.Before(p.End) {
			t.Errorf("MonthFrom(%s, %s) does not contain the time", c.anchor, c.at)
		}
	}
}
