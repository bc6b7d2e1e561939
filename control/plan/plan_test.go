package plan

import (
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    Rate
		wantErr string
	}{
		{in: "100/1h", want: Rate{100, time.Hour}},
		{in: "20/1s", want: Rate{20, time.Second}},
		{in: "10/s", want: Rate{10, time.Second}},
		{in: "5/m", want: Rate{5, time.Minute}},
		{in: "1000/1d", want: Rate{1000, 24 * time.Hour}},
		{in: "3/500ms", want: Rate{3, 500 * time.Millisecond}},
		{in: "10/xyz", wantErr: "not a positive duration"},
		{in: "10", wantErr: "want <n>/<duration>"},
		{in: "0/1s", wantErr: "positive integer"},
		{in: "-1/1s", wantErr: "positive integer"},
		{in: "abc/1s", wantErr: "positive integer"},
		{in: "10/0s", wantErr: "not a positive duration"},
		{in: "10/-1s", wantErr: "not a positive duration"},
		{in: "2000000000/1ns", wantErr: "more than a million requests per second"},
		{in: "2000001/1s", wantErr: "more than a million requests per second"},
		{in: "1000000/1s", want: Rate{1000000, time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRate(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestRate_StringRoundTrips(t *testing.T) {
	for _, s := range []string{"100/1h", "20/1s", "5/1m", "7/2d", "3/500ms"} {
		r, err := ParseRate(s)
		if err != nil {
			t.Fatal(err)
		}
		if r.String() != s {
			t.Errorf("ParseRate(%q).String() = %q", s, r.String())
		}
	}
}

func TestParseQuota(t *testing.T) {
	if n, err := ParseQuota("1000/month"); err != nil || n != 1000 {
		t.Fatalf("ParseQuota(1000/month) = %d, %v", n, err)
	}
	for _, bad := range []string{"1000", "1000/day", "0/month", "-5/month", "x/month", "/month"} {
		if _, err := ParseQuota(bad); err == nil {
			t.Errorf("ParseQuota(%q) accepted", bad)
		}
	}
}

func TestNewCatalog_DefaultsAndErrors(t *testing.T) {
	c, err := NewCatalog(nil, "free")
	if err != nil {
		t.Fatal(err)
	}
	if c.Default().ID != "free" || c.Default().Burst != 60 {
		t.Fatalf("built-in default plan = %+v", c.Default())
	}

	pro := func() *Plan { return &Plan{ID: "pro", Rate: Rate{100, time.Second}} }
	c, err = NewCatalog([]*Plan{pro()}, "pro")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Get("pro"); p.Burst != 100 || p.Name != "pro" {
		t.Fatalf("burst and name should default to the rate count and the id, got %+v", p)
	}

	c, err = NewCatalog([]*Plan{pro(), {ID: "team", Rate: Rate{1, time.Second}, StripePrice: "price_team"}}, "pro")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := c.ByPrice("price_team"); !ok || p.ID != "team" {
		t.Fatalf("ByPrice(price_team) = %v, %v", p, ok)
	}
	if p, ok := c.ByPrice(""); ok {
		t.Fatalf("ByPrice(\"\") found %v: a plan without a price must not be bought by an empty price", p.ID)
	}

	bad := []struct {
		name    string
		plans   []*Plan
		def     string
		wantErr string
	}{
		{"unknown default", []*Plan{pro()}, "free", `default_plan "free" is not a defined plan`},
		{"duplicate", []*Plan{pro(), pro()}, "pro", "defined twice"},
		{"bad id", []*Plan{{ID: "Pro!", Rate: Rate{1, time.Second}}}, "Pro!", "plan id"},
		{"no rate", []*Plan{{ID: "x"}}, "x", "a rate is required"},
		{"negative burst", []*Plan{{ID: "x", Rate: Rate{1, time.Second}, Burst: -1}}, "x", "burst"},
		{"one price for two plans", []*Plan{
			{ID: "a", Rate: Rate{1, time.Second}, StripePrice: "price_1"},
			{ID: "b", Rate: Rate{1, time.Second}, StripePrice: "price_1"},
		}, "a", `plans "a" and "b" have the same stripe_price "price_1"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCatalog(tt.plans, tt.def)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
