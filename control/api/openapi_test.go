package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The document and the route table agree both ways: every route has an entry and an
// operation, and the document names no operation the mux does not serve.
func TestOpenAPI_CoversTheRouteTableBothWays(t *testing.T) {
	table := map[string]bool{}
	for _, rt := range Routes() {
		table[rt.Pattern] = true
		if _, ok := opDocs[rt.Pattern]; !ok {
			t.Errorf("%s has no entry in opDocs", rt.Pattern)
		}
	}
	for pattern := range opDocs {
		if !table[pattern] {
			t.Errorf("opDocs documents %s, which routes.go does not register", pattern)
		}
	}
	documented := map[string]bool{}
	for path, item := range loadOpenAPI(t, serveOpenAPI(t)).Paths.Map() {
		for method, op := range item.Operations() {
			pattern := method + " " + path
			documented[pattern] = true
			if !table[pattern] {
				t.Errorf("the document has %s, which the route table lacks", pattern)
			}
			if op.Summary == "" {
				t.Errorf("%s has no summary", pattern)
			}
		}
	}
	for pattern := range table {
		if !documented[pattern] {
			t.Errorf("%s is missing from the document", pattern)
		}
	}
}

// Every error code the document names is a row of the error table, under its row's status.
func TestOpenAPI_ErrorCodesComeFromTheErrorTable(t *testing.T) {
	common := slices.Concat(anyRouteCodes, bodyRouteCodes, authedRouteCodes, ownerRouteCodes)
	for pattern, d := range opDocs {
		for _, c := range append(common, d.errors...) {
			if _, ok := codeIndex[c]; !ok {
				t.Errorf("%s lists %q, which is not in the error table", pattern, c)
			}
		}
	}
	doc := loadOpenAPI(t, serveOpenAPI(t))
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, resp := range op.Responses.Map() {
				mt := resp.Value.Content.Get("application/problem+json")
				if mt == nil {
					continue
				}
				codes := mt.Schema.Value.AllOf[1].Value.Properties["code"].Value.Enum
				if len(codes) == 0 {
					t.Errorf("%s %s %s: a problem response names no code", method, path, status)
				}
				for _, c := range codes {
					row, ok := codeIndex[c.(string)]
					if !ok || status != strconv.Itoa(row.Status()) {
						t.Errorf("%s %s: code %v documented under %s, its row says %d", method, path, c, status, row.Status())
					}
				}
			}
		}
	}
}

// serveOpenAPI fetches the document the way a client does, through the route.
func serveOpenAPI(t *testing.T) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	New(&API{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	return rec.Body.Bytes()
}

// loadOpenAPI parses and validates the document with kin-openapi, which checks 3.1.
func loadOpenAPI(t *testing.T, raw []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("loading the document: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document does not validate: %v", err)
	}
	return doc
}

func TestOpenAPI_Validates(t *testing.T) { loadOpenAPI(t, serveOpenAPI(t)) }

// Every operation carries an example request (an example for each required parameter, which
// the path ones are, and for its body; an optional parameter's example is sent when given) and, when it answers a body, an example response; kin-openapi has checked each
// against its schema when loading. opExamples names only routes that exist.
func TestOpenAPI_EveryOperationHasExamples(t *testing.T) {
	doc := loadOpenAPI(t, serveOpenAPI(t))
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			pattern := method + " " + path
			for _, p := range op.Parameters {
				if p.Value.Required && p.Value.Example == nil && len(p.Value.Examples) == 0 {
					t.Errorf("%s: parameter %s has no example", pattern, p.Value.Name)
				}
			}
			if rb := op.RequestBody; rb != nil {
				if mt := rb.Value.Content.Get("application/json"); mt == nil || len(mt.Examples) == 0 {
					t.Errorf("%s: the request body has no example", pattern)
				}
			}
			for status, resp := range op.Responses.Map() {
				if status[0] != '2' {
					continue
				}
				for media, mt := range resp.Value.Content {
					if mt.Example == nil && len(mt.Examples) == 0 {
						t.Errorf("%s: the %s %s answer has no example", pattern, status, media)
					}
				}
			}
		}
	}
	for pattern := range opExamples {
		if _, ok := opDocs[pattern]; !ok {
			t.Errorf("opExamples has %s, which is not a route", pattern)
		}
	}
}

// Every documented error status answers problem+json whose schema requires a code from the
// error table; the success answers' schemas are closed, so that a field the type does not
// declare (a password hash, say) fails the conformance test.
func TestOpenAPI_ErrorAnswersAreProblemsAndSuccessAnswersAreClosed(t *testing.T) {
	doc := loadOpenAPI(t, serveOpenAPI(t))
	problem := doc.Components.Schemas["Problem"]
	if problem == nil || !slices.Contains(problem.Value.Required, "code") || problem.Value.Properties["code"] == nil {
		t.Fatalf("components.schemas.Problem must require a code: %+v", problem)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			pattern := method + " " + path
			for status, resp := range op.Responses.Map() {
				code, _ := strconv.Atoi(status)
				if code >= 400 {
					mt := resp.Value.Content.Get("application/problem+json")
					if mt == nil || len(mt.Schema.Value.AllOf) != 2 || mt.Schema.Value.AllOf[0].Ref != "#/components/schemas/Problem" {
						t.Errorf("%s %s: not a problem+json answer built on Problem", pattern, status)
						continue
					}
					if len(mt.Schema.Value.AllOf[1].Value.Properties["code"].Value.Enum) == 0 {
						t.Errorf("%s %s: names no code", pattern, status)
					}
					continue
				}
				if mt := resp.Value.Content.Get("application/json"); mt != nil && pattern != "GET /openapi.json" {
					s := mt.Schema.Value
					if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
						t.Errorf("%s %s: the answer's schema is open (additionalProperties is not false)", pattern, status)
					}
				}
			}
		}
	}
	user := doc.Components.Schemas["User"]
	if user == nil || user.Value.Properties["password_hash"] != nil || !slices.Contains(user.Value.Required, "user_id") {
		t.Errorf("the User schema must show user_id and no password hash: %+v", user)
	}
	for _, name := range []string{"Tenant", "User", "IssuedInvitation", "Endpoint", "Delivery", "AuditEntry"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("components.schemas has no %s", name)
		}
	}
}

// The document is read from the handlers' own answer types, so it shows what they send: a
// field that starts to leak (a json:"-" tag dropped) shows in it. No schema may name a stored
// secret, and credentials shown once appear only in the answers that exist to show them.
func TestOpenAPI_NoSchemaCarriesASecretItShouldNot(t *testing.T) {
	doc := loadOpenAPI(t, serveOpenAPI(t))
	never := []string{"password_hash", "password", "role_rev", "mfa", "secrets", "totp_secret", "recovery_code_hashes", "lease_owner", "lease_until", "rev"}
	onlyIn := map[string][]string{
		"secret":         {"EndpointWithSecret", "Enrollment", "SecretResponse"},
		"access_token":   {"TokenPair"},
		"refresh_token":  {"TokenPair"},
		"token":          {"IssuedInvitation"},
		"recovery_codes": {"MFACodes"},
	}
	var walk func(component, path string, s *openapi3.Schema)
	walk = func(component, path string, s *openapi3.Schema) {
		if s == nil {
			return
		}
		for name, p := range s.Properties {
			if slices.Contains(never, name) {
				t.Errorf("%s%s has a property %q", component, path, name)
			}
			if allowed, ok := onlyIn[name]; ok && (path != "" || !slices.Contains(allowed, component)) {
				t.Errorf("%s%s has a property %q, which only %v may show", component, path, name, allowed)
			}
			if p.Ref == "" {
				walk(component, path+"."+name, p.Value)
			}
		}
		if s.Items != nil && s.Items.Ref == "" {
			walk(component, path+"[]", s.Items.Value)
		}
		for _, sub := range s.AllOf {
			if sub.Ref == "" {
				walk(component, path, sub.Value)
			}
		}
	}
	for name, s := range doc.Components.Schemas {
		walk(name, "", s.Value)
	}
}
