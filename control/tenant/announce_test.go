package tenant_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/tenant"
)

// fullTenant is a tenant with every field set, billing included.
func fullTenant() *tenant.Tenant {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8_000_000, time.UTC)
	return &tenant.Tenant{
		ID: "acme", Name: "Acme Corp", Status: tenant.StatusActive, Plan: "pro", PlanOverride: "enterprise",
		RequireMFA: true, CreatedAt: at, UpdatedAt: at.Add(time.Hour), Rev: 7,
		Billing: &tenant.Billing{Rev: 3, CustomerID: "cus_123", SubscriptionID: "sub_123", Status: tenant.BillingPastDue,
			PeriodStart: at, PeriodEnd: at.AddDate(0, 1, 0), CancelAtEnd: true, GraceUntil: at.AddDate(0, 0, 7),
			FailedAt: at, InvoiceID: "in_123", Retries: 2, SubVersion: 11, StatusVersion: 12},
	}
}

func roundTrip(t *testing.T, in *tenant.Tenant) *tenant.Tenant {
	t.Helper()
	b, ok := tenant.EncodeState(in)
	if !ok {
		t.Fatalf("EncodeState(%+v) refused", in)
	}
	a, err := tenant.DecodeAnnouncement(b)
	if err != nil || a.Tenant == nil || a.Removed || a.ID != in.ID {
		t.Fatalf("DecodeAnnouncement(%s) = %+v, %v; want the state of %s", b, a, err, in.ID)
	}
	return a.Tenant
}

// The announcement carries everything the cache builds its snapshot from: changing any one
// field of a tenant that changes its snapshot changes the decoded announcement's snapshot the
// same way. A field NewSnapshot comes to read and the encoding forgets fails here.
func TestAnnouncement_CarriesEverythingTheSnapshotReads(t *testing.T) {
	base := fullTenant()
	if got := roundTrip(t, base); *tenant.NewSnapshot(got) != *tenant.NewSnapshot(base) || got.Rev != base.Rev {
		t.Fatalf("round trip: snapshot %+v rev %d, want %+v rev %d", tenant.NewSnapshot(got), got.Rev, tenant.NewSnapshot(base), base.Rev)
	}
	checked := 0
	for _, billing := range []bool{false, true} {
		typ := reflect.TypeOf(tenant.Tenant{})
		if billing {
			typ = reflect.TypeOf(tenant.Billing{})
		}
		for i := range typ.NumField() {
			for _, status := range []tenant.BillingStatus{tenant.BillingActive, tenant.BillingSuspended, tenant.BillingCanceled} {
				changed := fullTenant()
				changed.Billing.Status = status
				before := *tenant.NewSnapshot(changed)
				target := reflect.ValueOf(changed).Elem()
				if billing {
					target = reflect.ValueOf(changed.Billing).Elem()
				}
				alter(t, target.Field(i))
				after := *tenant.NewSnapshot(changed)
				if after == before {
					continue // a field the snapshot does not read (in this billing status)
				}
				checked++
				if got := *tenant.NewSnapshot(roundTrip(t, changed)); got != after {
					t.Errorf("%s.%s changed the snapshot to %+v; the announcement says %+v", typ.Name(), typ.Field(i).Name, after, got)
				}
			}
		}
	}
	if checked < 6 {
		t.Fatalf("only %d field changes moved the snapshot; the test lost its reach", checked)
	}
}

// alter sets v to another value of its type, one an announcement may carry.
func alter(t *testing.T, v reflect.Value) {
	switch x := v.Addr().Interface().(type) {
	case *tenant.Status:
		*x = tenant.StatusSuspended
	case *tenant.BillingStatus:
		*x = tenant.BillingTrialing
	case *string:
		*x = "altered"
	case *time.Time:
		*x = x.Add(90 * time.Minute)
	case *bool:
		*x = !*x
	case *int:
		*x += 5
	case *int64:
		*x += 5
	case **tenant.Billing:
		*x = nil
	default:
		t.Fatalf("alter: no rule for %s", v.Type())
	}
}

// The largest tenant the rules allow fits; a removal is small; neither carries the name or
// billing identifiers.
func TestAnnouncement_IsBoundedAndCarriesNoIdentifiers(t *testing.T) {
	big := fullTenant()
	big.ID = strings.Repeat("a", 63)
	big.Plan, big.PlanOverride = strings.Repeat("p", 64), strings.Repeat("q", 64)
	big.Billing.Status = tenant.BillingSuspended
	big.Billing.PeriodStart = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	big.Billing.GraceUntil = big.Billing.PeriodStart
	big.Rev = 1<<63 - 1
	b, ok := tenant.EncodeState(big)
	if !ok || len(b) > tenant.MaxAnnouncement-128 {
		t.Fatalf("the largest valid tenant encodes to %d bytes (ok %v); want room to spare under %d", len(b), ok, tenant.MaxAnnouncement)
	}
	t.Logf("largest announcement: %d bytes; a new tenant's: %d", len(b), len(mustEncode(t, &tenant.Tenant{ID: "acme", Status: tenant.StatusActive, Plan: "free", Rev: 1})))
	for _, secret := range []string{"Acme Corp", "cus_123", "sub_123", "in_123"} {
		if bytes.Contains(mustEncode(t, fullTenant()), []byte(secret)) {
			t.Errorf("the announcement carries %q", secret)
		}
	}
	huge := fullTenant()
	huge.Plan = strings.Repeat("p", tenant.MaxAnnouncement)
	if b, ok := tenant.EncodeState(huge); ok {
		t.Errorf("a state of %d bytes was encoded; want it refused (announced by id)", len(b))
	}
	r, ok := tenant.EncodeRemoval("acme")
	if a, err := tenant.DecodeAnnouncement(r); !ok || err != nil || !a.Removed || a.Tenant != nil || a.ID != "acme" {
		t.Fatalf("removal round trip: %+v, %v", a, err)
	}
}

func mustEncode(t *testing.T, tn *tenant.Tenant) []byte {
	t.Helper()
	b, ok := tenant.EncodeState(tn)
	if !ok {
		t.Fatalf("EncodeState(%+v) refused", tn)
	}
	return b
}

// A payload that is not an announcement is an error (the bus drops it); one with a valid id
// but a state this version cannot trust is an invalidation of that id.
func TestDecodeAnnouncement_RefusesMalformedAndDistrustsUnknown(t *testing.T) {
	pad := strings.Repeat(" ", tenant.MaxAnnouncement)
	for _, tc := range []struct {
		name, payload string
		invalidates   bool // decoded as "id changed", no state
	}{
		{"empty", "", false},
		{"bare id", "acme", false},
		{"truncated", `{"v":1,"op":"put","id":"acme"`, false},
		{"not an object", `[1,2]`, false},
		{"too long", `{"v":1,"op":"put","id":"acme","st":"active","pl":"free"}` + pad, false},
		{"no id", `{"v":1,"op":"put","st":"active","pl":"free"}`, false},
		{"invalid id", `{"v":1,"op":"put","id":"Not_An-Id","st":"active","pl":"free"}`, false},
		{"id too long", `{"v":1,"op":"put","id":"` + strings.Repeat("a", 64) + `","st":"active","pl":"free"}`, false},
		{"wrong types", `{"v":"1","op":"put","id":"acme"}`, false},
		{"newer version", `{"v":2,"op":"put","id":"acme","st":"active","pl":"free"}`, true},
		{"unknown op", `{"v":1,"op":"merge","id":"acme","st":"active","pl":"free"}`, true},
		{"unknown status", `{"v":1,"op":"put","id":"acme","st":"deleted","pl":"free"}`, true},
		{"no plan", `{"v":1,"op":"put","id":"acme","st":"active"}`, true},
		{"bad plan", `{"v":1,"op":"put","id":"acme","st":"active","pl":"Free Plan"}`, true},
		{"bad override", `{"v":1,"op":"put","id":"acme","st":"active","pl":"free","po":"x y"}`, true},
		{"negative revision", `{"v":1,"op":"put","id":"acme","rev":-1,"st":"active","pl":"free"}`, true},
		{"unknown billing status", `{"v":1,"op":"put","id":"acme","st":"active","pl":"free","b":{"st":"frozen"}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tenant.DecodeAnnouncement([]byte(tc.payload))
			switch {
			case tc.invalidates && (err != nil || a.ID != "acme" || a.Tenant != nil || a.Removed):
				t.Fatalf("= %+v, %v; want an invalidation of acme", a, err)
			case !tc.invalidates && err == nil:
				t.Fatalf("= %+v; want an error", a)
			}
		})
	}
	// Unknown fields are a later version's additions: the state is still read.
	a, err := tenant.DecodeAnnouncement([]byte(`{"v":1,"op":"put","id":"acme","rev":2,"st":"active","pl":"free","later":[1]}`))
	if err != nil || a.Tenant == nil || a.Tenant.Rev != 2 {
		t.Fatalf("with an unknown field: %+v, %v; want the state", a, err)
	}
}

// Whatever the payload, decoding neither panics nor returns an invalid id, and a state it
// returns survives another round trip unchanged.
func FuzzDecodeAnnouncement(f *testing.F) {
	f.Add(mustEncodeF(fullTenant()))
	f.Add(mustEncodeF(&tenant.Tenant{ID: "newco", Status: tenant.StatusActive, Plan: "free", Rev: 1}))
	r, _ := tenant.EncodeRemoval("gone")
	f.Add(r)
	f.Add([]byte(`{"v":1,"op":"put","id":"acme","b":{"ps":-62135596800001,"gu":9223372036854775807}}`))
	f.Add([]byte("acme"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, err := tenant.DecodeAnnouncement(payload)
		if err != nil {
			return
		}
		if err := tenant.ValidateID(a.ID); err != nil && !tenant.Reserved(a.ID) {
			t.Fatalf("decoded id %q: %v", a.ID, err)
		}
		if a.Tenant == nil {
			return
		}
		b, ok := tenant.EncodeState(a.Tenant)
		if !ok {
			t.Fatalf("a decoded state does not encode again: %+v", a.Tenant)
		}
		again, err := tenant.DecodeAnnouncement(b)
		if err != nil || again.Tenant == nil || *tenant.NewSnapshot(again.Tenant) != *tenant.NewSnapshot(a.Tenant) || again.Tenant.Rev != a.Tenant.Rev {
			t.Fatalf("second round trip of %s: %+v, %v", payload, again.Tenant, err)
		}
	})
}

func mustEncodeF(tn *tenant.Tenant) []byte {
	b, ok := tenant.EncodeState(tn)
	if !ok {
		panic("EncodeState refused a seed")
	}
	return b
}
