package testenv_test

import (
	"net/http"
	"strconv"
	"testing"

	_ "github.com/saasgate/saasgate/caddymodule"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestParseMetrics_ReadsSamplesAndTheirLabels(t *testing.T) {
	m, err := testenv.ParseMetrics("# HELP x a counter\n# TYPE x counter\n" +
		"x 3\n" +
		`y{plan="free",result="allowed"} 2.5` + "\n" +
		`y{plan="pro",result="allowed"} 7` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 {
		t.Fatalf("%d samples, want 3: %+v", len(m), m)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"x", nil, 3},
		{"y", map[string]string{"plan": "free", "result": "allowed"}, 2.5},
		{"y", map[string]string{"plan": "pro", "result": "allowed"}, 7},
		{"y", map[string]string{"plan": "pro"}, 0}, // labels must match exactly
		{"z", nil, 0},
	} {
		if got := m.Value(tc.name, tc.labels); got != tc.want {
			t.Errorf("Value(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if v, ok := m.Series(`y{plan="pro",result="allowed"}`); !ok || v != 7 {
		t.Errorf("Series of y pro = %v, %v; want 7, true", v, ok)
	}
	if _, ok := m.Series("y"); ok {
		t.Error("Series(y) found a sample; only y with its labels exists")
	}
	if _, err := testenv.ParseMetrics("not a sample line\n"); err == nil {
		t.Error("an unparsable line was accepted")
	}
}

// The kit end to end: a saas gateway from StartSaas, a tenant made through the account
// fixtures, a request through its tenant site, and the limiter's decision on the scrape.
func TestStartSaas_ServesTheAPIAndATenantSiteWithMetrics(t *testing.T) {
	up := testenv.EchoUpstream(t)
	s := testenv.StartSaas(t, testenv.SaasOptions{
		Options:  "default_plan kit\nplan kit {\n\trate 100/1m\n}",
		APISite:  "metrics /metrics",
		Sites:    []testenv.Site{{Name: "gw", Body: "saas_tenant\nsaas_auth\nsaas_rate_limit\nreverse_proxy UPSTREAM"}},
		Upstream: up.Addr,
	})
	f := s.NewTenant(t, "kit")
	if f.OwnerID == "" || f.UserID == "" || f.UserAccess == "" {
		t.Fatalf("incomplete tenant fixture: %+v", f)
	}
	port := strconv.Itoa(s.Ports["gw"])
	site := testenv.NewClient(t, "http://127.0.0.1:"+port)
	r := site.Do(t, "GET", "/hello", f.UserAccess, nil, testenv.WithHost("kit.localhost:"+port))
	if r.Status != http.StatusOK || up.Count() != 1 {
		t.Fatalf("%v (upstream reached %d times); want 200 through to the upstream", r, up.Count())
	}
	if r := site.Do(t, "GET", "/hello", "", nil, testenv.WithHost("kit.localhost:"+port)); r.Code() != "invalid_token" {
		t.Errorf("%v: Code() = %q, want invalid_token", r, r.Code())
	}
	allowed := map[string]string{"plan": "kit", "result": "allowed"}
	if v := testenv.Scrape(t, s.Client, "/metrics").Value("saasgate_limiter_decisions_total", allowed); v != 1 {
		t.Errorf("saasgate_limiter_decisions_total%v = %v, want 1", allowed, v)
	}
}
