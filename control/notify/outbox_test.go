package notify_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/store"
)

func TestPublish_IdempotentFanOut(t *testing.T) {
	f := newFixture(t, notify.Config{})
	all := newReceiver(t, nil)
	payments := newReceiver(t, nil)
	platform := newReceiver(t, nil)
	f.endpoint(t, "acme", all.URL)
	f.endpoint(t, "acme", payments.URL, notify.EventPaymentFailed)
	f.endpoint(t, store.SystemTenant, platform.URL)
	disabled, _ := f.endpoint(t, "acme", all.URL+"/off")
	off := false
	if _, err := f.m.UpdateEndpoint(context.Background(), owner, anon, "acme", disabled, notify.EndpointPatch{Enabled: &off}); err != nil {
		t.Fatal(err)
	}

	// A time finer than the store keeps, as the real clock's.
	f.clock.Set(t0.Add(1500*time.Microsecond + 7))
	f.publish(t, "evt_sub", "acme", notify.EventSubscriptionActivated)
	f.clock.Set(t0.Add(time.Minute))
	f.publish(t, "evt_sub", "acme", notify.EventSubscriptionActivated)
	f.publish(t, "evt_globex", "globex", notify.EventMemberJoined)
	f.deliver(t, f.m)

	if n, err := f.db.C(notify.CollEvents).CountDocuments(context.Background(), bson.D{}); err != nil || n != 2 {
		t.Errorf("%d events recorded (%v), want 2", n, err)
	}
	if f.obs.emitted[notify.EventSubscriptionActivated] != 1 || f.obs.emitted[notify.EventMemberJoined] != 1 {
		t.Errorf("emitted %v", f.obs.emitted)
	}
	count := func(rc *receiver) map[string]int {
		seen := map[string]int{}
		for _, r := range rc.requests() {
			seen[r.header.Get("Webhook-Id")]++
		}
		return seen
	}
	if got := count(all); len(got) != 1 || got["evt_sub"] != 1 {
		t.Errorf("acme's endpoint for every type got %v", got)
	}
	if got := count(payments); len(got) != 0 {
		t.Errorf("acme's payments endpoint got %v", got)
	}
	if got := count(platform); len(got) != 2 || got["evt_sub"] != 1 || got["evt_globex"] != 1 {
		t.Errorf("the platform endpoint got %v", got)
	}
	if n := len(f.deliveries(t, "acme")); n != 1 {
		t.Errorf("acme's log holds %d deliveries, want 1", n)
	}

	// A publish that crashed before fanning out is completed by the next one.
	if _, err := f.db.C(notify.CollDeliveries).DeleteMany(context.Background(), bson.D{{Key: "event_id", Value: "evt_sub"}}); err != nil {
		t.Fatal(err)
	}
	f.publish(t, "evt_sub", "acme", notify.EventSubscriptionActivated)
	if n := len(f.deliveries(t, "acme")) + len(f.deliveries(t, store.SystemTenant)); n != 3 {
		t.Errorf("%d deliveries after the repair, want acme's and the platform's of evt_sub, and evt_globex's", n)
	}

	big := notify.Event{ID: "evt_big", Type: notify.EventPaymentFailed, TenantID: "acme", Data: map[string]any{"x": strings.Repeat("a", notify.MaxPayload)}}
	if err := f.m.Publish(context.Background(), big); !errors.Is(err, notify.ErrPayloadTooLarge) {
		t.Errorf("a %d-byte payload: %v", notify.MaxPayload, err)
	}
}

func TestDeliveryLog_FiltersResendAndRecover(t *testing.T) {
	f := newFixture(t, notify.Config{RetrySchedule: []time.Duration{0}})
	failing := true
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if failing || r.URL.Path == "/down" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	ctx := context.Background()
	up, _ := f.endpoint(t, "acme", rc.URL)
	f.endpoint(t, "acme", rc.URL+"/down")

	f.publish(t, "evt_old", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	f.clock.Set(t0.Add(time.Hour))
	f.publish(t, "evt_new", "acme", notify.EventPaymentSucceeded)
	f.deliver(t, f.m)
	failing = false
	f.clock.Set(t0.Add(2 * time.Hour))
	f.publish(t, "evt_ok", "acme", notify.EventMemberJoined)
	f.deliver(t, f.m)

	list := func(filter notify.DeliveryFilter) []string {
		t.Helper()
		var ids []string
		for {
			page, err := f.m.ListDeliveries(ctx, owner, "acme", filter)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page.Deliveries {
				ids = append(ids, d.EventID+"/"+d.Status)
			}
			if page.Cursor == "" {
				return ids
			}
			filter.Before = page.Cursor
		}
	}
	for _, tc := range []struct {
		name   string
		filter notify.DeliveryFilter
		want   string
	}{
		{"all, paged", notify.DeliveryFilter{Limit: 2}, "evt_ok/failed evt_ok/succeeded evt_new/failed evt_new/failed evt_old/failed evt_old/failed"},
		{"endpoint", notify.DeliveryFilter{EndpointID: up}, "evt_ok/succeeded evt_new/failed evt_old/failed"},
		{"status", notify.DeliveryFilter{Status: notify.StatusSucceeded}, "evt_ok/succeeded"},
		{"type", notify.DeliveryFilter{Type: notify.EventPaymentSucceeded, EndpointID: up}, "evt_new/failed"},
	} {
		got := list(tc.filter)
		if tc.name == "all, paged" {
			// The two deliveries of one event sort by endpoint, in no order the test knows.
			for i := 0; i+1 < len(got); i += 2 {
				if got[i] > got[i+1] {
					got[i], got[i+1] = got[i+1], got[i]
				}
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	page, err := f.m.ListDeliveries(ctx, owner, "acme", notify.DeliveryFilter{Status: "bogus"})
	if !errs.Is(err, "invalid_webhook_filter") {
		t.Errorf("status bogus: %v, %v", page, err)
	}
	if _, err := f.m.ListDeliveries(ctx, owner, "acme", notify.DeliveryFilter{Before: "x"}); !errs.Is(err, "invalid_webhook_filter") {
		t.Errorf("cursor x: %v", err)
	}

	// Resend a successful delivery: a new delivery, the same message.
	ok := f.deliveriesOf(t, up, notify.StatusSucceeded)[0]
	before := len(rc.requests())
	nd, err := f.m.Resend(ctx, owner, anon, "acme", ok.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(t, f.m)
	got := rc.requests()
	if len(got) != before+1 || got[len(got)-1].header.Get("Webhook-Id") != "evt_ok" || string(got[len(got)-1].body) != ok.Payload {
		t.Errorf("the resend sent %d requests", len(got)-before)
	}
	if nd.ResentFrom != ok.ID || nd.ID == ok.ID {
		t.Errorf("resent delivery %s from %q", nd.ID, nd.ResentFrom)
	}

	// Recover since half an hour in: evt_new's failure is resent, evt_old's is not.
	n, err := f.m.Recover(ctx, owner, anon, "acme", up, t0.Add(30*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("recovered %d (%v), want 1", n, err)
	}
	f.deliver(t, f.m)
	got = rc.requests()
	if last := got[len(got)-1]; last.header.Get("Webhook-Id") != "evt_new" {
		t.Errorf("recover sent %s", last.header.Get("Webhook-Id"))
	}
	if ids := list(notify.DeliveryFilter{EndpointID: up, Status: notify.StatusSucceeded}); len(ids) != 3 {
		t.Errorf("after resend and recover: %v", ids)
	}
}

func (f *fixture) deliveriesOf(t *testing.T, endpointID, status string) []*notify.Delivery {
	t.Helper()
	page, err := f.m.ListDeliveries(context.Background(), admin, "acme", notify.DeliveryFilter{EndpointID: endpointID, Status: status})
	if err != nil || len(page.Deliveries) == 0 {
		t.Fatalf("no %s delivery to %s (%v)", status, endpointID, err)
	}
	return page.Deliveries
}

// TestAuthorization: owners act on their tenant's endpoints and deliveries, admins on every
// tenant's and on the platform's; an owner of another tenant and a user act on none.
func TestAuthorization(t *testing.T) {
	f := newFixture(t, notify.Config{})
	rc := newReceiver(t, nil)
	ctx := context.Background()
	principals := map[string]identity.Principal{
		"admin":        admin,
		"owner":        owner,
		"other owner":  {UserID: "usr_globex", TenantID: "globex", Role: identity.RoleOwner},
		"user":         {UserID: "usr_user", TenantID: "acme", Role: identity.RoleUser},
		"system owner": {UserID: "usr_x", TenantID: store.SystemTenant, Role: identity.RoleOwner},
	}
	ops := map[string]func(p identity.Principal, tenantID, eid, did string) error{
		"create": func(p identity.Principal, tenantID, _, _ string) error {
			_, _, err := f.m.CreateEndpoint(ctx, p, anon, tenantID, notify.EndpointInput{URL: rc.URL})
			return err
		},
		"list": func(p identity.Principal, tenantID, _, _ string) error {
			_, err := f.m.ListEndpoints(ctx, p, tenantID)
			return err
		},
		"update": func(p identity.Principal, tenantID, eid, _ string) error {
			d := "x"
			_, err := f.m.UpdateEndpoint(ctx, p, anon, tenantID, eid, notify.EndpointPatch{Description: &d})
			return err
		},
		"rotate": func(p identity.Principal, tenantID, eid, _ string) error {
			_, err := f.m.RotateSecret(ctx, p, anon, tenantID, eid)
			return err
		},
		"deliveries": func(p identity.Principal, tenantID, _, _ string) error {
			_, err := f.m.ListDeliveries(ctx, p, tenantID, notify.DeliveryFilter{})
			return err
		},
		"resend": func(p identity.Principal, tenantID, _, did string) error {
			_, err := f.m.Resend(ctx, p, anon, tenantID, did)
			return err
		},
		"recover": func(p identity.Principal, tenantID, eid, _ string) error {
			_, err := f.m.Recover(ctx, p, anon, tenantID, eid, t0)
			return err
		},
		"delete": func(p identity.Principal, tenantID, eid, _ string) error {
			return f.m.DeleteEndpoint(ctx, p, anon, tenantID, eid)
		},
	}
	allowed := map[string]map[string]bool{ // principal → tenant whose endpoints it may touch
		"admin":        {"acme": true, store.SystemTenant: true},
		"owner":        {"acme": true},
		"other owner":  {},
		"user":         {},
		"system owner": {},
	}
	for name, p := range principals {
		for _, tenantID := range []string{"acme", store.SystemTenant} {
			for op, do := range ops {
				eid, _ := f.endpoint(t, tenantID, rc.URL)
				f.publish(t, "evt_"+name+op+tenantID, "acme", notify.EventPaymentFailed)
				did := f.deliveriesOf2(t, tenantID, eid)
				err := do(p, tenantID, eid, did)
				if want := allowed[name][tenantID]; want != (err == nil) || !want && !errs.Is(err, "forbidden") {
					t.Errorf("%s %s on %s: %v, allowed %v", name, op, tenantID, err, want)
				}
				// Within MaxEndpoints: the endpoint goes (the delete op may have taken it).
				if err := f.m.DeleteEndpoint(ctx, admin, anon, tenantID, eid); err != nil && !errs.Is(err, "webhook_endpoint_not_found") {
					t.Fatal(err)
				}
			}
		}
	}
	// Another tenant's endpoint is not found through one's own tenant.
	eid, _ := f.endpoint(t, "globex", rc.URL)
	if err := f.m.DeleteEndpoint(ctx, owner, anon, "acme", eid); !errs.Is(err, "webhook_endpoint_not_found") {
		t.Errorf("deleting globex's endpoint through acme: %v", err)
	}
}

func (f *fixture) deliveriesOf2(t *testing.T, tenantID, endpointID string) string {
	t.Helper()
	page, err := f.m.ListDeliveries(context.Background(), admin, tenantID, notify.DeliveryFilter{EndpointID: endpointID})
	if err != nil || len(page.Deliveries) != 1 {
		t.Fatalf("deliveries to %s: %d (%v)", endpointID, len(page.Deliveries), err)
	}
	return page.Deliveries[0].ID
}
