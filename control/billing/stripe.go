package billing

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Stripe is the part of the Stripe API that billing calls. NewStripe implements it with
// stripe-go; the interface keeps the manager's rules readable apart from the SDK's params.
type Stripe interface {
	// CreateCustomer creates the tenant's customer. Real Stripe answers a repeated call with
	// the same idempotency key (the tenant id) with the same customer.
	CreateCustomer(ctx context.Context, tenantID, name string) (string, error)
	CreateCheckout(ctx context.Context, c CheckoutRequest) (*CheckoutSession, error)
	CreatePortal(ctx context.Context, customerID, returnURL string) (string, error)
	// PayInvoice asks Stripe to charge an open invoice again; attempt makes the call idempotent.
	PayInvoice(ctx context.Context, invoiceID string, attempt int) error
}

// CheckoutRequest is a Checkout Session in subscription mode for one plan.
type CheckoutRequest struct {
	TenantID, PlanID, CustomerID, PriceID string
	SuccessURL, CancelURL                 string
}

// CheckoutSession is what the caller is sent to.
type CheckoutSession struct {
	ID, URL string
}

// StripeConfig says how to reach Stripe.
type StripeConfig struct {
	SecretKey string
	APIBase   string // empty: Stripe's own
	// Timeout bounds each call, its network retries included (default 20s).
	Timeout time.Duration
}

// NewStripe returns the stripe-go implementation. The SDK logs nothing (errors are returned and
// logged by the caller, without the key); it retries network errors twice.
func NewStripe(cfg StripeConfig) Stripe {
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        &http.Client{},
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(2),
	}
	if cfg.APIBase != "" {
		bc.URL = stripe.String(cfg.APIBase)
	}
	sc := &client.API{}
	sc.Init(cfg.SecretKey, &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, bc),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, &stripe.BackendConfig{LeveledLogger: bc.LeveledLogger}),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, &stripe.BackendConfig{LeveledLogger: bc.LeveledLogger}),
	})
	return &stripeClient{api: sc, timeout: cfg.Timeout}
}

type stripeClient struct {
	api     *client.API
	timeout time.Duration
}

func (s *stripeClient) CreateCustomer(ctx context.Context, tenantID, name string) (string, error) {
	p := &stripe.CustomerParams{Name: stripe.String(name)}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	p.Context = ctx
	p.AddMetadata("tenant_id", tenantID)
	p.SetIdempotencyKey("saasgate-customer-" + tenantID)
	c, err := s.api.Customers.New(p)
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

func (s *stripeClient) CreateCheckout(ctx context.Context, c CheckoutRequest) (*CheckoutSession, error) {
	p := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		Customer:          stripe.String(c.CustomerID),
		ClientReferenceID: stripe.String(c.TenantID),
		SuccessURL:        stripe.String(c.SuccessURL),
		LineItems:         []*stripe.CheckoutSessionLineItemParams{{Price: stripe.String(c.PriceID), Quantity: stripe.Int64(1)}},
		SubscriptionData: &stripe.CheckoutSessionSubscriptionDataParams{
			Metadata: map[string]string{"tenant_id": c.TenantID, "plan_id": c.PlanID},
		},
	}
	if c.CancelURL != "" {
		p.CancelURL = stripe.String(c.CancelURL)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	p.Context = ctx
	p.AddMetadata("tenant_id", c.TenantID)
	p.AddMetadata("plan_id", c.PlanID)
	sess, err := s.api.CheckoutSessions.New(p)
	if err != nil {
		return nil, err
	}
	return &CheckoutSession{ID: sess.ID, URL: sess.URL}, nil
}

func (s *stripeClient) CreatePortal(ctx context.Context, customerID, returnURL string) (string, error) {
	p := &stripe.BillingPortalSessionParams{Customer: stripe.String(customerID)}
	if returnURL != "" {
		p.ReturnURL = stripe.String(returnURL)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	p.Context = ctx
	sess, err := s.api.BillingPortalSessions.New(p)
	if err != nil {
		return "", err
	}
	return sess.URL, nil
}

func (s *stripeClient) PayInvoice(ctx context.Context, invoiceID string, attempt int) error {
	p := &stripe.InvoicePayParams{OffSession: stripe.Bool(true)}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	p.Context = ctx
	p.SetIdempotencyKey("saasgate-retry-" + invoiceID + "-" + strconv.Itoa(attempt))
	_, err := s.api.Invoices.Pay(invoiceID, p)
	return err
}
