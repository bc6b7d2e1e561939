package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// WebhookSecret is the webhook signing secret test gateways are configured with.
const WebhookSecret = "whsec_saasgate_test_secret"

// StripeCall is one request a StripeRecorder forwarded (or answered itself).
type StripeCall struct {
	Method, Path string
	Form         url.Values // the form-encoded body stripe-go sends
	Header       http.Header
}

// StripeRecorder is a reverse proxy in front of stripe-mock that records every call, so tests
// can see what the gateway asked of Stripe. Fail makes it answer chosen paths with an error
// instead of forwarding them (stripe-mock itself never declines a card).
type StripeRecorder struct {
	URL string

	mu    sync.Mutex
	calls []StripeCall
	fail  map[string]string // "METHOD path-prefix" → Stripe error code
}

// NewStripeRecorder starts a recorder in front of the process's stripe-mock; its URL is the
// api_base to configure.
func NewStripeRecorder(t testing.TB) *StripeRecorder {
	t.Helper()
	target, err := url.Parse(StripeMock(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	rec := &StripeRecorder{fail: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rec.mu.Lock()
		rec.calls = append(rec.calls, StripeCall{Method: r.Method, Path: r.URL.Path, Form: form, Header: r.Header.Clone()})
		code := ""
		for k, c := range rec.fail {
			method, prefix, _ := strings.Cut(k, " ")
			if r.Method == method && strings.HasPrefix(r.URL.Path, prefix) {
				code = c
			}
		}
		rec.mu.Unlock()
		if code != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusPaymentRequired)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
				"type": "card_error", "code": code, "decline_code": "insufficient_funds", "message": "Your card was declined.",
			}})
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// Fail makes calls of method to paths starting with prefix fail with a card error of code.
func (s *StripeRecorder) Fail(method, prefix, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[method+" "+prefix] = code
}

// Calls returns the calls of method whose path starts with prefix ("" matches all).
func (s *StripeRecorder) Calls(method, prefix string) []StripeCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StripeCall
	for _, c := range s.calls {
		if (method == "" || c.Method == method) && strings.HasPrefix(c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets the calls recorded so far.
func (s *StripeRecorder) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// StripeEvent builds the JSON of a Stripe event of type typ, created at created, whose
// data.object is object, in the SDK's API version.
func StripeEvent(t testing.TB, id, typ string, created time.Time, object map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "created": created.Unix(),
		"api_version": stripe.APIVersion, "livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": object},
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// SignStripe returns the Stripe-Signature header of payload signed with secret at signedAt,
// made by stripe-go's test helper.
func SignStripe(payload []byte, secret string, signedAt time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: signedAt}).Header
}

// StripeSubscription is the data.object of a customer.subscription.* event, as saasgate's
// Checkout leaves it: metadata tenant_id, one item of Price.
type StripeSubscription struct {
	ID, Tenant, Customer, Status, Price string
	Start, End                          time.Time // the current period; a zero End is Start + 1 month
	CancelAtEnd                         bool
}

// Object is the subscription as event data.
func (s StripeSubscription) Object() map[string]any {
	end := s.End
	if end.IsZero() {
		end = s.Start.AddDate(0, 1, 0)
	}
	return map[string]any{
		"id": s.ID, "object": "subscription", "customer": s.Customer, "status": s.Status,
		"metadata": map[string]any{"tenant_id": s.Tenant},
		"items": map[string]any{"object": "list", "data": []any{
			map[string]any{"id": "si_" + s.ID, "object": "subscription_item", "price": map[string]any{"id": s.Price, "object": "price"}},
		}},
		"current_period_start": s.Start.Unix(), "current_period_end": end.Unix(),
		"cancel_at_period_end": s.CancelAtEnd,
	}
}

// StripeInvoice is the data.object of an invoice.* event of a subscription.
type StripeInvoice struct {
	ID, Tenant, Customer, Subscription, Status string
}

// Object is the invoice as event data.
func (i StripeInvoice) Object() map[string]any {
	return map[string]any{
		"id": i.ID, "object": "invoice", "customer": i.Customer, "subscription": i.Subscription,
		"subscription_details": map[string]any{"metadata": map[string]any{"tenant_id": i.Tenant}},
		"status":               i.Status,
	}
}

// StripeCheckoutSession is the data.object of a checkout.session.* event of a subscription
// Checkout that saasgate opened for Tenant and Plan. A card pays at once (PaymentStatus ""
// is "paid"); a delayed payment method completes the session "unpaid" and Stripe sends it again,
// "paid", as checkout.session.async_payment_succeeded, or still "unpaid" as
// checkout.session.async_payment_failed.
type StripeCheckoutSession struct {
	ID, Tenant, Plan, Customer, Subscription string
	PaymentStatus                            string
	// ReferenceOnly names Tenant only in client_reference_id, with no metadata, as a session
	// of a Payment Link whose URL carries ?client_reference_id= does.
	ReferenceOnly bool
}

// Object is the session as event data.
func (s StripeCheckoutSession) Object() map[string]any {
	paid := s.PaymentStatus
	if paid == "" {
		paid = "paid"
	}
	metadata := map[string]any{"tenant_id": s.Tenant, "plan_id": s.Plan}
	if s.ReferenceOnly {
		metadata = map[string]any{}
	}
	return map[string]any{
		"id": s.ID, "object": "checkout.session", "mode": "subscription", "customer": s.Customer,
		"subscription": s.Subscription, "payment_status": paid, "status": "complete",
		"metadata": metadata, "client_reference_id": s.Tenant,
	}
}
