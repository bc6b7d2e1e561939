package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/notify"
)

func TestDelivery_SignedAsStandardWebhooks(t *testing.T) {
	f := newFixture(t, notify.Config{})
	rc := newReceiver(t, nil)
	id, secret := f.endpoint(t, "acme", rc.URL)
	f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)

	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	if m := verify(t, got[0], secret); len(m) != 1 {
		t.Fatalf("signature %q does not verify with the endpoint's secret", got[0].header.Get("Webhook-Signature"))
	}
	if got[0].header.Get("Webhook-Id") != "evt_1" || got[0].header.Get("Webhook-Timestamp") != "1777636800" {
		t.Errorf("webhook-id %q, timestamp %q", got[0].header.Get("Webhook-Id"), got[0].header.Get("Webhook-Timestamp"))
	}
	var body map[string]any
	if err := json.Unmarshal(got[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if body["type"] != notify.EventPaymentFailed || body["timestamp"] != "2026-05-01T12:00:00Z" || body["data"].(map[string]any)["tenant_id"] != "acme" {
		t.Errorf("payload %s", got[0].body)
	}
	if verify(t, got[0], "whsec_"+strings.Repeat("A", 44)) != nil {
		t.Error("a wrong secret verifies")
	}

	// A rotation signs with both secrets for 24 hours, then with the new one alone.
	fresh, err := f.m.RotateSecret(context.Background(), owner, anon, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	f.publish(t, "evt_2", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	f.clock.Set(t0.Add(24*time.Hour + time.Second))
	f.publish(t, "evt_3", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	got = rc.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	if m := verify(t, got[1], secret, fresh); len(m) != 2 || len(strings.Split(got[1].header.Get("Webhook-Signature"), " ")) != 2 {
		t.Errorf("during the rotation: %q verifies with %d of the two secrets", got[1].header.Get("Webhook-Signature"), len(m))
	}
	if m := verify(t, got[2], secret, fresh); !slices.Equal(m, []string{fresh}) {
		t.Errorf("after the rotation: %q verifies with %d secrets", got[2].header.Get("Webhook-Signature"), len(m))
	}
	for _, e := range []*notify.Endpoint{f.endpointState(t, "acme", id)} {
		if raw, _ := json.Marshal(e); strings.Contains(string(raw), "whsec_") {
			t.Errorf("a listed endpoint shows its secret: %s", raw)
		}
	}
}

func TestDelivery_FailsTwiceThenSucceeds(t *testing.T) {
	f := newFixture(t, notify.Config{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	_, secret := f.endpoint(t, "acme", rc.URL)
	f.publish(t, "evt_1", "acme", notify.EventSubscriptionActivated)

	at := t0
	for i, step := range []time.Duration{0, shortSchedule[1], shortSchedule[2]} {
		d := f.deliveries(t, "acme")[0]
		if i > 0 {
			// Not before 90 % of the step, and at the latest at 110 %.
			lo, hi := at.Add(step*9/10), at.Add(step*11/10)
			if d.NextAttemptAt.Before(lo) || d.NextAttemptAt.After(hi) {
				t.Fatalf("attempt %d due at %v, want within [%v, %v]", i+1, d.NextAttemptAt, lo, hi)
			}
			f.clock.Set(lo.Add(-time.Second))
			if n := f.deliver(t, f.m); n != 0 {
				t.Fatalf("attempt %d made %v early", i+1, d.NextAttemptAt.Sub(f.clock.Now()))
			}
			at = d.NextAttemptAt
			f.clock.Set(at)
		}
		if n := f.deliver(t, f.m); n != 1 {
			t.Fatalf("attempt %d: %d deliveries attempted", i+1, n)
		}
	}
	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, r := range got {
		if r.header.Get("Webhook-Id") != "evt_1" || len(verify(t, r, secret)) != 1 {
			t.Errorf("request %d: webhook-id %q, signature verifies: %v", i, r.header.Get("Webhook-Id"), verify(t, r, secret))
		}
		if i > 0 && (r.header.Get("Webhook-Timestamp") == got[i-1].header.Get("Webhook-Timestamp") ||
			r.header.Get("Webhook-Signature") == got[i-1].header.Get("Webhook-Signature")) {
			t.Errorf("request %d repeats the timestamp or signature of the one before", i)
		}
	}
	d := f.deliveries(t, "acme")[0]
	if d.Status != notify.StatusSucceeded || len(d.Attempts) != 3 ||
		d.Attempts[0].StatusCode != 500 || d.Attempts[1].StatusCode != 500 || d.Attempts[2].StatusCode != 200 {
		t.Errorf("delivery %s with attempts %+v", d.Status, d.Attempts)
	}
	if f.obs.attempts[notify.ResultFailure] != 2 || f.obs.attempts[notify.ResultSuccess] != 1 {
		t.Errorf("observed %v", f.obs.attempts)
	}
}

func TestDelivery_ScheduleSpentFailsForGood(t *testing.T) {
	f := newFixture(t, notify.Config{RetrySchedule: []time.Duration{0, time.Second}})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	f.endpoint(t, "acme", rc.URL)
	f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	f.clock.Set(t0.Add(time.Hour))
	f.deliver(t, f.m)
	f.clock.Set(t0.Add(100 * time.Hour))
	f.deliver(t, f.m)
	if d := f.deliveries(t, "acme")[0]; d.Status != notify.StatusFailed || len(d.Attempts) != 2 || len(rc.requests()) != 2 {
		t.Errorf("delivery %s after %d attempts, %d requests", d.Status, len(d.Attempts), len(rc.requests()))
	}
}

func TestDelivery_GoneDisablesTheEndpoint(t *testing.T) {
	f := newFixture(t, notify.Config{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	id, _ := f.endpoint(t, "acme", rc.URL)
	f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	e := f.endpointState(t, "acme", id)
	if e.Enabled || !strings.Contains(e.DisabledReason, "410") {
		t.Errorf("endpoint enabled %v, reason %q", e.Enabled, e.DisabledReason)
	}
	if d := f.deliveries(t, "acme")[0]; d.Status != notify.StatusFailed {
		t.Errorf("delivery %s", d.Status)
	}
	f.publish(t, "evt_2", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	if len(rc.requests()) != 1 {
		t.Errorf("a disabled endpoint got %d requests", len(rc.requests()))
	}
}

func TestDelivery_FailingForFiveDaysDisablesTheEndpoint(t *testing.T) {
	f := newFixture(t, notify.Config{RetrySchedule: []time.Duration{0, 50 * time.Hour, 50 * time.Hour, 50 * time.Hour}})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	id, _ := f.endpoint(t, "acme", rc.URL)
	f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)
	disabled := false
	for day := 0; day <= 9; day++ {
		f.clock.Set(t0.Add(time.Duration(day) * 24 * time.Hour))
		if n := f.deliver(t, f.m); n > 0 && day >= 5 {
			disabled = true
		}
		if e := f.endpointState(t, "acme", id); e.Enabled == disabled {
			t.Fatalf("day %d: enabled %v after %d attempts (%q)", day, e.Enabled, len(f.deliveries(t, "acme")[0].Attempts), e.DisabledReason)
		}
	}
	if !disabled {
		t.Fatal("no attempt was made after five days; the schedule is wrong")
	}
}

func TestDelivery_RedirectIsAFailureAndNotFollowed(t *testing.T) {
	f := newFixture(t, notify.Config{})
	other := newReceiver(t, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	})
	f.endpoint(t, "acme", rc.URL)
	f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)
	f.deliver(t, f.m)
	d := f.deliveries(t, "acme")[0]
	if d.Status != notify.StatusPending || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != http.StatusFound || d.Attempts[0].Error == "" {
		t.Errorf("delivery %s, attempts %+v", d.Status, d.Attempts)
	}
	if len(other.requests()) != 0 {
		t.Errorf("the redirect's target got %d requests", len(other.requests()))
	}
}

func TestDelivery_HugeAnswerIsNotRead(t *testing.T) {
	f := newFixture(t, notify.Config{})
	written := make(chan int64, 1)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		chunk := make([]byte, 32<<10)
		var n int64
		for n < 100<<20 {
			k, err := w.Write(chunk)
			n += int64(k)
			if err != nil {
				break
			}
		}
		written <- n
	})
	f.endpoint(t, "acme", rc.URL)
	f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f.deliver(t, f.m)
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Errorf("the heap grew by %d bytes", grew)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("the attempt allocated %d bytes", alloc)
	}
	if n := <-written; n >= 100<<20 {
		t.Errorf("the receiver wrote its whole %d bytes: the answer was read to its end", n)
	}
	if d := f.deliveries(t, "acme")[0]; d.Status != notify.StatusSucceeded {
		t.Errorf("delivery %s, attempts %+v", d.Status, d.Attempts)
	}
}

func TestDelivery_SilentReceiverIsCutAtTheTimeout(t *testing.T) {
	f := newFixture(t, notify.Config{Timeout: 300 * time.Millisecond})
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	f.endpoint(t, "acme", rc.URL)
	f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)
	start := time.Now()
	f.deliver(t, f.m)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the attempt took %v", took)
	}
	d := f.deliveries(t, "acme")[0]
	if d.Status != notify.StatusPending || len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "Timeout") ||
		d.Attempts[0].LatencyMS < 300 {
		t.Errorf("delivery %s, attempts %+v", d.Status, d.Attempts)
	}
}

func TestDelivery_RetryAfterHonouredAndCapped(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		lo, hi       time.Duration
	}{
		{"seconds", "3", 3 * time.Second, 3 * time.Second},
		{"date", t0.Add(4 * time.Second).Format(http.TimeFormat), 4 * time.Second, 4 * time.Second},
		{"capped at the next step", "3600", 9 * time.Second, 11 * time.Second},
		{"absent", "", 9 * time.Second, 11 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, notify.Config{})
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(http.StatusTooManyRequests)
			})
			f.endpoint(t, "acme", rc.URL)
			f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)
			f.deliver(t, f.m)
			d := f.deliveries(t, "acme")[0]
			if wait := d.NextAttemptAt.Sub(t0); wait < tc.lo || wait > tc.hi {
				t.Errorf("next attempt after %v, want within [%v, %v]", wait, tc.lo, tc.hi)
			}
		})
	}
}
