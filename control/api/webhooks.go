package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/notify"
)

// Webhooks is the notification side of the control plane: a tenant's webhook endpoints and
// their delivery log. *notify.Manager implements it.
type Webhooks interface {
	CreateEndpoint(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID string, in notify.EndpointInput) (*notify.Endpoint, string, error)
	ListEndpoints(ctx context.Context, p identity.Principal, tenantID string) ([]*notify.Endpoint, error)
	UpdateEndpoint(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, id string, patch notify.EndpointPatch) (*notify.Endpoint, error)
	DeleteEndpoint(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, id string) error
	RotateSecret(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, id string) (string, error)
	Recover(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, endpointID string, since time.Time) (int, error)
	ListDeliveries(ctx context.Context, p identity.Principal, tenantID string, f notify.DeliveryFilter) (*notify.DeliveryPage, error)
	Resend(ctx context.Context, p identity.Principal, actor identity.Actor, tenantID, deliveryID string) (*notify.Delivery, error)
}

var _ Webhooks = (*notify.Manager)(nil)

// webhooksRoute answers 404 not_found, after the role check, while no Webhooks is wired in,
// as for a route that does not exist.
func (a *API) webhooksRoute(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if a.Webhooks == nil {
			return errs.E(errs.KindNotFound, "not_found", "Webhooks are not configured: no such route.")
		}
		return h(w, r, c)
	}
}

type endpointBody struct {
	URL         string   `json:"url" doc:"required,format=uri,maxLength=2048"`
	Events      []string `json:"events"`
	Description string   `json:"description" doc:"maxLength=200"`
}

// endpointWithSecret is an endpoint as created or rotated: the one time its secret is shown.
type endpointWithSecret struct {
	*notify.Endpoint
	Secret string `json:"secret"`
}

func (a *API) createEndpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	var b endpointBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	e, secret, err := a.Webhooks.CreateEndpoint(r.Context(), c.principal, c.actor, r.PathValue("id"),
		notify.EndpointInput{URL: b.URL, Events: b.Events, Description: b.Description})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, endpointWithSecret{Endpoint: e, Secret: secret})
}

func (a *API) listEndpoints(w http.ResponseWriter, r *http.Request, c *call) error {
	list, err := a.Webhooks.ListEndpoints(r.Context(), c.principal, r.PathValue("id"))
	if err != nil {
		return err
	}
	if list == nil {
		list = []*notify.Endpoint{}
	}
	return writeJSON(w, http.StatusOK, endpointList{Endpoints: list})
}

type patchEndpointBody struct {
	URL         *string   `json:"url" doc:"format=uri,maxLength=2048"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description" doc:"maxLength=200"`
	Enabled     *bool     `json:"enabled"`
}

func (a *API) patchEndpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	var b patchEndpointBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	e, err := a.Webhooks.UpdateEndpoint(r.Context(), c.principal, c.actor, r.PathValue("id"), r.PathValue("eid"),
		notify.EndpointPatch{URL: b.URL, Events: b.Events, Description: b.Description, Enabled: b.Enabled})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

func (a *API) deleteEndpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := a.Webhooks.DeleteEndpoint(r.Context(), c.principal, c.actor, r.PathValue("id"), r.PathValue("eid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request, c *call) error {
	secret, err := a.Webhooks.RotateSecret(r.Context(), c.principal, c.actor, r.PathValue("id"), r.PathValue("eid"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, secretResponse{Secret: secret})
}

type recoverBody struct {
	Since time.Time `json:"since" doc:"required"`
}

func (a *API) recoverEndpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	var b recoverBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if b.Since.IsZero() {
		return errs.E(errs.KindBadRequest, "bad_request", "since (an RFC 3339 time) is required.")
	}
	n, err := a.Webhooks.Recover(r.Context(), c.principal, c.actor, r.PathValue("id"), r.PathValue("eid"), b.Since)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, recoverResponse{Resent: n})
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	f := notify.DeliveryFilter{EndpointID: q.Get("endpoint"), Status: q.Get("status"), Type: q.Get("type"), Before: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return errs.E(errs.KindBadRequest, "bad_request", "limit must be a positive integer.")
		}
		f.Limit = n
	}
	page, err := a.Webhooks.ListDeliveries(r.Context(), c.principal, r.PathValue("id"), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (a *API) resendDelivery(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := a.Webhooks.Resend(r.Context(), c.principal, c.actor, r.PathValue("id"), r.PathValue("did"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, d)
}
