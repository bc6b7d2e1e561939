package api

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/control/identity"
)

// Routes is what the mux serves: each pattern listed is the one the mux picks for a request
// of its shape, once, with a role the role gate knows.
func TestRoutes_ListsWhatTheMuxServes(t *testing.T) {
	a := New(&API{})
	routes := Routes()
	if len(routes) == 0 {
		t.Fatal("Routes() is empty")
	}
	seen := map[string]bool{}
	for _, rt := range routes {
		if seen[rt.Pattern] {
			t.Errorf("%s listed twice", rt.Pattern)
		}
		seen[rt.Pattern] = true
		switch rt.MinRole {
		case anyone, identity.RoleUser, identity.RoleOwner, identity.RoleAdmin:
		default:
			t.Errorf("%s: minimum role %q is none the gate knows", rt.Pattern, rt.MinRole)
		}
		method, path, ok := strings.Cut(rt.Pattern, " ")
		if !ok {
			t.Errorf("%s: a route names its method", rt.Pattern)
			continue
		}
		path = regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "x")
		if _, got := a.mux.Handler(httptest.NewRequest(method, path, nil)); got != rt.Pattern {
			t.Errorf("%s %s is served by %q, want %q", method, path, got, rt.Pattern)
		}
	}
}
