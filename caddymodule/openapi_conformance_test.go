package caddymodule_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/saasgate/saasgate/control/api"
)

// Every route of the document, called on a running gateway as its tenant's owner, answers a
// status the document lists with a body its schema admits (success or problem alike).
func TestOpenAPI_RunningGatewayAnswersAsDocumented(t *testing.T) {
	// GET /docs answers an HTML page, documented as a string; the filter decodes JSON and
	// NDJSON-like text by default, so it is told to read HTML as text too.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder)
	s := startAPI(t)
	f := s.NewTenant(t, "conformance")
	served := s.Do(t, "GET", "/openapi.json", "", nil)
	if served.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %v", served)
	}
	doc, err := openapi3.NewLoader().LoadFromData(served.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The audit export streams NDJSON, which the document describes as text.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
	wildcard := regexp.MustCompile(`\{([a-z]+)\}`)
	routes := api.Routes()
	// Logging out ends the owner's session: it goes last, so the other routes see a live one.
	slices.SortStableFunc(routes, func(a, b api.Route) int {
		return boolInt(a.Pattern == "POST /auth/logout") - boolInt(b.Pattern == "POST /auth/logout")
	})
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		item := doc.Paths.Find(pattern)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("%s is not in the served document", rt.Pattern)
			continue
		}
		params := map[string]string{"id": f.ID, "uid": f.UserID}
		path := wildcard.ReplaceAllStringFunc(pattern, func(m string) string {
			if v, ok := params[m[1:len(m)-1]]; ok {
				return v
			}
			params[m[1:len(m)-1]] = "none"
			return "none"
		})
		var body any
		if item.GetOperation(method).RequestBody != nil {
			body = map[string]any{}
		}
		r := s.Do(t, method, path, f.OwnerAccess, body)
		req, _ := http.NewRequest(method, path, nil)
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{
				Request:    req,
				PathParams: params,
				Route:      &routers.Route{Spec: doc, Path: pattern, PathItem: item, Method: method, Operation: item.GetOperation(method)},
			},
			Status:  r.Status,
			Header:  r.Header,
			Body:    io.NopCloser(bytes.NewReader(r.Raw)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s → %d %.300s\ndoes not match the document: %v", rt.Pattern, r.Status, bytes.TrimSpace(r.Raw), err)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
