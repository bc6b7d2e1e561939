package caddymodule_test

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// CORS per saas_api site and the security headers of every API answer, through a real
// gateway: the plain control-API site (no cors_origins) and a second saas_api site, "cors",
// that lists two origins.

const (
	corsApp   = "https://app.example.com"
	corsLocal = "http://localhost:3000"
)

func startCORSGateway(t *testing.T) (*apiServer, *testenv.Client) {
	t.Helper()
	s := &apiServer{testenv.StartSaas(t, testenv.SaasOptions{
		Options: apiPlans,
		Sites:   []testenv.Site{{Name: "cors", Body: "saas_api {\n\tcors_origins " + corsApp + " " + corsLocal + "\n}"}},
	})}
	return s, testenv.NewClient(t, "http://127.0.0.1:"+strconv.Itoa(s.Ports["cors"]))
}

func preflight(origin, method string) []testenv.Option {
	return []testenv.Option{
		testenv.WithHeader("Origin", origin),
		testenv.WithHeader("Access-Control-Request-Method", method),
		testenv.WithHeader("Access-Control-Request-Headers", "authorization, content-type"),
	}
}

// wantNoCORS checks that an answer carries no Access-Control-* header at all.
func wantNoCORS(t *testing.T, where string, r testenv.Response) {
	t.Helper()
	for k := range r.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("%s: %v carries %s: %q", where, r, k, r.Header.Values(k))
		}
	}
}

func TestCORS_ListedOriginsGetPreflightAndExactOrigin(t *testing.T) {
	s, site := startCORSGateway(t)

	for _, origin := range []string{corsApp, corsLocal} {
		r := site.Do(t, "OPTIONS", "/auth/login", "", nil, preflight(origin, "POST")...)
		if !wantStatus(t, r, http.StatusNoContent) {
			continue
		}
		wantHeader(t, "preflight", r.Header, "Access-Control-Allow-Origin", origin)
		for key, want := range map[string][]string{
			"Access-Control-Allow-Methods": {"GET", "POST", "PATCH", "DELETE"},
			"Access-Control-Allow-Headers": {"Authorization", "Content-Type"},
		} {
			got := strings.Split(r.Header.Get(key), ", ")
			for _, w := range want {
				if !slices.Contains(got, w) {
					t.Errorf("preflight from %s: %s = %q, want %s in it", origin, key, r.Header.Get(key), w)
				}
			}
		}
		if r.Header.Get("Access-Control-Max-Age") != "600" {
			t.Errorf("preflight from %s: Access-Control-Max-Age = %q, want 600", origin, r.Header.Get("Access-Control-Max-Age"))
		}
		if !slices.Contains(r.Header.Values("Vary"), "Origin") {
			t.Errorf("preflight from %s: Vary = %q, want Origin in it", origin, r.Header.Values("Vary"))
		}
		// Bearer tokens need no credentials mode; and never `*`, with or without.
		wantHeader(t, "preflight", r.Header, "Access-Control-Allow-Credentials")

		// The actual request gets the same exact origin.
		r = site.Do(t, "GET", "/plans", "", nil, testenv.WithHeader("Origin", origin))
		mustStatus(t, r, http.StatusOK)
		wantHeader(t, "GET /plans", r.Header, "Access-Control-Allow-Origin", origin)
		wantHeader(t, "GET /plans", r.Header, "Access-Control-Allow-Credentials")
		if !slices.Contains(r.Header.Values("Vary"), "Origin") {
			t.Errorf("GET /plans from %s: Vary = %q, want Origin in it", origin, r.Header.Values("Vary"))
		}
	}

	t.Run("OriginNotListed", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example", "https://app.example.com.evil.example", "null", "http://app.example.com"} {
			r := site.Do(t, "OPTIONS", "/auth/login", "", nil, preflight(origin, "POST")...)
			if r.Status == http.StatusNoContent {
				t.Errorf("a preflight from %s was answered 204", origin)
			}
			wantNoCORS(t, "preflight from "+origin, r)
			r = site.Do(t, "GET", "/plans", "", nil, testenv.WithHeader("Origin", origin))
			wantNoCORS(t, "GET /plans from "+origin, r)
			// The answer still depends on Origin, for caches.
			if !slices.Contains(r.Header.Values("Vary"), "Origin") {
				t.Errorf("GET /plans from %s: Vary = %q, want Origin in it", origin, r.Header.Values("Vary"))
			}
		}
	})

	t.Run("SiteWithoutCORSOrigins", func(t *testing.T) {
		r := s.Do(t, "OPTIONS", "/auth/login", "", nil, preflight(corsApp, "POST")...)
		if r.Status == http.StatusNoContent {
			t.Errorf("the site without cors_origins answered a preflight 204")
		}
		wantNoCORS(t, "preflight on the plain site", r)
		wantNoCORS(t, "GET /plans on the plain site", s.Do(t, "GET", "/plans", "", nil, testenv.WithHeader("Origin", corsApp)))
	})
}

// routePattern matches a route registration in control/api/routes.go.
var routePattern = regexp.MustCompile(`a\.handle\("([A-Z]+) (/[^"]*)"`)

// apiRoutes reads every route from the route table itself, so a route added later is covered
// without anyone listing it here.
func apiRoutes(t *testing.T) [][2]string {
	t.Helper()
	src, err := os.ReadFile("../control/api/routes.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes [][2]string
	for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
		routes = append(routes, [2]string{m[1], m[2]})
	}
	if len(routes) < 20 {
		t.Fatalf("found only %d routes in control/api/routes.go: has its form changed?", len(routes))
	}
	return routes
}

// Every answer of every route, success or refusal, as anyone or as an owner, carries the
// security headers: many carry a token or a secret, and a per-route list would miss one.
func TestSecurityHeaders_OnEveryAnswerOfEveryRoute(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "hollywood")
	wildcard := regexp.MustCompile(`\{[a-z]+\}`)
	check := func(t *testing.T, r testenv.Response) {
		t.Helper()
		for key, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
		} {
			if got := r.Header.Values(key); len(got) != 1 || got[0] != want {
				t.Errorf("%s %s → %d: %s = %q, want %q", r.Method, r.Path, r.Status, key, got, want)
			}
		}
	}
	for _, route := range apiRoutes(t) {
		method, path := route[0], route[1]
		path = strings.ReplaceAll(path, "{id}", f.ID)
		path = strings.ReplaceAll(path, "{uid}", f.UserID)
		path = wildcard.ReplaceAllString(path, "none")
		for _, tok := range []string{"", f.OwnerAccess} {
			var body any
			if method != "GET" && method != "DELETE" {
				body = map[string]any{}
			}
			check(t, s.Do(t, method, path, tok, body))
		}
	}
	// The answers that carry tokens, made for real.
	// The sweep above logged the owner out: the user's session is the one refreshed.
	login := s.Login(t, f.UserEmail, testenv.Password, f.ID)
	endpoint := s.Do(t, "POST", "/tenants/"+f.ID+"/webhook-endpoints", f.OwnerAccess,
		map[string]any{"url": "https://203.0.113.10/hook"}) // a public literal: no DNS needed
	for _, made := range []struct {
		r    testenv.Response
		want int
	}{
		{s.Signup(t, "new@hollywood-two.test", testenv.Password, "hollywood-two", ""), http.StatusCreated},
		{login, http.StatusOK},
		{s.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": testenv.PairOf(t, login).Refresh}), http.StatusOK},
		{endpoint, http.StatusCreated},
		{s.Do(t, "POST", "/tenants/"+f.ID+"/webhook-endpoints/"+endpoint.Str("id")+"/rotate-secret", f.OwnerAccess, nil), http.StatusOK},
	} {
		wantStatus(t, made.r, made.want)
		check(t, made.r)
	}
	// No route: the mux's own answer too.
	check(t, s.Do(t, "GET", "/no-such-route", "", nil))
}
