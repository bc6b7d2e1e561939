package notify_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// The conformance suite of notify.MongoStore, run in both tenant layouts: the endpoints (per
// tenant) and the deliveries (a platform collection, read per endpoint owner).

func newLayoutStore(t *testing.T, layout store.Layout) *notify.MongoStore {
	t.Helper()
	ctx := context.Background()
	s := &notify.MongoStore{DB: testenv.DB(t), Layout: layout}
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alpha", "bravo"} {
		if err := s.CreateTenantCollections(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// endpointID is the same for both tenants in the collections layout, per tenant in the shared.
func endpointID(layout store.Layout, tenant, name string) string {
	if layout == store.LayoutShared {
		return "we_" + tenant + "_" + name
	}
	return "we_" + name
}

func newEndpoint(layout store.Layout, tenant, name string, at time.Time) *notify.Endpoint {
	return &notify.Endpoint{ID: endpointID(layout, tenant, name), TenantID: tenant, URL: "https://" + tenant + ".example/hook",
		Events: []string{"user.created"}, Enabled: true, Secrets: []notify.Secret{{Value: "whsec_" + tenant}}, CreatedAt: at, UpdatedAt: at}
}

func TestNotifyStore_Conformance(t *testing.T) {
	for _, layout := range store.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			ctx := context.Background()
			s := newLayoutStore(t, layout)
			one, two := newEndpoint(layout, "alpha", "one", t0), newEndpoint(layout, "alpha", "two", t0.Add(time.Second))
			for _, e := range []*notify.Endpoint{two, one} {
				if err := s.InsertEndpoint(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := s.GetEndpoint(ctx, "alpha", one.ID); err != nil || got.URL != one.URL || got.Secrets[0].Value != "whsec_alpha" || !got.CreatedAt.Equal(t0) {
				t.Errorf("GetEndpoint = %+v, %v", got, err)
			}
			if _, err := s.GetEndpoint(ctx, "alpha", "we_none"); !errors.Is(err, notify.ErrEndpointNotFound) {
				t.Errorf("GetEndpoint of none: %v", err)
			}
			if es, err := s.ListEndpoints(ctx, "alpha"); err != nil || len(es) != 2 || es[0].ID != one.ID || es[1].ID != two.ID {
				t.Errorf("ListEndpoints = %v, %v", es, err)
			}
			one.Description = "changed"
			if err := s.ReplaceEndpoint(ctx, one); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.GetEndpoint(ctx, "alpha", one.ID); got == nil || got.Description != "changed" {
				t.Errorf("after ReplaceEndpoint: %+v", got)
			}
			since, err := s.MarkFailing(ctx, "alpha", one.ID, t0.Add(time.Minute))
			if err != nil || !since.Equal(t0.Add(time.Minute)) {
				t.Errorf("MarkFailing = %v, %v", since, err)
			}
			if since, err := s.MarkFailing(ctx, "alpha", one.ID, t0.Add(time.Hour)); err != nil || !since.Equal(t0.Add(time.Minute)) {
				t.Errorf("MarkFailing again = %v, %v; want the first start kept", since, err)
			}
			if err := s.ClearFailing(ctx, "alpha", one.ID); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.GetEndpoint(ctx, "alpha", one.ID); got == nil || got.FailingSince != nil {
				t.Errorf("after ClearFailing: %+v", got)
			}
			if err := s.Disable(ctx, "alpha", one.ID, "gone", t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.GetEndpoint(ctx, "alpha", one.ID); got == nil || got.Enabled || got.DisabledReason != "gone" {
				t.Errorf("after Disable: %+v", got)
			}
			if err := s.DeleteEndpoint(ctx, "alpha", one.ID); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteEndpoint(ctx, "alpha", one.ID); !errors.Is(err, notify.ErrEndpointNotFound) {
				t.Errorf("DeleteEndpoint twice: %v", err)
			}
			if err := s.ReplaceEndpoint(ctx, one); !errors.Is(err, notify.ErrEndpointNotFound) {
				t.Errorf("ReplaceEndpoint of a deleted endpoint: %v", err)
			}

			// Deliveries: a platform collection, the same in both layouts.
			for i, tenant := range []string{"alpha", "bravo", "alpha"} {
				d := &notify.Delivery{ID: "wd_" + string(rune('a'+i)), EventID: "ev", Type: "user.created", TenantID: tenant, EndpointID: two.ID,
					EndpointTenant: tenant, Status: notify.StatusPending, Attempts: []notify.Attempt{}, NextAttemptAt: t0, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
				if err := s.InsertDelivery(ctx, d); err != nil {
					t.Fatal(err)
				}
				if err := s.InsertDelivery(ctx, d); err != nil {
					t.Errorf("InsertDelivery twice: %v", err)
				}
			}
			if n, err := s.Pending(ctx); err != nil || n != 3 {
				t.Errorf("Pending = %d, %v", n, err)
			}
			ds, err := s.ListDeliveries(ctx, "alpha", notify.DeliveryFilter{Limit: 10})
			if err != nil || len(ds) != 2 || ds[0].ID != "wd_c" {
				t.Errorf("ListDeliveries(alpha) = %v, %v", ds, err)
			}
			due, err := s.Due(ctx, t0.Add(time.Second), 10)
			if err != nil || len(due) != 3 {
				t.Fatalf("Due = %d, %v", len(due), err)
			}
			d := due[0]
			if ok, err := s.Lease(ctx, d, "w1", t0.Add(time.Minute)); err != nil || !ok {
				t.Fatalf("Lease = %v, %v", ok, err)
			}
			if ok, err := s.Lease(ctx, d, "w2", t0.Add(time.Minute)); err != nil || ok {
				t.Errorf("Lease by a second worker = %v, %v", ok, err)
			}
			if ok, err := s.Finish(ctx, d.ID, "w1", t0.Add(time.Minute), notify.Attempt{At: t0, StatusCode: 500}, notify.StatusFailed, t0); err != nil || !ok {
				t.Errorf("Finish = %v, %v", ok, err)
			}
			if got, err := s.GetDelivery(ctx, d.ID); err != nil || got.Status != notify.StatusFailed || len(got.Attempts) != 1 {
				t.Errorf("GetDelivery after Finish = %+v, %v", got, err)
			}
			if _, err := s.GetDelivery(ctx, "wd_none"); !errors.Is(err, notify.ErrDeliveryNotFound) {
				t.Errorf("GetDelivery of none: %v", err)
			}
			if fs, err := s.FailedSince(ctx, d.EndpointTenant, d.EndpointID, t0); err != nil || len(fs) != 1 {
				t.Errorf("FailedSince = %v, %v", fs, err)
			}
			if n, err := s.DeleteBefore(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
				t.Errorf("DeleteBefore = %d, %v", n, err)
			}
		})
	}
}

// TestNotifyStore_Isolation: alpha and bravo hold like endpoints (the same ids in the
// collections layout). Every endpoint method called for alpha, naming bravo's endpoint ids,
// neither reads nor changes bravo's.
func TestNotifyStore_Isolation(t *testing.T) {
	for _, layout := range store.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			ctx := context.Background()
			s := newLayoutStore(t, layout)
			for _, tenant := range []string{"alpha", "bravo"} {
				for _, name := range []string{"one", "two"} {
					if err := s.InsertEndpoint(ctx, newEndpoint(layout, tenant, name, t0)); err != nil {
						t.Fatal(err)
					}
				}
			}
			bravo := func() []*notify.Endpoint {
				es, err := s.ListEndpoints(ctx, "bravo")
				if err != nil {
					t.Fatal(err)
				}
				return es
			}
			same := func(what string) {
				t.Helper()
				es := bravo()
				if len(es) != 2 {
					t.Fatalf("%s: bravo holds %d endpoints, want 2", what, len(es))
				}
				for _, e := range es {
					if e.TenantID != "bravo" || !e.Enabled || e.FailingSince != nil || e.DisabledReason != "" || e.URL != "https://bravo.example/hook" {
						t.Errorf("%s: bravo's endpoint changed: %+v", what, e)
					}
				}
			}
			es, err := s.ListEndpoints(ctx, "alpha")
			if err != nil || len(es) != 2 {
				t.Errorf("ListEndpoints(alpha) = %d, %v", len(es), err)
			}
			for _, e := range es {
				if e.TenantID != "alpha" || e.Secrets[0].Value != "whsec_alpha" {
					t.Errorf("ListEndpoints(alpha) returned %+v", e)
				}
			}
			for _, name := range []string{"one", "two"} {
				id := endpointID(layout, "bravo", name)
				e, err := s.GetEndpoint(ctx, "alpha", id)
				if layout == store.LayoutShared && !errors.Is(err, notify.ErrEndpointNotFound) {
					t.Errorf("GetEndpoint(alpha, bravo's %s) = %+v, %v", id, e, err)
				}
				if err == nil && e.TenantID != "alpha" {
					t.Errorf("GetEndpoint(alpha, %s) returned bravo's %+v", id, e)
				}
				_, _ = s.MarkFailing(ctx, "alpha", id, t0)
				same("MarkFailing")
				_ = s.Disable(ctx, "alpha", id, "by alpha", t0)
				same("Disable")
				_ = s.ClearFailing(ctx, "alpha", id)
				same("ClearFailing")
				// A replacement for alpha carrying bravo's id replaces alpha's only, or nothing.
				r := newEndpoint(layout, "alpha", name, t0)
				r.ID, r.URL = id, "https://evil.example/"
				_ = s.ReplaceEndpoint(ctx, r)
				same("ReplaceEndpoint")
				err = s.DeleteEndpoint(ctx, "alpha", id)
				if layout == store.LayoutShared && !errors.Is(err, notify.ErrEndpointNotFound) {
					t.Errorf("DeleteEndpoint(alpha, bravo's %s): %v", id, err)
				}
				same("DeleteEndpoint")
			}
			// An endpoint for alpha with bravo's id: refused in the shared collection.
			e := newEndpoint(layout, "alpha", "three", t0)
			e.ID = endpointID(layout, "bravo", "one")
			if err := s.InsertEndpoint(ctx, e); layout == store.LayoutShared && err == nil {
				t.Error("InsertEndpoint(alpha) with bravo's id succeeded in the shared collection")
			}
			same("InsertEndpoint")
		})
	}
}
