package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/saasgate/saasgate/control/api"
	"github.com/saasgate/saasgate/internal/testenv"
)

// Every operation of the served document is called with its documented example request (path
// parameters, query and header parameters, body: read from /openapi.json, not from a table of
// this test), as the role its security asks for, on a gateway whose fixtures make the
// examples true: the tenant acme-corp with its owner and users, a webhook endpoint with a
// delivery, billing on stripe-mock. The answer must be the documented success, with a body
// the documented schema admits (closed schemas: an undeclared field fails). The values the
// server mints (ids, tokens, TOTP codes), which the examples show as api.Example*, are
// replaced by the fixtures' own; nothing else is.
func TestOpenAPI_EveryDocumentedExampleSucceedsAsDocumented(t *testing.T) {
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	s := startAPI(t, fmt.Sprintf(`stripe {
	secret_key %s
	webhook_secret %s
	api_base %s
	success_url https://app.acme-corp.test/billing/done
}
plan team {
	rate 10/1s
	stripe_price price_team
}
webhooks {
	timeout 2s
	allow_private 127.0.0.0/8
}
auth_rate signup 100/1h
auth_rate login 200/1m`, testenv.StripeMockKey, testenv.WebhookSecret, testenv.StripeMock(t)))

	served := s.Do(t, "GET", "/openapi.json", "", nil)
	mustStatus(t, served, http.StatusOK)
	doc, err := openapi3.NewLoader().LoadFromData(served.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}

	fx := newExampleFixtures(t, s, receiver.URL)
	type operation struct {
		method, path string
		item         *openapi3.PathItem
		op           *openapi3.Operation
	}
	var ops []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, operation{method, path, item, op})
		}
	}
	// The route table's order (a checkout before the billing portal), with logout last: it ends
	// a session, which nothing after it needs, but it is safer so.
	order := map[string]int{}
	for i, rt := range api.Routes() {
		order[rt.Pattern] = i
	}
	order["POST /auth/logout"] = len(order)
	slices.SortFunc(ops, func(a, b operation) int {
		return order[a.method+" "+a.path] - order[b.method+" "+b.path]
	})
	sent := map[string]bool{}
	for _, o := range ops {
		pattern := o.method + " " + o.path
		req, ok := exampleRequest(t, pattern, o.path, o.op)
		if !ok {
			continue
		}
		live := fx.live(t, pattern)
		req = req.resolve(live)
		opts := []testenv.Option{}
		for k, v := range req.header {
			opts = append(opts, testenv.WithHeader(k, v))
		}
		var body any
		if req.body != nil {
			raw, err := json.Marshal(req.body)
			if err != nil {
				t.Fatal(err)
			}
			body = raw
			if pattern == "POST /webhooks/stripe" {
				// The one header no example can hold: a signature of this body, made now.
				opts = append(opts, testenv.WithHeader("Stripe-Signature", testenv.SignStripe(raw, testenv.WebhookSecret, time.Now())))
			}
		}
		target := req.path
		if len(req.query) > 0 {
			target += "?" + req.query.Encode()
		}
		r := s.Do(t, o.method, target, fx.token(t, pattern, o.op), body, opts...)
		sent[pattern] = true
		success := ""
		for status := range o.op.Responses.Map() {
			if status[0] == '2' {
				success = status
			}
		}
		if fmt.Sprint(r.Status) != success {
			t.Errorf("%s: the documented example answered %d, want the documented success %s: %.400s", pattern, r.Status, success, bytes.TrimSpace(r.Raw))
		}
		// The request as sent (placeholders resolved) is one the document admits too.
		var sentBody io.Reader
		if raw, ok := body.([]byte); ok {
			sentBody = bytes.NewReader(raw)
		}
		httpReq, _ := http.NewRequest(o.method, target, sentBody)
		if sentBody != nil {
			httpReq.Header.Set("Content-Type", "application/json")
		}
		for k, v := range req.header {
			httpReq.Header.Set(k, v)
		}
		reqIn := &openapi3filter.RequestValidationInput{
			Request: httpReq, PathParams: req.params,
			Route:   &routers.Route{Spec: doc, Path: o.path, PathItem: o.item, Method: o.method, Operation: o.op},
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		}
		if err := openapi3filter.ValidateRequest(context.Background(), reqIn); err != nil {
			t.Errorf("%s: the example request as sent does not match the document: %v", pattern, err)
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: reqIn,
			Status:                 r.Status,
			Header:                 r.Header,
			Body:                   io.NopCloser(bytes.NewReader(r.Raw)),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s → %d %.400s\ndoes not match the document: %v", pattern, r.Status, bytes.TrimSpace(r.Raw), err)
		}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-ndjson") {
			checkNDJSON(t, pattern, r.Raw, doc.Components.Schemas["AuditEntry"])
		}
	}
	for _, rt := range api.Routes() {
		if !sent[rt.Pattern] {
			t.Errorf("%s: no documented example was sent", rt.Pattern)
		}
	}
	if len(sent) != len(api.Routes()) {
		t.Errorf("sent %d examples for %d routes", len(sent), len(api.Routes()))
	}
}

// checkNDJSON holds each line of an export to the schema its description names (the document
// can only call the stream a string).
func checkNDJSON(t *testing.T, pattern string, raw []byte, entry *openapi3.SchemaRef) {
	t.Helper()
	if entry == nil {
		t.Fatalf("%s: the document has no AuditEntry schema", pattern)
	}
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	if len(lines) == 0 || len(lines[0]) == 0 {
		t.Errorf("%s: the example exported no entry, so none was checked", pattern)
		return
	}
	for i, line := range lines {
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			t.Errorf("%s: line %d is not JSON: %v", pattern, i+1, err)
			continue
		}
		if err := entry.Value.VisitJSON(v); err != nil {
			t.Errorf("%s: line %d %.300s does not match AuditEntry: %v", pattern, i+1, line, err)
		}
	}
}

// exampleReq is an operation's example request as the document gives it.
type exampleReq struct {
	path   string
	params map[string]string
	query  url.Values
	header map[string]string
	body   any
}

var pathWildcard = regexp.MustCompile(`\{([a-z]+)\}`)

// exampleRequest reads op's example request from the document; ok is false (and the test
// fails) when a required parameter or the body has no example.
func exampleRequest(t *testing.T, pattern, path string, op *openapi3.Operation) (exampleReq, bool) {
	t.Helper()
	req := exampleReq{path: path, params: map[string]string{}, query: url.Values{}, header: map[string]string{}}
	ok := true
	for _, ref := range op.Parameters {
		p := ref.Value
		if p.Example == nil {
			if p.Required {
				t.Errorf("%s: required parameter %s has no example", pattern, p.Name)
				ok = false
			}
			continue
		}
		v := fmt.Sprint(p.Example)
		switch p.In {
		case "path":
			req.params[p.Name] = v
		case "query":
			req.query.Set(p.Name, v)
		case "header":
			req.header[p.Name] = v
		}
	}
	if rb := op.RequestBody; rb != nil {
		mt := rb.Value.Content.Get("application/json")
		if mt == nil || mt.Examples["example"] == nil {
			t.Errorf("%s: the request body has no example", pattern)
			return req, false
		}
		req.body = mt.Examples["example"].Value.Value
	}
	return req, ok
}

// resolve replaces the minted values of the example (api.Example*) by live's, in the path
// parameters, the query, the headers and anywhere in the body.
func (r exampleReq) resolve(live map[string]string) exampleReq {
	sub := func(s string) string {
		if v, ok := live[s]; ok {
			return v
		}
		return s
	}
	out := exampleReq{params: map[string]string{}, query: url.Values{}, header: map[string]string{}}
	for k, v := range r.params {
		out.params[k] = sub(v)
	}
	for k, vs := range r.query {
		out.query.Set(k, sub(vs[0]))
	}
	for k, v := range r.header {
		out.header[k] = sub(v)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case string:
			return sub(v)
		case map[string]any:
			m := map[string]any{}
			for k, x := range v {
				m[k] = walk(x)
			}
			return m
		case []any:
			l := make([]any, len(v))
			for i, x := range v {
				l[i] = walk(x)
			}
			return l
		}
		return v
	}
	out.body = walk(r.body)
	out.path = pathWildcard.ReplaceAllStringFunc(r.path, func(m string) string {
		return url.PathEscape(out.params[m[1:len(m)-1]])
	})
	return out
}

// exampleFixtures is the state the examples are about: acme-corp (owner@ and user@), a member
// per MFA example (each at the stage that example needs), sessions to refresh and end, a
// member whose role the owner changes, webhook endpoints and a delivery.
type exampleFixtures struct {
	s     *apiServer
	admin string
	acme  *testenv.TenantFixture
	// by example: the member who acts, their TOTP secret and, for a login waiting for its
	// second factor, the MFA step token
	mfa                   map[string]*mfaMember
	refreshSession        testenv.TokenPair
	logoutSession         testenv.TokenPair
	memberID              string
	endpoint, spare, dlvr string
}

type mfaMember struct {
	access, secret, mfaToken string
}

func newExampleFixtures(t *testing.T, s *apiServer, receiver string) *exampleFixtures {
	t.Helper()
	fx := &exampleFixtures{s: s, admin: s.AdminToken(t), mfa: map[string]*mfaMember{}}
	fx.acme = s.NewTenant(t, api.ExampleTenant)
	owner := fx.acme.OwnerAccess
	// The endpoint the examples act on hears of members joining, so that the members below
	// leave deliveries in the log; the spare one is the one the DELETE example removes.
	for _, dst := range []*string{&fx.endpoint, &fx.spare} {
		r := s.Do(t, "POST", "/tenants/"+api.ExampleTenant+"/webhook-endpoints", owner,
			map[string]any{"url": receiver + "/hook", "events": []string{"member.joined"}})
		mustStatus(t, r, http.StatusCreated)
		*dst = r.Str("id")
	}
	member := func(name string) (string, testenv.TokenPair) {
		email := name + "@" + api.ExampleTenant + ".test"
		inv := s.MustInvite(t, owner, api.ExampleTenant, email, "user")
		id := s.MustSignup(t, email, api.ExampleTenant, inv)
		return id, s.MustLogin(t, email, api.ExampleTenant)
	}
	fx.memberID, _ = member("member")
	_, fx.refreshSession = member("refresher")
	_, fx.logoutSession = member("leaver")
	for _, ex := range []string{"POST /auth/mfa/enroll", "POST /auth/mfa/confirm", "POST /auth/mfa/disable", "POST /auth/mfa/recovery-codes", "POST /auth/mfa/verify"} {
		name := "mfa-" + strings.TrimPrefix(ex, "POST /auth/mfa/")
		_, pair := member(name)
		m := &mfaMember{access: pair.Access}
		fx.mfa[ex] = m
		if ex == "POST /auth/mfa/enroll" {
			continue // enrols in the example
		}
		r := s.Do(t, "POST", "/auth/mfa/enroll", m.access, nil)
		mustStatus(t, r, http.StatusOK)
		m.secret = r.Str("secret")
		if ex == "POST /auth/mfa/confirm" {
			continue // confirms in the example
		}
		mustStatus(t, s.Do(t, "POST", "/auth/mfa/confirm", m.access, map[string]string{"code": totpAt(t, m.secret, time.Now())}), http.StatusOK)
		if ex == "POST /auth/mfa/verify" {
			login := s.Login(t, name+"@"+api.ExampleTenant+".test", testenv.Password, api.ExampleTenant)
			if login.Status != http.StatusUnauthorized || login.Code() != "mfa_required" || login.Str("mfa_token") == "" {
				t.Fatalf("a login with MFA on: %v", login)
			}
			m.mfaToken = login.Str("mfa_token")
		}
	}
	// The members' joining was delivered to the endpoint (the workers run apart from the
	// requests): wait for one delivery to show in the log.
	for deadline := time.Now().Add(60 * time.Second); fx.dlvr == ""; time.Sleep(100 * time.Millisecond) {
		r := s.Do(t, "GET", "/tenants/"+api.ExampleTenant+"/webhook-deliveries?endpoint="+fx.endpoint, owner, nil)
		mustStatus(t, r, http.StatusOK)
		if list, _ := r.Body["deliveries"].([]any); len(list) > 0 {
			fx.dlvr, _ = list[0].(map[string]any)["id"].(string)
		}
		if fx.dlvr == "" && time.Now().After(deadline) {
			t.Fatalf("no delivery to endpoint %s after a minute: %v", fx.endpoint, r)
		}
	}
	return fx
}

// totpAt is secret's TOTP code at at.
func totpAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// live is what the minted example values stand for in pattern's example.
func (fx *exampleFixtures) live(t *testing.T, pattern string) map[string]string {
	t.Helper()
	out := map[string]string{
		api.ExampleUserID:     fx.memberID,
		api.ExampleEndpointID: fx.endpoint,
		api.ExampleDeliveryID: fx.dlvr,
	}
	switch pattern {
	case "DELETE /tenants/{id}/webhook-endpoints/{eid}":
		out[api.ExampleEndpointID] = fx.spare
	case "POST /auth/refresh":
		out[api.ExampleRefreshToken] = fx.refreshSession.Refresh
	case "POST /auth/logout":
		out[api.ExampleRefreshToken] = fx.logoutSession.Refresh
	}
	if m := fx.mfa[pattern]; m != nil && m.secret != "" {
		// The next step's code: the member's confirmation may have spent this step's (a code
		// is good once), and the server accepts one step either side of now.
		out[api.ExampleMFACode] = totpAt(t, m.secret, time.Now().Add(30*time.Second))
		out[api.ExampleMFAToken] = m.mfaToken
	}
	return out
}

// token is the bearer token pattern's example is sent with: the role its security asks for
// (x-saasgate-min-role), as the member the example is about where it is about one.
func (fx *exampleFixtures) token(t *testing.T, pattern string, op *openapi3.Operation) string {
	t.Helper()
	role, _ := op.Extensions["x-saasgate-min-role"].(string)
	if (role == "") != (op.Security == nil || len(*op.Security) == 0) {
		t.Errorf("%s: x-saasgate-min-role %q disagrees with its security %v", pattern, role, op.Security)
	}
	switch {
	case role == "":
		return ""
	case fx.mfa[pattern] != nil:
		return fx.mfa[pattern].access
	case pattern == "POST /auth/logout":
		return fx.logoutSession.Access
	case role == "user":
		return fx.acme.UserAccess
	case role == "owner":
		return fx.acme.OwnerAccess
	case role == "admin":
		return fx.admin
	}
	t.Fatalf("%s: unknown x-saasgate-min-role %q", pattern, role)
	return ""
}
