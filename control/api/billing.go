package api

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/saasgate/saasgate/control/billing"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
)

// Billing is the subscription side of the control plane.
type Billing interface {
	// Enabled reports whether Stripe is configured; without it every billing route answers
	// 503 billing_disabled, before looking at the request.
	Enabled() bool
	Checkout(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, planID string) (*billing.CheckoutSession, error)
	Current(ctx context.Context, p identity.Principal, tenantID string) (*billing.Subscription, error)
	Portal(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID string) (string, error)
	HandleWebhook(ctx context.Context, actor identity.Actor, payload []byte, signature string) error
}

type subscribeBody struct {
	TenantID string `json:"tenant_id" doc:"required,minLength=1"`
	PlanID   string `json:"plan_id" doc:"required,minLength=1"`
}

// billingRoute answers 503 billing_disabled, before reading anything, when Stripe is not
// configured.
func (a *API) billingRoute(h func(http.ResponseWriter, *http.Request, *call) error) func(http.ResponseWriter, *http.Request, *call) error {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if !a.Billing.Enabled() {
			return billing.ErrDisabled
		}
		return h(w, r, c)
	}
}

func (a *API) subscribe(w http.ResponseWriter, r *http.Request, c *call) error {
	var b subscribeBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if b.TenantID == "" || b.PlanID == "" {
		return errs.E(errs.KindBadRequest, "bad_request", "tenant_id and plan_id are required.")
	}
	sess, err := a.Billing.Checkout(r.Context(), c.principal, c.actor, b.TenantID, b.PlanID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, subscribeResponse{Message: "Subscription initiated.", StripeSessionURL: sess.URL, SessionID: sess.ID})
}

func (a *API) currentSubscription(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := a.callerTenant(r, c)
	if err != nil {
		return err
	}
	s, err := a.Billing.Current(r.Context(), c.principal, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s)
}

func (a *API) portal(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := a.callerTenant(r, c)
	if err != nil {
		return err
	}
	url, err := a.Billing.Portal(r.Context(), c.principal, c.actor, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, portalResponse{URL: url})
}

// stripeWebhook reads the raw body (the signature covers its exact bytes) and hands it to
// billing, which verifies it before anything else.
func (a *API) stripeWebhook(w http.ResponseWriter, r *http.Request, c *call) error {
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errs.E(errs.KindBadRequest, "bad_request", "The body is larger than 1 MiB.")
		}
		return errs.E(errs.KindBadRequest, "bad_request", "The body could not be read.")
	}
	if err := a.Billing.HandleWebhook(r.Context(), c.actor, payload, r.Header.Get("Stripe-Signature")); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, messageResponse{Message: "Webhook processed successfully."})
}
