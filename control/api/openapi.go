package api

import (
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// opDoc is what the route table does not know about a route: its purpose, its body and its
// answers. Request schemas are read from the very struct the handler decodes, so the
// document cannot drift from what decode accepts.
type opDoc struct {
	summary string
	body    any // a pointer to the handler's body struct; nil when the route reads none
	// optional: the body may be absent (decodeOptional).
	optional bool
	status   int    // the success status
	content  string // the success media type; "" for application/json, "-" for no content
	errors   []string
}

// Codes every route of a kind can answer with, on top of the ones its entry lists.
var (
	anyRouteCodes    = []string{"internal", "not_ready"}
	bodyRouteCodes   = []string{"bad_request"}
	authedRouteCodes = []string{"invalid_token", "forbidden", "mfa_enrollment_required"}
)

var opDocs = map[string]opDoc{
	"POST /auth/signup":                                        {summary: "Create an account (and a tenant, unless invited)", body: new(signupBody), status: 201, errors: []string{"invalid_email", "weak_password", "email_taken", "invitation_required", "invalid_invitation", "tenant_required", "invalid_tenant", "tenant_reserved", "busy"}},
	"POST /auth/login":                                         {summary: "Log in with email and password", body: new(loginBody), status: 200, errors: []string{"invalid_credentials", "mfa_required", "tenant_required", "login_locked", "busy"}},
	"POST /auth/refresh":                                       {summary: "Trade a refresh token for new tokens", body: new(refreshBody), status: 200, errors: []string{"invalid_token"}},
	"POST /auth/logout":                                        {summary: "Revoke the session", body: new(refreshBody), optional: true, status: 204, content: "-"},
	"GET /me":                                                  {summary: "The caller's account", status: 200},
	"POST /auth/mfa/enroll":                                    {summary: "Start MFA enrolment", body: new(noBody), optional: true, status: 200, errors: []string{"mfa_already_enabled"}},
	"POST /auth/mfa/confirm":                                   {summary: "Confirm MFA enrolment with a code", body: new(mfaCodeBody), status: 200, errors: []string{"invalid_mfa_code", "mfa_not_enrolled", "mfa_already_enabled"}},
	"POST /auth/mfa/disable":                                   {summary: "Turn MFA off", body: new(mfaCodeBody), status: 204, content: "-", errors: []string{"invalid_mfa_code", "mfa_not_enabled"}},
	"POST /auth/mfa/recovery-codes":                            {summary: "Issue new recovery codes", body: new(mfaCodeBody), status: 200, errors: []string{"invalid_mfa_code", "mfa_not_enabled"}},
	"POST /auth/mfa/verify":                                    {summary: "Finish a login that needs MFA", body: new(mfaVerifyBody), status: 200, errors: []string{"invalid_mfa_token", "invalid_mfa_code", "login_locked"}},
	"POST /tenants":                                            {summary: "Create a tenant and invite its admin", body: new(createTenantBody), status: 201, errors: []string{"invalid_tenant", "tenant_reserved", "tenant_exists", "invalid_email"}},
	"GET /tenants":                                             {summary: "List the tenants the caller may see", status: 200},
	"GET /tenants/{id}":                                        {summary: "One tenant", status: 200, errors: []string{"tenant_not_found"}},
	"PATCH /tenants/{id}":                                      {summary: "Change a tenant's name, status, plan or MFA rule", body: new(patchTenantBody), status: 200, errors: []string{"tenant_not_found", "invalid_status", "unknown_plan"}},
	"POST /tenants/{id}/invitations":                           {summary: "Invite a user to the tenant", body: new(inviteBody), status: 201, errors: []string{"tenant_not_found", "invalid_email", "invalid_role"}},
	"GET /tenants/{id}/users":                                  {summary: "The tenant's users", status: 200, errors: []string{"tenant_not_found"}},
	"PATCH /tenants/{id}/users/{uid}":                          {summary: "Change a user's role", body: new(patchUserBody), status: 200, errors: []string{"user_not_found", "invalid_role", "last_owner", "roles_busy"}},
	"GET /tenants/{id}/audit-logs":                             {summary: "A page of the tenant's audit log", status: 200, errors: []string{"tenant_not_found"}},
	"GET /tenants/{id}/audit-logs/export":                      {summary: "The tenant's audit log as NDJSON", status: 200, content: "application/x-ndjson", errors: []string{"tenant_not_found"}},
	"GET /tenants/{id}/audit-logs/verify":                      {summary: "Check the audit log's hash chain", status: 200, errors: []string{"tenant_not_found"}},
	"POST /subscriptions":                                      {summary: "Start a Stripe checkout for a plan", body: new(subscribeBody), status: 201, errors: []string{"billing_disabled", "billing_busy", "plan_not_purchasable", "subscription_exists", "stripe_unavailable", "store_unavailable"}},
	"GET /subscriptions/current":                               {summary: "The tenant's subscription", status: 200, errors: []string{"billing_disabled", "no_subscription"}},
	"POST /subscriptions/portal":                               {summary: "A Stripe billing-portal link", status: 200, errors: []string{"billing_disabled", "no_subscription", "stripe_unavailable"}},
	"POST /webhooks/stripe":                                    {summary: "Stripe's event webhook (signed)", body: new(map[string]any), status: 200, errors: []string{"billing_disabled", "invalid_signature", "api_version_mismatch", "event_in_progress"}},
	"GET /rate-limit":                                          {summary: "The caller's tenant limits, without consuming them", status: 200, errors: []string{"tenant_not_found"}},
	"POST /tenants/{id}/webhook-endpoints":                     {summary: "Register a webhook endpoint", body: new(endpointBody), status: 201, errors: []string{"invalid_webhook_url", "invalid_webhook_description", "invalid_event_type", "webhook_endpoint_limit"}},
	"GET /tenants/{id}/webhook-endpoints":                      {summary: "The tenant's webhook endpoints", status: 200},
	"PATCH /tenants/{id}/webhook-endpoints/{eid}":              {summary: "Change a webhook endpoint", body: new(patchEndpointBody), status: 200, errors: []string{"webhook_endpoint_not_found", "invalid_webhook_url", "invalid_webhook_description", "invalid_event_type"}},
	"DELETE /tenants/{id}/webhook-endpoints/{eid}":             {summary: "Delete a webhook endpoint", status: 204, content: "-", errors: []string{"webhook_endpoint_not_found"}},
	"POST /tenants/{id}/webhook-endpoints/{eid}/rotate-secret": {summary: "Rotate an endpoint's signing secret", status: 200, errors: []string{"webhook_endpoint_not_found"}},
	"POST /tenants/{id}/webhook-endpoints/{eid}/recover":       {summary: "Resend the failed deliveries since a time", body: new(recoverBody), status: 202, errors: []string{"webhook_endpoint_not_found"}},
	"GET /tenants/{id}/webhook-deliveries":                     {summary: "The tenant's webhook deliveries", status: 200, errors: []string{"invalid_webhook_filter"}},
	"POST /tenants/{id}/webhook-deliveries/{did}/resend":       {summary: "Resend one delivery", status: 202, errors: []string{"webhook_delivery_not_found"}},
	"GET /plans":                                               {summary: "The plan catalogue", status: 200},
	"GET /healthz":                                             {summary: "Liveness", status: 200},
	"GET /readyz":                                              {summary: "Readiness: MongoDB and Redis answer", status: 200},
	"GET /openapi.json":                                        {summary: "This document", status: 200},
	"GET /docs":                                                {summary: "This document rendered for people (Swagger UI)", status: 200, content: "text/html"},
}

// OpenAPI is the OpenAPI 3.1 document of the control-plane API, built from the route table.
// A route without an entry in opDocs still appears, so that a client never misses one; the
// coverage test fails on it instead.
func OpenAPI() map[string]any { return openAPIDoc(Routes()) }

func openAPIDoc(table []Route) map[string]any {
	paths := map[string]any{}
	for _, rt := range table {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		item[strings.ToLower(method)] = operation(rt, opDocs[rt.Pattern], path)
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "saasgate control-plane API",
			"version": "1",
			"description": "Errors are RFC 9457 problems; `code` is the word to match on " +
				"(README: Error codes).",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": map[string]any{"Problem": problemSchema()},
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
			},
		},
	}
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

func operation(rt Route, d opDoc, path string) map[string]any {
	op := map[string]any{"summary": d.summary, "operationId": operationID(rt.Pattern)}
	if rt.MinRole != anyone {
		op["security"] = []any{map[string]any{"bearer": []any{}}}
		op["description"] = "Lowest role: " + string(rt.MinRole) + "."
	}
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		params = append(params, map[string]any{
			"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"},
		})
	}
	if params != nil {
		op["parameters"] = params
	}
	codes := slices.Clone(anyRouteCodes)
	if d.body != nil {
		op["requestBody"] = map[string]any{
			"required": !d.optional,
			"content":  map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(d.body).Elem())}},
		}
		codes = append(codes, bodyRouteCodes...)
	}
	if rt.MinRole != anyone {
		codes = append(codes, authedRouteCodes...)
	}
	codes = append(codes, d.errors...)
	responses := map[string]any{}
	status := d.status
	if status == 0 {
		status = http.StatusOK
	}
	ok := map[string]any{"description": http.StatusText(status)}
	switch d.content {
	case "-":
	case "":
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
	default:
		ok["content"] = map[string]any{d.content: map[string]any{"schema": map[string]any{"type": "string"}}}
	}
	responses[strconv.Itoa(status)] = ok
	for st, cs := range codesByStatus(codes) {
		responses[strconv.Itoa(st)] = map[string]any{
			"description": http.StatusText(st) + ": " + strings.Join(cs, ", "),
			"content": map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{
				"allOf": []any{
					map[string]any{"$ref": "#/components/schemas/Problem"},
					map[string]any{"properties": map[string]any{"code": map[string]any{"enum": cs}}},
				},
			}}},
		}
	}
	op["responses"] = responses
	return op
}

// codesByStatus groups codes by the status of their row in the error table, once each.
func codesByStatus(codes []string) map[int][]string {
	out := map[int][]string{}
	for _, c := range codes {
		row, ok := codeIndex[c]
		if !ok || slices.Contains(out[row.Status()], c) {
			continue
		}
		out[row.Status()] = append(out[row.Status()], c)
	}
	return out
}

func operationID(pattern string) string {
	return strings.Trim(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(pattern, "_"), "_")
}

func problemSchema() map[string]any {
	str := map[string]any{"type": "string"}
	return map[string]any{
		"type":     "object",
		"required": []any{"type", "title", "status", "code"},
		"properties": map[string]any{
			"type": str, "title": str, "detail": str,
			"status": map[string]any{"type": "integer"},
			"code":   map[string]any{"type": "string", "enum": allCodes()},
		},
	}
}

func allCodes() []any {
	var out []any
	for _, c := range errorCodes {
		out = append(out, c.Code)
	}
	return out
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf describes a body struct as decode reads it: its json names, and no other field
// (decode refuses unknown fields). Pointer fields are the optional ones of a PATCH.
func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.String:
		return map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		return map[string]any{"type": "boolean"}
	case t.Kind() == reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case t.Kind() == reflect.Map:
		return map[string]any{"type": "object"}
	case t.Kind() != reflect.Struct:
		return map[string]any{}
	}
	props := map[string]any{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		props[name] = schemaOf(f.Type)
	}
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

// openAPI serves the document of this API's own table; it is small enough to build per request.
func (a *API) openAPI(w http.ResponseWriter, _ *http.Request, _ *call) error {
	return writeJSON(w, http.StatusOK, openAPIDoc(a.table))
}
