package billing_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/billing"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/internal/testenv"
)

// eventStores lists every EventStore implementation; the conformance suite runs against each.
func eventStores(t *testing.T) map[string]billing.EventStore {
	return map[string]billing.EventStore{
		"mongo": &billing.MongoEventStore{DB: testenv.DB(t)},
	}
}

func TestEventStore_Conformance(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	processing := func(id string, received time.Time) *billing.EventRecord {
		return &billing.EventRecord{ID: id, Type: "invoice.paid", Created: received.Unix(), State: billing.EventProcessing,
			ReceivedAt: received, StartedAt: received}
	}
	for name, s := range eventStores(t) {
		for i := 0; i < 2; i++ {
			if err := s.Init(ctx); err != nil {
				t.Fatalf("%s: Init (call %d): %v", name, i+1, err)
			}
		}
		get := func(t *testing.T, id string) *billing.EventRecord {
			t.Helper()
			rec, err := s.Get(ctx, id)
			if err != nil {
				t.Fatalf("Get(%s): %v", id, err)
			}
			return rec
		}
		t.Run(name+"/InsertedOnceThenKeptAsFirstRecorded", func(t *testing.T) {
			if fresh, err := s.Insert(ctx, processing("evt_once", t0)); err != nil || !fresh {
				t.Fatalf("first Insert = %v, %v; want true", fresh, err)
			}
			again := processing("evt_once", t0.Add(time.Hour))
			again.Type = "invoice.payment_failed"
			if fresh, err := s.Insert(ctx, again); err != nil || fresh {
				t.Fatalf("second Insert = %v, %v; want false, nil", fresh, err)
			}
			rec := get(t, "evt_once")
			if rec == nil || rec.Type != "invoice.paid" || rec.State != billing.EventProcessing || rec.Created != t0.Unix() ||
				!rec.ReceivedAt.Equal(t0) || !rec.StartedAt.Equal(t0) || rec.Tenant != "" {
				t.Fatalf("Get = %+v, want the first record", rec)
			}
		})
		t.Run(name+"/AbsentIsNil", func(t *testing.T) {
			if rec := get(t, "evt_never"); rec != nil {
				t.Fatalf("Get of an unknown id = %+v, want nil", rec)
			}
		})
		t.Run(name+"/DoneNamesTheTenantAndKeepsTheRest", func(t *testing.T) {
			mustInsert(t, s, processing("evt_done", t0))
			if err := s.Done(ctx, "evt_done", "acme"); err != nil {
				t.Fatal(err)
			}
			if rec := get(t, "evt_done"); rec == nil || rec.State != billing.EventDone || rec.Tenant != "acme" || !rec.StartedAt.Equal(t0) {
				t.Fatalf("after Done: %+v", rec)
			}
		})
		t.Run(name+"/RestartMovesOnlyTheStart", func(t *testing.T) {
			mustInsert(t, s, processing("evt_restart", t0))
			if err := s.Restart(ctx, "evt_restart", t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			rec := get(t, "evt_restart")
			if rec == nil || !rec.StartedAt.Equal(t0.Add(time.Minute)) || !rec.ReceivedAt.Equal(t0) || rec.State != billing.EventProcessing {
				t.Fatalf("after Restart: %+v", rec)
			}
		})
		t.Run(name+"/ParkedKeepsItsPendingAndRestarts", func(t *testing.T) {
			mustInsert(t, s, processing("evt_park", t0))
			pending := []notify.Event{{ID: "evt_n1", Type: notify.EventPaymentFailed, TenantID: "acme", Time: t0,
				Data: map[string]any{"tenant_id": "acme", "grace_until": "2026-01-08T00:00:00Z"}}}
			if err := s.SetPending(ctx, "evt_park", pending); err != nil {
				t.Fatal(err)
			}
			if err := s.Park(ctx, "evt_park"); err != nil {
				t.Fatal(err)
			}
			rec := get(t, "evt_park")
			if rec == nil || rec.State != billing.EventParked || len(rec.Pending) != 1 || rec.Pending[0].ID != "evt_n1" ||
				!rec.Pending[0].Time.Equal(t0) || rec.Pending[0].Data["grace_until"] != "2026-01-08T00:00:00Z" {
				t.Fatalf("after Park: %+v", rec)
			}
			if err := s.Restart(ctx, "evt_park", t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if rec := get(t, "evt_park"); rec == nil || rec.State != billing.EventProcessing || !rec.StartedAt.Equal(t0.Add(time.Minute)) || len(rec.Pending) != 1 {
				t.Fatalf("after Restart: %+v", rec)
			}
			if err := s.SetPending(ctx, "evt_park", nil); err != nil {
				t.Fatal(err)
			}
			if rec := get(t, "evt_park"); rec == nil || len(rec.Pending) != 0 {
				t.Fatalf("after SetPending(nil): %+v", rec)
			}
		})
		t.Run(name+"/DeleteReceivedBeforeKeepsTheRest", func(t *testing.T) {
			cut := t0.Add(-24 * time.Hour)
			mustInsert(t, s, processing("evt_old_1", cut.Add(-time.Hour)))
			mustInsert(t, s, processing("evt_old_2", cut.Add(-time.Millisecond)))
			mustInsert(t, s, processing("evt_at_cut", cut))
			if n, err := s.DeleteReceivedBefore(ctx, cut); err != nil || n != 2 {
				t.Fatalf("DeleteReceivedBefore = %d, %v; want 2", n, err)
			}
			for id, kept := range map[string]bool{"evt_old_1": false, "evt_old_2": false, "evt_at_cut": true} {
				if rec := get(t, id); (rec != nil) != kept {
					t.Errorf("%s: record %+v, want kept %v", id, rec, kept)
				}
			}
		})
		claims := map[string]func(i int, at time.Time) (bool, error){
			"ClaimTakeover": func(i int, at time.Time) (bool, error) {
				return s.ClaimTakeover(ctx, fmt.Sprintf("evt_take_%d", i), at, at.Add(time.Hour))
			},
			"ClaimTick": func(i int, at time.Time) (bool, error) {
				return s.ClaimTick(ctx, at.Add(time.Duration(i)*time.Hour), at.Add(time.Hour))
			},
		}
		for claim, try := range claims {
			t.Run(name+"/"+claim+"GrantsEachKeyToOneCallerOnly", func(t *testing.T) {
				var won atomic.Int32
				testenv.AtOnce(8, func(int) {
					if ok, err := try(0, t0); err != nil {
						t.Error(err)
					} else if ok {
						won.Add(1)
					}
				})
				if n := won.Load(); n != 1 {
					t.Fatalf("%d of 8 concurrent callers won, want 1", n)
				}
				// Another event, or another start or slot, is another key.
				for _, k := range []struct {
					i  int
					at time.Time
				}{{1, t0}, {0, t0.Add(time.Second)}} {
					if ok, err := try(k.i, k.at); err != nil || !ok {
						t.Fatalf("claim %d at %v = %v, %v; want won", k.i, k.at, ok, err)
					}
				}
			})
		}
	}
}

func mustInsert(t *testing.T, s billing.EventStore, rec *billing.EventRecord) {
	t.Helper()
	if fresh, err := s.Insert(context.Background(), rec); err != nil || !fresh {
		t.Fatalf("Insert(%s) = %v, %v", rec.ID, fresh, err)
	}
}
