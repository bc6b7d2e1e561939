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
	c := newClient(t, fmt.Sprintf("http://127.0.0.1:%d", port))
	secretPath := filepath.Join(dataDir, "jwt_secret")

	first := testenv.StartSaasgate(t, caddyfile)
	first.WaitHTTP(t, c.base+"/healthz")
	c.waitReady(t, 20*time.Second)

	r := c.do(t, "POST", "/auth/signup", "", signupBody("keeper@durable.test", goodPassword, "durable", ""))
	mustStatus(t, r, http.StatusCreated)
	userID := r.str("user_id")
	before := pairOf(t, c.do(t, "POST", "/auth/login", "", map[string]string{"email": "keeper@durable.test", "password": goodPassword}))
	mustStatus(t, c.do(t, "GET", "/me", before.Access, nil), http.StatusOK)

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

	c.hc.CloseIdleConnections()
	if err := first.Stop(); err != nil {
		t.Errorf("first process did not shut down cleanly: %v\n%s", err, first.Output())
	}
	if _, err := c.send("GET", "/healthz", "", nil); err == nil {
		t.Fatal("the first process still answers after Stop")
	}

	second := testenv.StartSaasgate(t, caddyfile)
	second.WaitHTTP(t, c.base+"/healthz")
	c.waitReady(t, 20*time.Second)

	// The token signed before the restart still verifies: the secret was kept, not regenerated.
	me := c.do(t, "GET", "/me", before.Access, nil)
	if wantStatus(t, me, http.StatusOK) && (me.str("user_id") != userID || me.str("tenant_id") != "durable") {
		t.Errorf("GET /me after the restart = %s", me.Raw)
	}
	after := pairOf(t, c.do(t, "POST", "/auth/login", "", map[string]string{"email": "keeper@durable.test", "password": goodPassword}))
	if claims := parseWith(t, after.Access, secret); claims["sub"] != userID || claims["tid"] != "durable" {
		t.Errorf("token after the restart claims %v", claims)
	}
	// Sessions were stored too: the refresh token from before still rotates.
	pairOf(t, c.do(t, "POST", "/auth/refresh", "", map[string]string{"refresh_token": before.Refresh}))
	// And the tenant rule still holds: joining needs an invitation.
	wantProblem(t, c.do(t, "POST", "/auth/signup", "", signupBody("late@durable.test", goodPassword, "durable", "")),
		http.StatusForbidden, "invitation_required")

	again, err := os.ReadFile(secretPath)
	if err != nil || string(again) != string(secret) {
		t.Errorf("the secret file changed across the restart (err %v)", err)
	}
}
