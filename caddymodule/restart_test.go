package caddymodule_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
)

// With neither mongo_uri nor jwt_secret, the gateway keeps everything under data_dir: the
// embedded FerretDB's files and a signing secret generated on first start. A restarted
// process must find the accounts, the sessions and the secret it had.
func TestRestart_EmbeddedDataAndGeneratedSecretSurvive(t *testing.T) {
	dataDir := t.TempDir()
	port := testenv.FreePort(t)
	caddyfile := fmt.Sprintf(`{
%s	saas {
		data_dir %s
	}
}

http://127.0.0.1:%d {
	saas_api
}
`, testenv.CaddyGlobal(), dataDir, port)
	c := testenv.NewClient(t, fmt.Sprintf("http://127.0.0.1:%d", port))
	secretPath := filepath.Join(dataDir, "jwt_secret")

	first := testenv.StartSaasgate(t, caddyfile)
	first.WaitHTTP(t, c.Base+"/healthz")
	c.WaitReady(t, 20*time.Second)

	r := c.Do(t, "POST", "/auth/signup", "", testenv.SignupBody("keeper@durable.test", testenv.Password, "durable", ""))
	mustStatus(t, r, http.StatusCreated)
	userID := r.Str("user_id")
	before := testenv.PairOf(t, c.Do(t, "POST", "/auth/login", "", map[string]string{"email": "keeper@durable.test", "password": testenv.Password}))
	mustStatus(t, c.Do(t, "GET", "/me", before.Access, nil), http.StatusOK)

	info, err := os.Stat(secretPath)
	if err != nil {
		t.Fatalf("no generated secret: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %#o, want 0600", secretPath, perm)
	}
	secret, err := os.ReadFile(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 32 {
		t.Errorf("generated secret is %d bytes, want at least 32", len(secret))
	}

	c.HC.CloseIdleConnections()
	if err := first.Stop(); err != nil {
		t.Errorf("first process did not shut down cleanly: %v\n%s", err, first.Output())
	}
	if _, err := c.Send("GET", "/healthz", "", nil); err == nil {
		t.Fatal("the first process still answers after Stop")
	}

	second := testenv.StartSaasgate(t, caddyfile)
	second.WaitHTTP(t, c.Base+"/healthz")
	c.WaitReady(t, 20*time.Second)

	// The token signed before the restart still verifies: the secret was kept, not regenerated.
	me := c.Do(t, "GET", "/me", before.Access, nil)
	if wantStatus(t, me, http.StatusOK) && (me.Str("user_id") != userID || me.Str("tenant_id") != "durable") {
		t.Errorf("GET /me after the restart = %s", me.Raw)
	}
	after := testenv.PairOf(t, c.Do(t, "POST", "/auth/login", "", map[string]string{"email": "keeper@durable.test", "password": testenv.Password}))
	if claims := parseWith(t, after.Access, secret); claims["sub"] != userID || claims["tid"] != "durable" {
		t.Errorf("token after the restart claims %v", claims)
	}
	// Sessions were stored too: the refresh token from before still rotates.
	testenv.PairOf(t, c.Do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": before.Refresh}))
	// And the tenant rule still holds: joining needs an invitation.
	wantProblem(t, c.Do(t, "POST", "/auth/signup", "", testenv.SignupBody("late@durable.test", testenv.Password, "durable", "")),
		http.StatusForbidden, "invitation_required")

	again, err := os.ReadFile(secretPath)
	if err != nil || string(again) != string(secret) {
		t.Errorf("the secret file changed across the restart (err %v)", err)
	}
}
