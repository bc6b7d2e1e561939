package billing_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/internal/testenv"
)

// webhookState is what a delivery may change: the tenant's document, the event records and
// the tenant's audit trail.
type webhookState struct {
	tenant         *tenant.Tenant
	events, audits int64
}

func (f *fixture) webhookState(t testing.TB) webhookState {
	return webhookState{f.tenantState(t, "acme"), f.storedEvents(t), f.auditCount(t, "acme")}
}

// FuzzHandleWebhook hands the webhook handler arbitrary deliveries. signed says whether the
// payload is signed now with the endpoint's secret (so the event decoder reads it) or carries
// signature, the fuzzer's header, which cannot verify. Whatever the bytes, the handler does not
// panic and answers nil or a domain error; a delivery that does not verify, and a signed one
// refused as unreadable (400), change nothing: no event record, no tenant change, no audit.
func FuzzHandleWebhook(f *testing.F) {
	// The webhook path never calls Stripe: billing is switched on with an API base nobody
	// answers, so that no fuzz worker starts a stripe-mock of its own.
	fx := newManager(f, opts{stripe: &testenv.StripeRecorder{URL: "http://127.0.0.1:1"}})
	fx.newTenant(f, "acme", "cus_acme")
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sub := testenv.StripeSubscription{ID: "sub_acme", Tenant: "acme", Customer: "cus_acme", Status: "active", Price: "price_pro", Start: created}
	for _, payload := range [][]byte{
		event(f, "evt_fuzz_sub", "customer.subscription.created", created, sub.Object()),
		event(f, "evt_fuzz_inv", "invoice.payment_failed", created, testenv.StripeInvoice{ID: "in_1", Tenant: "acme", Customer: "cus_acme", Subscription: "sub_acme", Status: "open"}.Object()),
		event(f, "evt_fuzz_co", "checkout.session.completed", created, testenv.StripeCheckoutSession{ID: "cs_1", Tenant: "acme", Plan: "team", Customer: "cus_acme", Subscription: "sub_acme"}.Object()),
		event(f, "evt_fuzz_other", "customer.created", created, map[string]any{"id": "cus_x", "object": "customer"}),
		[]byte(`{"id":"evt_fuzz_ver","object":"event","type":"invoice.paid","api_version":"2020-08-27","data":{"object":{}}}`),
		[]byte(`{"id":"","type":"invoice.paid","data":null}`),
		[]byte(`{"id":"evt_fuzz_nodata","type":"customer.subscription.deleted"}`),
		[]byte(`{"id":"evt_fuzz_obj","type":"customer.subscription.updated","api_version":"` + stripe.APIVersion + `","data":{"object":[1,2]}}`),
		[]byte(`null`), []byte(``), []byte(`{`), []byte("\x00\xff"),
	} {
		f.Add(payload, "", true)
		f.Add(payload, testenv.SignStripe(payload, testenv.WebhookSecret, time.Now().Add(-301*time.Second)), false)
		f.Add(payload, testenv.SignStripe(payload, "whsec_somebody_else", time.Now()), false)
		f.Add(payload, "t=1,v1=00,v0=00", false)
		f.Add(payload, "", false)
	}
	f.Fuzz(func(t *testing.T, payload []byte, signature string, signed bool) {
		if signed {
			signature = sign(payload)
		}
		before := fx.webhookState(t)
		start := time.Now()
		err := fx.m.HandleWebhook(context.Background(), identity.Anonymous("127.0.0.1", "req-fuzz"), payload, signature)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("HandleWebhook(%q) took %v", payload, took)
		}
		e, isDomain := errs.As(err)
		switch {
		case err == nil:
			return
		case !isDomain:
			t.Fatalf("HandleWebhook(%q) = %v, not a domain error", payload, err)
		case !signed && e.Code != "invalid_signature":
			t.Fatalf("HandleWebhook(%q, %q) = %v; a signature made by the fuzzer cannot verify", payload, signature, err)
		case e.Kind != errs.KindBadRequest:
			return // the store's failures are answered 5xx; Stripe delivers again
		}
		if after := fx.webhookState(t); !reflect.DeepEqual(after, before) {
			t.Fatalf("the refused delivery %q (%v) changed the state:\n before %+v %+v\n after  %+v %+v",
				payload, err, before, before.tenant.Billing, after, after.tenant.Billing)
		}
	})
}
