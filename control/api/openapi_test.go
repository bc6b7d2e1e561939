package api

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	common := append(append(append([]string(nil), anyRouteCodes...), bodyRouteCodes...), authedRouteCodes...)
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
