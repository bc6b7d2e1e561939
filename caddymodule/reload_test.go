package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/saasgate/saasgate/caddymodule"
	"github.com/saasgate/saasgate/internal/testenv"
)

func activeApp(t *testing.T) *caddymodule.App {
	t.Helper()
	app, err := caddy.ActiveContext().App("saas")
	if err != nil {
		t.Fatal(err)
	}
	return app.(*caddymodule.App)
}

// A reload with a changed config keeps the embedded database and its connection: the new
// config's service runs over the very same backend, and data written before is there after.
func TestReload_KeepsTheBackendAndData(t *testing.T) {
	dataDir, port := t.TempDir(), testenv.FreePort(t)
	config := func(rate string) string {
		return fmt.Sprintf(`{
%s
	saas {
		data_dir %s
		jwt_secret 0123456789abcdef0123456789abcdef
		plan free {
			rate %s
		}
	}
}
http://127.0.0.1:%d {
	saas_api
}
`, testenv.CaddyGlobal(), dataDir, rate, port)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.StartCaddy(t, config("10/1m"))
	testenv.WaitHTTP(t, base+"/healthz")
	before := activeApp(t).Service()
	if before == nil {
		t.Fatal("the saas app has no service after start")
	}
	httpPost(t, base+"/auth/signup", `{"email":"a@reload.test","password":"password-1","tenant":"reload-co"}`, http.StatusCreated)

	testenv.ReloadCaddy(t, config("20/1m"))
	// Until the old config's servers are gone, a connection they accepted may be reset: that
	// is Caddy's reload, not ours. Wait until a fresh connection sees the new config.
	http.DefaultClient.CloseIdleConnections()
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := fresh.Get(base + "/plans")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"rate":"20/1m"`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new plan catalog is not served: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // the old servers' grace period (CaddyGlobal: 1s)
	after := activeApp(t).Service()
	if after == before {
		t.Fatal("the reload did not build a new service for the new config")
	}
	if after.Backend != before.Backend {
		t.Fatal("the reload replaced the database backend; it must be shared across configs")
	}
	httpPost(t, base+"/auth/login", `{"email":"a@reload.test","password":"password-1"}`, http.StatusOK)
}

func httpPost(t *testing.T, url, body string, want int) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return readBody(t, resp, want)
}

func readBody(t *testing.T, resp *http.Response, want int) string {
	t.Helper()
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, want, data)
	}
	return string(data)
}
