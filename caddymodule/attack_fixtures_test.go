package caddymodule_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// The attack sweeps (attack_*_test.go) run against one gateway per test: billing on
// (stripe-mock), webhooks delivered to a receiver on 127.0.0.1, a victim and an attacker
// tenant, every log line (the gateway's and the API site's access log) written to files that
// are searched, once Caddy has stopped, for every secret the test handled.

// sweepEnv is a running sweep gateway with its fixtures.
type sweepEnv struct {
	*apiServer
	victim, attacker *testenv.TenantFixture
	admin            string
	endpointID       string // the victim's webhook endpoint
	deliveryID       string // a delivery of the victim's, settled (succeeded)
	receiver         string // URL of the webhook receiver
	db               *store.DB

	mu      sync.Mutex
	secrets map[string]string // secret value → what it is
}

// secret records a value that must never be logged.
func (s *sweepEnv) secret(what, value string) {
	if value == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[value] = what
}

// do is Do that records every secret the answer carries (harvest).
func (s *sweepEnv) do(t testing.TB, method, path, token string, body any) testenv.Response {
	t.Helper()
	r := s.Do(t, method, path, token, body)
	s.harvest(r.Method+" "+r.Path, "", r.Body)
	return r
}

// harvest records as secrets the strings found under a key that names a token, a secret, a
// recovery code or a URI (an otpauth:// one holds the TOTP secret), at any depth: a route
// added later that hands out a secret is covered by the log check without a word here.
func (s *sweepEnv) harvest(from, key string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			s.harvest(from, k, e)
		}
	case []any:
		for _, e := range v {
			s.harvest(from, key, e)
		}
	case string:
		k := strings.ToLower(key)
		if len(v) >= 8 && (strings.Contains(k, "token") || strings.Contains(k, "secret") ||
			strings.Contains(k, "recovery") || strings.HasSuffix(k, "uri")) {
			s.secret(key+" from "+from, v)
		}
	}
}

func startSweep(t *testing.T) *sweepEnv {
	t.Helper()
	dir := t.TempDir()
	gatewayLog, accessLog := filepath.Join(dir, "gateway.log"), filepath.Join(dir, "access.log")
	siteLog := filepath.Join(dir, "site-access.log")
	s := &sweepEnv{secrets: map[string]string{}}
	// Registered before the gateway starts, so it runs after Caddy has stopped and every
	// line, those of the shutdown included, is in the files.
	t.Cleanup(func() { s.checkLogs(t, gatewayLog, accessLog, siteLog) })

	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	s.receiver = rc.URL + "/hook"

	stripe := fmt.Sprintf("stripe {\n secret_key %s\n webhook_secret %s\n api_base %s\n success_url https://victim.test/billing/done\n}\n"+
		"plan team {\n rate 10/1s\n stripe_price price_team\n}\n"+
		"webhooks {\n retry_schedule 0s 1s\n timeout 2s\n allow_private 127.0.0.0/8\n}\n"+
		// The sweeps sign up and log in from one address far more often than a person would.
		"auth_rate signup 1000/1m\nauth_rate login 1000/1m\nauth_rate refresh 1000/1m\nauth_rate mfa 1000/1m",
		testenv.StripeMockKey, testenv.WebhookSecret, testenv.StripeMock(t))
	s.apiServer = &apiServer{testenv.StartSaas(t, testenv.SaasOptions{
		Global:  fmt.Sprintf("\tlog {\n\t\toutput file %s\n\t\tformat json\n\t\tlevel DEBUG\n\t}\n", gatewayLog),
		APISite: fmt.Sprintf("\tlog {\n\t\toutput file %s\n\t\tformat json\n\t}\n", accessLog),
		Options: apiPlans + "\n" + stripe,
		// A tenant site too, so tokens also cross saas_auth with its access log on.
		Sites:    []testenv.Site{{Name: "gw", Body: fmt.Sprintf("log {\n output file %s\n format json\n}\n%s", siteLog, pipeline)}},
		Upstream: testenv.EchoUpstream(t).Addr,
	})}
	for what, v := range map[string]string{
		"a user password": testenv.Password, "the admin password": testenv.AdminPassword,
		"the JWT secret": testenv.JWTSecret, "the Stripe secret key": testenv.StripeMockKey,
		"the Stripe webhook secret": testenv.WebhookSecret,
	} {
		s.secret(what, v)
	}

	s.db = s.store(t)
	s.victim = s.NewTenant(t, "victim")
	s.attacker = s.NewTenant(t, "attacker")
	s.admin = s.AdminToken(t)
	for _, f := range []*testenv.TenantFixture{s.victim, s.attacker} {
		s.secret(f.ID+" owner's access token", f.OwnerAccess)
		s.secret(f.ID+" owner's refresh token", f.OwnerRefresh)
		s.secret(f.ID+" user's access token", f.UserAccess)
		s.secret(f.ID+" user's refresh token", f.UserRefresh)
	}
	s.secret("the admin's access token", s.admin)

	s.throughSite(t)
	s.endpointID = s.newEndpoint(t)
	// member.joined of a new member is delivered to the endpoint: a delivery to attack,
	// waited for until it settles, so nothing changes the store during a sweep.
	inv := s.MustInvite(t, s.victim.OwnerAccess, "victim", "member@victim.test", "user")
	s.secret("an invitation token", inv)
	s.MustSignup(t, "member@victim.test", "victim", inv)
	deadline := time.Now().Add(15 * time.Second)
	for s.deliveryID == "" {
		r := s.Do(t, "GET", "/tenants/victim/webhook-deliveries?status=succeeded", s.victim.OwnerAccess, nil)
		mustStatus(t, r, http.StatusOK)
		if list, _ := r.Body["deliveries"].([]any); len(list) > 0 {
			s.deliveryID, _ = list[0].(map[string]any)["id"].(string)
		}
		if s.deliveryID == "" && time.Now().After(deadline) {
			t.Fatalf("no succeeded delivery for the victim after 15s: %v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// throughSite sends the fixtures' tokens through the tenant site: accepted, refused for
// another tenant's host, and a refresh token where an access token belongs.
func (s *sweepEnv) throughSite(t testing.TB) {
	t.Helper()
	gw := &testenv.Client{Base: fmt.Sprintf("http://127.0.0.1:%d", s.Ports["gw"]), HC: s.HC}
	host := func(tenant string) testenv.Option {
		return testenv.WithHost(fmt.Sprintf("%s.localhost:%d", tenant, s.Ports["gw"]))
	}
	for _, c := range []struct {
		tenant, token string
		want          int
	}{
		{"victim", s.victim.UserAccess, http.StatusOK},
		{"victim", s.victim.OwnerAccess, http.StatusOK},
		{"victim", s.attacker.OwnerAccess, http.StatusForbidden},
		{"victim", s.victim.UserRefresh, http.StatusUnauthorized},
		{"victim", "", http.StatusUnauthorized},
	} {
		mustStatus(t, gw.Do(t, "GET", "/echo", c.token, nil, host(c.tenant)), c.want)
	}
}

// newEndpoint registers a webhook endpoint of the victim's and returns its id.
func (s *sweepEnv) newEndpoint(t testing.TB) string {
	t.Helper()
	r := s.do(t, "POST", "/tenants/victim/webhook-endpoints", s.victim.OwnerAccess,
		map[string]any{"url": s.receiver, "events": []string{"member.joined"}})
	mustStatus(t, r, http.StatusCreated)
	s.secret("a webhook endpoint secret", r.Str("secret"))
	if !strings.HasPrefix(r.Str("secret"), "whsec_") || r.Str("id") == "" {
		t.Fatalf("%v: want an id and a whsec_ secret", r)
	}
	return r.Str("id")
}

// checkLogs fails the test for every secret found in a log, naming the first line that holds
// it (cut short: the test output is a log too).
func (s *sweepEnv) checkLogs(t *testing.T, paths ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Errorf("log %s: %v", p, err)
			continue
		}
		lines, found := 0, map[string]bool{}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			lines++
			line := sc.Text()
			for v, what := range s.secrets {
				if !found[v] && strings.Contains(line, v) {
					found[v] = true
					i := strings.Index(line, v)
					t.Errorf("%s logged in %s, line %d: …%s", what, filepath.Base(p), lines, line[max(0, i-120):i])
				}
			}
		}
		f.Close()
		// A log that stayed empty would show nothing.
		if lines == 0 {
			t.Errorf("no line captured in %s", p)
		}
	}
}

// dump reads every document of every collection of the gateway's database (and of those its
// tenants are spread over), as extended JSON sorted within each collection, to compare the
// store before and after an attack.
func (s *sweepEnv) dump(t testing.TB) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names, err := s.db.CollectionNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, name := range names {
		cur, err := s.db.C(name).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			out[name] = append(out[name], d.String())
		}
		slices.Sort(out[name])
	}
	return out
}

// wantSameStore reports every collection whose documents differ between two dumps.
func wantSameStore(t testing.TB, what string, before, after map[string][]string) {
	t.Helper()
	for name := range before {
		if _, ok := after[name]; !ok {
			t.Errorf("%s: collection %s disappeared", what, name)
		}
	}
	for name, docs := range after {
		if !slices.Equal(before[name], docs) {
			var added, removed []string
			for _, d := range docs {
				if !slices.Contains(before[name], d) {
					added = append(added, d)
				}
			}
			for _, d := range before[name] {
				if !slices.Contains(docs, d) {
					removed = append(removed, d)
				}
			}
			t.Errorf("%s changed collection %s:\nadded %v\nremoved %v", what, name, added, removed)
		}
	}
}
