package billing

import (
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/errs"
)

// WebhookTolerance is how old a signed webhook may be.
const WebhookTolerance = 300 * time.Second

var (
	errBadSignature = errs.E(errs.KindBadRequest, "invalid_signature", "The Stripe-Signature header is missing, malformed or stale, or does not match the body.")
	errAPIVersion   = errs.E(errs.KindBadRequest, "api_version_mismatch", "The event's API version is not the one saasgate reads ("+stripe.APIVersion+"); set it on the webhook endpoint.")
	errBadEvent     = errs.E(errs.KindBadRequest, "bad_request", "The event could not be read.")
)

// Event types that change billing state; others are acknowledged and ignored.
const (
	evCheckoutCompleted = "checkout.session.completed"
	evCheckoutPaidLater = "checkout.session.async_payment_succeeded"
	evCheckoutNotPaid   = "checkout.session.async_payment_failed"
	evSubCreated        = "customer.subscription.created"
	evSubUpdated        = "customer.subscription.updated"
	evSubDeleted        = "customer.subscription.deleted"
	evInvoicePaid       = "invoice.paid"
	evInvoiceFailed     = "invoice.payment_failed"
	evInvoiceAction     = "invoice.payment_action_required"
)

var handled = map[stripe.EventType]bool{
	evCheckoutCompleted: true, evCheckoutPaidLater: true, evCheckoutNotPaid: true,
	evSubCreated: true, evSubUpdated: true, evSubDeleted: true,
	evInvoicePaid: true, evInvoiceFailed: true, evInvoiceAction: true,
}

// verify checks a delivery's signature and reads its event. typ labels the delivery for
// ObserveWebhook: "unverified" when the signature fails, else the event's type when billing
// handles it and "other" when not, never the sender's free text.
func (m *Manager) verify(payload []byte, signature string) (ev *stripe.Event, typ string, err error) {
	// The signature first: nothing of an unverified body is read or stored.
	if err := webhook.ValidatePayloadWithTolerance(payload, signature, m.WebhookSecret, WebhookTolerance); err != nil {
		return nil, "unverified", errBadSignature
	}
	event, err := webhook.ConstructEventIgnoringTolerance(payload, signature, m.WebhookSecret)
	typ = "other"
	if handled[event.Type] {
		typ = string(event.Type)
	}
	if err != nil {
		if event.APIVersion != "" && event.APIVersion != stripe.APIVersion {
			m.logger().Warn("Stripe event with another API version refused", zap.String("event", event.ID), zap.String("api_version", event.APIVersion))
			return nil, typ, errAPIVersion
		}
		return nil, typ, errBadEvent
	}
	if event.ID == "" || event.Data == nil {
		return nil, typ, errBadEvent
	}
	return &event, typ, nil
}
