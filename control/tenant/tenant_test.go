package tenant

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/store"
)

func TestSlug(t *testing.T) {
	tests := map[string]string{
		"Acme Corp":         "acme-corp",
		"  Acme   Corp  ":   "acme-corp",
		"acme-corp":         "acme-corp",
		"ACME_Corp, Inc.":   "acme-corp-inc",
		"Café Müller":       "caf-m-ller",
		"--x--":             "x",
		"":                  "",
		"日本":                "",
		"a1b2":              "a1b2",
		"Acme.Corp/Billing": "acme-corp-billing",
	}
	for in, want := range tests {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateID(t *testing.T) {
	ok := []string{"abc", "acme-corp", "a1b", "x-y-z", strings.Repeat("a", 63)}
	for _, id := range ok {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want ok", id, err)
		}
	}
	bad := map[string]string{
		"a":                     "invalid_tenant",
		"ab":                    "invalid_tenant",
		"-abc":                  "invalid_tenant",
		"abc-":                  "invalid_tenant",
		"ABC":                   "invalid_tenant",
		"a_b":                   "invalid_tenant",
		"a.b.c":                 "invalid_tenant",
		strings.Repeat("a", 64): "invalid_tenant",
		"api":                   "tenant_reserved",
		"www":                   "tenant_reserved",
		"system":                "tenant_reserved",
		"billing":               "tenant_reserved",
		"mail":                  "tenant_reserved",
	}
	for id, code := range bad {
		err := ValidateID(id)
		if !errs.Is(err, code) {
			t.Errorf("ValidateID(%q) = %v, want code %s", id, err, code)
		}
	}
}

func TestFromHost(t *testing.T) {
	tests := []struct {
		host, base string
		want       string
		ok         bool
	}{
		{"acme.localhost", "localhost", "acme", true},
		{"acme.localhost:8080", "localhost", "acme", true},
		{"ACME.LocalHost:8080", "localhost", "acme", true},
		{"acme.localhost.", "localhost", "acme", true},
		{"x.acme.example.com", "example.com", "x", true},
		{"localhost", "localhost", "", false},
		{"localhost:8080", "localhost", "", false},
		{".localhost", "localhost", "", false},
		{"acmelocalhost", "localhost", "", false},
		{"acme.example.org", "example.com", "", false},
		{"acme.notexample.com", "example.com", "", false},
		{"127.0.0.1:8080", "localhost", "", false},
		{"[::1]:8080", "localhost", "", false},
		{"a:b.localhost:1", "localhost", "", false}, // found by FuzzFromHost: not a label, and not one after the port goes
		{"", "localhost", "", false},
	}
	for _, tt := range tests {
		got, ok := FromHost(tt.host, tt.base)
		if got != tt.want || ok != tt.ok {
			t.Errorf("FromHost(%q, %q) = %q, %v; want %q, %v", tt.host, tt.base, got, ok, tt.want, tt.ok)
		}
	}
}

// FromHost reads the Host header of every gateway request: whatever it holds, a label comes
// back only with ok, is a non-empty, dot-free, lower-case, ASCII label of the host, and names
// the same tenant whatever the host's case and port, and when asked of label.base itself.
func FuzzFromHost(f *testing.F) {
	for _, s := range []string{
		"acme.localhost:8080", "ACME.localhost", "a.b.localhost.", "[::1]:80", "localhost", ".localhost", ":", "x.localhost:",
		"acme.localhost..", "acme..localhost", "acme.localhost:8080:9090", "[acme.localhost]:80", "acme.localhost]",
		"acme.evil.test.localhost", "acme.localhost.evil.test", "acme.xlocalhost", "ac\u00e9me.localhost", "\xc3\xa9.localhost",
		"a\x00.localhost", "a b.localhost", "a:b.localhost:1", "acme.LOCALHOST", "acme.localhost\t",
	} {
		f.Add(s)
	}
	const base = "localhost"
	f.Fuzz(func(t *testing.T, host string) {
		label, ok := FromHost(host, base)
		if !ok {
			if label != "" {
				t.Fatalf("FromHost(%q) returned label %q with ok=false", host, label)
			}
		} else {
			if label == "" || strings.Contains(label, ".") || strings.ToLower(label) != label {
				t.Fatalf("FromHost(%q) = %q: a label must be non-empty, dot-free and lower-case", host, label)
			}
			if !strings.Contains(strings.ToLower(host), label+".") {
				t.Fatalf("FromHost(%q) = %q, which is not a label of the host", host, label)
			}
			for i := 0; i < len(label); i++ {
				if label[i] >= 0x80 {
					t.Fatalf("FromHost(%q) = %q, which is not ASCII", host, label)
				}
			}
			if again, ok := FromHost(label+"."+base, base); !ok || again != label {
				t.Fatalf("FromHost(%q) = %q, but FromHost(%q) = %q, %v", host, label, label+"."+base, again, ok)
			}
		}
		if upper, upOK := FromHost(asciiUpper(host), base); upper != label || upOK != ok {
			t.Fatalf("FromHost(%q) = %q, %v but FromHost(%q) = %q, %v: the case of a host must not matter",
				host, label, ok, asciiUpper(host), upper, upOK)
		}
	})
}

// asciiUpper upper-cases ASCII letters only, leaving every other byte as it is (strings.ToUpper
// would rewrite invalid UTF-8 and non-ASCII letters, which FromHost rightly treats apart).
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// store.ValidTenantID replaces a regexp on the request path; it must agree with the contract's pattern.
func FuzzValidateID_MatchesTheSpecPattern(f *testing.F) {
	spec := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{1,61}[a-z0-9])$`)
	for _, s := range []string{"abc", "a", "-ab", "ab-", "a-b", "ABC", "a_b", strings.Repeat("x", 63), strings.Repeat("x", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := store.ValidTenantID(id), spec.MatchString(id); got != want {
			t.Fatalf("store.ValidTenantID(%q) = %v, the pattern says %v", id, got, want)
		}
	})
}

// The gateway's view of billing: the billing status and grace end carried over, a billing
// suspension told apart from an admin's, and quota months anchored at the period only while
// subscribed. (The Billing-Status header made of them is caddymodule's: view_test.go.)
func TestNewSnapshot_Billing(t *testing.T) {
	start := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	grace := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name          string
		status        Status
		billing       *Billing
		wantStatus    Status
		wantBilling   BillingStatus
		wantBillingSu bool
		wantAnchor    time.Time
	}{
		{"no subscription", StatusActive, nil, StatusActive, BillingNone, false, time.Time{}},
		{"active", StatusActive, &Billing{Status: BillingActive, PeriodStart: start}, StatusActive, BillingActive, false, start},
		{"past due", StatusActive, &Billing{Status: BillingPastDue, PeriodStart: start, GraceUntil: grace}, StatusActive, BillingPastDue, false, start},
		{"suspended by billing", StatusActive, &Billing{Status: BillingSuspended, PeriodStart: start}, StatusSuspended, BillingSuspended, true, start},
		{"suspended by an admin while past due", StatusSuspended, &Billing{Status: BillingPastDue, GraceUntil: grace}, StatusSuspended, BillingPastDue, false, time.Time{}},
		{"suspended by both", StatusSuspended, &Billing{Status: BillingSuspended}, StatusSuspended, BillingSuspended, false, time.Time{}},
		{"canceled", StatusActive, &Billing{Status: BillingCanceled, PeriodStart: start}, StatusActive, BillingCanceled, false, time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := NewSnapshot(&Tenant{ID: "acme", Status: c.status, Plan: "pro", Billing: c.billing})
			var wantGrace time.Time
			if c.billing != nil {
				wantGrace = c.billing.GraceUntil
			}
			if s.Status != c.wantStatus || s.BillingStatus != c.wantBilling || !s.GraceUntil.Equal(wantGrace) ||
				s.BillingSuspended != c.wantBillingSu || !s.PeriodAnchor.Equal(c.wantAnchor) {
				t.Fatalf("snapshot = status %q, billing %q until %v, billing suspended %v, anchor %v; want %q, %q until %v, %v, %v",
					s.Status, s.BillingStatus, s.GraceUntil, s.BillingSuspended, s.PeriodAnchor,
					c.wantStatus, c.wantBilling, wantGrace, c.wantBillingSu, c.wantAnchor)
			}
		})
	}
}

func TestReserved(t *testing.T) {
	for _, id := range []string{"api", "www", "admin", "app", "auth", "billing", "docs", "static", "status", "system", "mail"} {
		if !Reserved(id) {
			t.Errorf("%q is not reserved", id)
		}
	}
	for _, id := range []string{"apis", "ap", "API", "acme", "mail-co", ""} {
		if Reserved(id) {
			t.Errorf("%q is reserved", id)
		}
	}
}
