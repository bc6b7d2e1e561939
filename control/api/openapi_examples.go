package api

import (
	"slices"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/saasgate/saasgate/control/notify"
)

// The examples of the document. Requests are written by hand, one per operation, about the
// tenant acme-corp: a fixture set-up that creates acme-corp (owner@acme-corp.test and
// user@acme-corp.test, password "correct-horse-42", a webhook endpoint, a delivery, billing
// with a purchasable plan "team") can send every one of them as it stands, except the values
// the server mints, which the examples show as the Example* constants below and a client
// replaces with its own. Responses are synthesised from their schemas (exampleOf), so they
// are valid by construction; kin-openapi checks every example against its schema too.

// Example values of what the server mints: ids, tokens, one-time codes.
const (
	ExampleTenant          = "acme-corp"
	ExampleUserID          = "usr_Zm9vYmFyYmF6cXV4"
	ExampleEndpointID      = "ep_5f0c3a9e1b2d4c6e8a7b9d01"
	ExampleDeliveryID      = "dlv_18a2b3c4d5e6f70012ab34cd56ef78901234"
	ExampleRefreshToken    = "rt_OGYxYzJlM2Q0YjVhNjk3ODg5OWFhYmJjY2RkZWVmZjA"
	ExampleMFAToken        = "mfa_ZmVlZGZhY2VjYWZlYmFiZWRlYWRiZWVmMDAxMTIy"
	ExampleMFACode         = "123456"
	ExampleInviteToken     = "inv_c2VjcmV0LWludml0YXRpb24tdG9rZW4tMDAx"
	ExampleStripeSignature = "t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"
)

// opExample is one example request: its path parameters, query and header parameters, and
// body.
type opExample struct {
	params map[string]string
	query  map[string]any // query and header parameters, by name
	body   any
}

var acme = map[string]string{"id": ExampleTenant}

func acmeWith(k, v string) map[string]string { return map[string]string{"id": ExampleTenant, k: v} }

var opExamples = map[string]opExample{
	"POST /auth/signup":                   {body: map[string]any{"email": "founder@globex.test", "password": "correct-horse-42", "tenant": "globex"}},
	"POST /auth/login":                    {body: map[string]any{"email": "owner@acme-corp.test", "password": "correct-horse-42", "tenant": ExampleTenant}},
	"POST /auth/refresh":                  {body: map[string]any{"refresh_token": ExampleRefreshToken}},
	"POST /auth/logout":                   {body: map[string]any{"refresh_token": ExampleRefreshToken}},
	"POST /auth/mfa/enroll":               {body: map[string]any{}},
	"POST /auth/mfa/confirm":              {body: map[string]any{"code": ExampleMFACode}},
	"POST /auth/mfa/disable":              {body: map[string]any{"code": ExampleMFACode}},
	"POST /auth/mfa/recovery-codes":       {body: map[string]any{"code": ExampleMFACode}},
	"POST /auth/mfa/verify":               {body: map[string]any{"mfa_token": ExampleMFAToken, "code": ExampleMFACode}},
	"POST /tenants":                       {body: map[string]any{"tenant_name": "Initech", "admin_email": "admin@initech.test"}},
	"GET /tenants/{id}":                   {params: acme},
	"PATCH /tenants/{id}":                 {params: acme, body: map[string]any{"name": "Acme Corporation", "require_mfa": false}},
	"POST /tenants/{id}/invitations":      {params: acme, body: map[string]any{"email": "new.hire@acme-corp.test", "role": "user"}},
	"GET /tenants/{id}/users":             {params: acme},
	"PATCH /tenants/{id}/users/{uid}":     {params: acmeWith("uid", ExampleUserID), body: map[string]any{"role": "owner"}},
	"GET /tenants/{id}/audit-logs":        {params: acme, query: map[string]any{"outcome": "success", "limit": 20}},
	"GET /tenants/{id}/audit-logs/export": {params: acme, query: map[string]any{"from": "2026-01-01T00:00:00Z"}},
	"GET /tenants/{id}/audit-logs/verify": {params: acme},
	"POST /subscriptions":                 {body: map[string]any{"tenant_id": ExampleTenant, "plan_id": "team"}},
	"POST /webhooks/stripe": {query: map[string]any{"Stripe-Signature": ExampleStripeSignature}, body: map[string]any{
		"id": "evt_1QxAcmeExample", "object": "event", "type": "customer.created", "created": 1767225600,
		"api_version": stripe.APIVersion, "livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": map[string]any{"id": "cus_AcmeExample", "object": "customer", "metadata": map[string]any{"tenant_id": ExampleTenant}}},
	}},
	"POST /tenants/{id}/webhook-endpoints": {params: acme, body: map[string]any{
		"url": "https://203.0.113.10/hooks/saasgate", "events": []any{notify.EventMemberJoined, notify.EventPaymentFailed}, "description": "Ops alerts",
	}},
	"GET /tenants/{id}/webhook-endpoints":                      {params: acme},
	"PATCH /tenants/{id}/webhook-endpoints/{eid}":              {params: acmeWith("eid", ExampleEndpointID), body: map[string]any{"description": "Ops alerts (paged)", "enabled": true}},
	"DELETE /tenants/{id}/webhook-endpoints/{eid}":             {params: acmeWith("eid", ExampleEndpointID)},
	"POST /tenants/{id}/webhook-endpoints/{eid}/rotate-secret": {params: acmeWith("eid", ExampleEndpointID)},
	"POST /tenants/{id}/webhook-endpoints/{eid}/recover":       {params: acmeWith("eid", ExampleEndpointID), body: map[string]any{"since": "2026-01-01T00:00:00Z"}},
	"GET /tenants/{id}/webhook-deliveries":                     {params: acme, query: map[string]any{"type": notify.EventMemberJoined, "limit": 20}},
	"POST /tenants/{id}/webhook-deliveries/{did}/resend":       {params: acmeWith("did", ExampleDeliveryID)},
}

// sampleValues are the example values of response fields, by name; a field without one gets
// a value of its schema's type.
var sampleValues = map[string]any{
	"tenant_id": ExampleTenant, "user_id": ExampleUserID, "email": "owner@acme-corp.test", "name": "Acme Corp",
	"plan": "free", "token_type": "Bearer", "expires_in": 900,
	"access_token":  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfWm05dlltRnlZbUY2Y1hWNCJ9.c2lnbmF0dXJl",
	"refresh_token": ExampleRefreshToken, "token": ExampleInviteToken, "endpoint_id": ExampleEndpointID,
	"url": "https://203.0.113.10/hooks/saasgate", "stripe_session_url": "https://checkout.stripe.com/c/pay/cs_test_a1",
	"session_id": "cs_test_a1", "customer_id": "cus_AcmeExample", "subscription_id": "sub_AcmeExample",
	"secret": "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci1hY21lLWV4YW1wbGU=", "description": "Ops alerts",
	"otpauth_url": "otpauth://totp/saasgate:owner@acme-corp.test?secret=JBSWY3DPEHPK3PXP&issuer=saasgate",
	"qr_png":      "data:image/png;base64,iVBORw0KGgo=", "hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	"prev_hash": "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", "action": "auth.login",
	"ip": "203.0.113.7", "request_id": "req_7f3a", "rate": "60/1m", "reason": "hash mismatch", "event_id": "evt_member_joined_1",
	"payload":        `{"type":"member.joined","data":{"tenant_id":"acme-corp"}}`,
	"recovery_codes": "k7dq-3m9x-p2vb", "actor_id": ExampleUserID, "actor_role": "owner", "target": "new.hire@acme-corp.test",
	"current_period_end": "2026-04-01T00:00:00Z", "status_code": 204, "latency_ms": 87,
	"limit": 60, "requests_remaining": 59, "reset_seconds": 1, "used": 1200, "remaining": 98800, "burst": 50,
	"period_end": "2026-12-01T00:00:00Z", "resent": 2, "seq": 42, "anchor_seq": 0, "head_seq": 42, "checked": 42,
}

// componentSamples are sampleValues for one component's field, where the field's name alone
// says too little.
var componentSamples = map[string]any{
	"Enrollment.secret": "JBSWY3DPEHPK3PXP", "PortalResponse.url": "https://billing.stripe.com/p/session/test_a1",
	"PlanView.id": "free", "PlanView.name": "Free", "QuotaStatus.limit": 100000, "Subscription.plan": "team",
	"IssuedInvitation.email":       "new.hire@acme-corp.test",
	"SignupResponse.message":       "User registered successfully.",
	"CreateTenantResponse.message": "Tenant created successfully.",
	"InviteResponse.message":       "Invitation created.",
	"SubscribeResponse.message":    "Subscription initiated.",
	"MessageResponse.message":      "Webhook processed successfully.",
}

func sample(component, field string) any {
	if v, ok := componentSamples[component+"."+field]; ok {
		return v
	}
	return sampleValues[field]
}

// sampleIDs are the example ids of the components with an id field.
var sampleIDs = map[string]string{
	"Endpoint": ExampleEndpointID, "EndpointWithSecret": ExampleEndpointID,
	"Delivery": ExampleDeliveryID, "AuditEntry": "aud_4705bd66d8c07a03452c606a",
}

// example is a value that schema admits: the required fields of an object, and the optional
// ones sampleValues has a value for (and a tenant's billing); sampleValues' values where a
// field has one.
func (g *schemaGen) example(schema map[string]any, field string) any {
	return g.exampleIn(schema, field, "")
}

// exampleIn is example within the component named component.
func (g *schemaGen) exampleIn(schema map[string]any, field, component string) any {
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		return g.exampleIn(g.components[name].(map[string]any), field, name)
	}
	if anyOf, ok := schema["anyOf"].([]any); ok {
		return g.exampleIn(anyOf[0].(map[string]any), field, component)
	}
	if enum, ok := schema["enum"].([]any); ok && len(enum) > 0 {
		return enum[0]
	}
	typ := schema["type"]
	if types, ok := typ.([]any); ok {
		typ = types[0]
	}
	switch typ {
	case "object":
		out := map[string]any{}
		props, _ := schema["properties"].(map[string]any)
		required, _ := schema["required"].([]any)
		for name, p := range props {
			if _, sampled := sampleValues[name]; sampled || name == "billing" || slices.Contains(required, any(name)) {
				out[name] = g.exampleIn(p.(map[string]any), name, component)
			}
		}
		if values, ok := schema["additionalProperties"].(map[string]any); ok && field == "checks" {
			out["mongodb"], out["redis"] = g.example(values, ""), g.example(values, "")
		}
		return out
	case "array":
		return []any{g.exampleIn(schema["items"].(map[string]any), field, component)}
	case "string":
		if v, ok := sample(component, field).(string); ok {
			return v
		}
		if id, ok := sampleIDs[component]; ok && field == "id" {
			return id
		}
		switch schema["format"] {
		case "date-time":
			return "2026-03-02T09:30:00Z"
		case "email":
			return "owner@acme-corp.test"
		}
		return "string"
	case "integer":
		if v, ok := sample(component, field).(int); ok {
			return v
		}
		return 1
	case "boolean":
		return field == "ok" || field == "enabled" || field == "purchasable" || field == "default"
	case "number":
		return 1.5
	}
	return map[string]any{}
}
