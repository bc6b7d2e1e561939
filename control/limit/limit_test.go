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

// A PeriodCache answers what MonthOf and MonthFrom would, however time moves: forward over a
// period's end, exactly onto it, or back (a clock stepped back).
func TestPeriodCache_FollowsTime(t *testing.T) {
	anchor := time.Date(2026, 1, 31, 8, 0, 0, 0, time.UTC)
	for _, anchored := range []bool{false, true} {
		var c PeriodCache
		a := time.Time{}
		if anchored {
			a = anchor
		}
		for _, at := range []time.Time{
			time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 2, 20, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 2, 28, 8, 0, 0, 0, time.UTC), // the anchored period's end
			time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),  // the calendar month's end
			time.Date(2026, 3, 31, 7, 59, 0, 0, time.UTC),
			time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), // back
			time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC),
		} {
			want := MonthOf(at)
			if anchored {
				want = MonthFrom(anchor, at)
			}
			if got := c.Get(a, at); got != want {
				t.Errorf("anchored %v, at %s: %s..%s, want %s..%s", anchored, at, got.Start, got.End, want.Start, want.End)
			}
			if got := ThisMonth(at); got != MonthOf(at) {
				t.Errorf("ThisMonth(%s) = %s..%s, want the calendar month", at, got.Start, got.End)
			}
		}
	}
}
