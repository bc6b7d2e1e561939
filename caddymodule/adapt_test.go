package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// adaptTestEnv is the environment the testdata files refer to with {$VAR}, which the
// Caddyfile lexer expands.
var adaptTestEnv = map[string]string{
	"SAASGATE_ADAPT_TEST_REDIS_URL": "redis://cache.internal:6379/2",
}

// adaptTestSeparator splits a .caddyfiletest file: the Caddyfile, then the expected JSON, or a
// line "error: <text the adapt error must contain>".
const adaptTestSeparator = "\n----------\n"

// TestAdapt_Caddyfiles adapts every testdata/*.caddyfiletest file and compares the result.
func TestAdapt_Caddyfiles(t *testing.T) {
	for k, v := range adaptTestEnv {
		t.Setenv(k, v)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.caddyfiletest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.caddyfiletest file found")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(data), "\r\n", "\n")
			caddyfileText, expected, ok := strings.Cut(text, adaptTestSeparator)
			if !ok {
				t.Fatalf("%s has no %q line between the Caddyfile and the expected result", file, strings.TrimSpace(adaptTestSeparator))
			}
			caddyfileText = strings.TrimSpace(caddyfileText) + "\n"
			expected = strings.TrimSpace(expected)

			if wantErr, isErr := strings.CutPrefix(expected, "error:"); isErr {
				wantErr = strings.TrimSpace(wantErr)
				if wantErr == "" {
					t.Fatalf("%s: the error: line says nothing to look for", file)
				}
				_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfileText), nil)
				if err == nil {
					t.Fatalf("adapting succeeded, want an error containing %q", wantErr)
				}
				if !strings.Contains(err.Error(), wantErr) {
					t.Fatalf("adapt error:\n%v\nwant it to contain:\n%s", err, wantErr)
				}
				return
			}

			if !strings.HasPrefix(expected, "{") {
				t.Fatalf("%s: the expected part is neither JSON nor an error: line", file)
			}
			if !caddytest.CompareAdapt(t, file, caddyfileText, "caddyfile", expected) {
				t.Errorf("adapting %s does not give the expected JSON (diff above)", file)
			}
		})
	}
}

// TestAdapt_RepoCaddyfileKeepsSecretsOutOfTheJSON adapts the repository's Caddyfile with every
// secret set in the environment: each secret option must be a runtime {env.X} placeholder, so
// that no value reaches the JSON config that Caddy's admin API serves.
func TestAdapt_RepoCaddyfileKeepsSecretsOutOfTheJSON(t *testing.T) {
	secrets := map[string]string{ // option → environment variable
		"jwt_secret":     "SAASGATE_JWT_SECRET",
		"admin_password": "SAASGATE_ADMIN_PASSWORD",
		"secret_key":     "STRIPE_SECRET_KEY",
		"webhook_secret": "STRIPE_WEBHOOK_SECRET",
	}
	for _, env := range secrets {
		t.Setenv(env, "adapt-test-secret-of-"+env)
	}
	data, err := os.ReadFile(filepath.Join("..", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for option, env := range secrets {
		if strings.Contains(string(out), "adapt-test-secret-of-"+env) {
			t.Errorf("the value of %s (%s) is in the adapted JSON", env, option)
		}
		if want := `"` + option + `":"{env.` + env + `}"`; !strings.Contains(string(out), want) {
			t.Errorf("the adapted JSON has no %s, want the secret read at load from the environment", want)
		}
	}
}
