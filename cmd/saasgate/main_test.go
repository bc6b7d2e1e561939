package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestBinary_ListsSaasModules(t *testing.T) {
	out, err := exec.Command(testenv.SaasgateBinary(t), "list-modules").CombinedOutput()
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	for _, id := range []string{"saas", "http.handlers.saas_api", "http.handlers.reverse_proxy"} {
		if !strings.Contains("\n"+string(out), "\n"+id+"\n") {
			t.Errorf("list-modules does not list %s", id)
		}
	}
}

func TestBinary_ValidatesTheRepoCaddyfileAndRejectsABadOne(t *testing.T) {
	bin := testenv.SaasgateBinary(t)
	if out, err := exec.Command(bin, "validate", "--config", "../../Caddyfile").CombinedOutput(); err != nil {
		t.Fatalf("validate the repo Caddyfile: %v\n%s", err, out)
	}
	bad := t.TempDir() + "/Caddyfile"
	if err := os.WriteFile(bad, []byte("{\n\tsaas {\n\t\tplan free {\n\t\t\trate 10/xyz\n\t\t}\n\t}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "validate", "--config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "10/xyz") || !strings.Contains(string(out), "Caddyfile:4") {
		t.Fatalf("validate of `rate 10/xyz` = %v, output must name the value and line 4:\n%s", err, out)
	}
}

// The repo Caddyfile, as `make run` serves it (on free ports instead of 8080 and 9000):
// signup works on the embedded defaults and a tenant's subdomain reaches the demo upstream
// with a token, identity headers set by the gateway.
func TestRepoCaddyfile_ServesSignupAndTheDemoUpstream(t *testing.T) {
	raw, err := os.ReadFile("../../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	api, upstream := testenv.FreePort(t), testenv.FreePort(t)
	cf := strings.NewReplacer(":8080", fmt.Sprintf(":%d", api), ":9000", fmt.Sprintf(":%d", upstream)).Replace(string(raw))
	cf = strings.Replace(cf, "{\n", "{\n"+testenv.CaddyGlobal()+"\n", 1)
	p := testenv.StartSaasgate(t, cf)
	base := fmt.Sprintf("http://127.0.0.1:%d", api)
	p.WaitHTTP(t, base)

	req, _ := http.NewRequest("POST", base+"/auth/signup",
		strings.NewReader(`{"email":"alice@acme.test","password":"correct horse","tenant":"Acme Corp"}`))
	req.Host = fmt.Sprintf("api.localhost:%d", api)
	body := do(t, req, http.StatusCreated)
	if body["tenant_id"] != "acme-corp" || body["message"] != "User registered successfully." {
		t.Fatalf("signup answered %v", body)
	}

	req, _ = http.NewRequest("POST", base+"/auth/login", strings.NewReader(`{"email":"alice@acme.test","password":"correct horse"}`))
	req.Host = fmt.Sprintf("api.localhost:%d", api)
	token, _ := do(t, req, http.StatusOK)["access_token"].(string)

	req, _ = http.NewRequest("GET", base+"/hello", nil)
	req.Host = fmt.Sprintf("acme-corp.localhost:%d", api)
	do(t, req, http.StatusUnauthorized)

	req.Header.Set("Authorization", "Bearer "+token)
	body = do(t, req, http.StatusOK)
	if body["message"] != "Hello from the demo upstream" || body["tenant"] != "acme-corp" || body["user"] == "" {
		t.Fatalf("tenant site answered %v", body)
	}
}

func do(t *testing.T, req *http.Request, want int) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", req.Method, req.URL, resp.StatusCode, want, data)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", req.Method, req.URL, data, err)
	}
	return out
}
