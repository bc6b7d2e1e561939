package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// saasBlock is the Caddyfile FuzzSaasOption adapts: body inside the `saas` global option.
func saasBlock(body string) string {
	return "{\n\tsaas {\n" + body + "\n\t}\n}\n"
}

// saasBlockSeeds returns the body of every `saas` block in testdata/*.caddyfiletest: what the
// adapt tests accept and refuse, one line at a time, is where the fuzzer starts.
func saasBlockSeeds(f *testing.F) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "*.caddyfiletest"))
	if err != nil {
		f.Fatal(err)
	}
	var out []string
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		text, _, _ := strings.Cut(strings.ReplaceAll(string(data), "\r\n", "\n"), adaptTestSeparator)
		_, rest, ok := strings.Cut(text, "\tsaas {\n")
		if !ok {
			continue
		}
		if body, _, ok := strings.Cut(rest, "\n\t}\n"); ok {
			out = append(out, body)
		}
	}
	if len(out) < 10 {
		f.Fatalf("found %d saas blocks in testdata; the seed extraction is broken", len(out))
	}
	return out
}

// FuzzSaasOption adapts arbitrary `saas` option blocks through httpcaddyfile, as `saasgate
// adapt` and `run --config` do. Whatever the block, the parser does not panic, and the app
// config of a block it accepts decodes strictly and passes App.Validate: the option tables of
// saasoption.go serve both, so the Caddyfile never accepts what the JSON config refuses.
func FuzzSaasOption(f *testing.F) {
	for k, v := range adaptTestEnv {
		f.Setenv(k, v)
	}
	for _, s := range saasBlockSeeds(f) {
		f.Add(s)
	}
	for _, s := range []string{
		"", "{", "}", "\"", "`", "plan", "plan free {\n}\nplan free {\n}", "jwt_secret {env.X}",
		"stripe {\n\tstripe {\n\t}\n}", "auth_rate login 0/1s", "usage_alerts 100 50",
		"webhooks {\n\tretry_schedule 0s 0s\n}", "grace_period -1s", "access_ttl 9999999999999h",
		"default_plan pro\nplan pro {\n\trate 1/1s\n}", "} \n localhost {\n\tsaas_api\n}\n{",
	} {
		f.Add(s)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	f.Fuzz(func(t *testing.T, body string) {
		// import reads files and snippets; the fuzzer is kept to the option parser.
		if strings.Contains(body, "import") {
			return
		}
		out, _, err := adapter.Adapt([]byte(saasBlock(body)), nil)
		if err != nil {
			return
		}
		var cfg struct {
			Apps map[string]json.RawMessage `json:"apps"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatalf("adapted config is not JSON: %v\n%s", err, out)
		}
		raw, ok := cfg.Apps["saas"]
		if !ok {
			return
		}
		var app App
		if err := caddy.StrictUnmarshalJSON(raw, &app); err != nil {
			t.Fatalf("the Caddyfile block\n%s\nadapts to a saas app the JSON decoder refuses: %v\n%s", body, err, raw)
		}
		if err := app.Validate(); err != nil {
			t.Fatalf("the Caddyfile block\n%s\nadapts to a saas app Validate refuses: %v\n%s", body, err, raw)
		}
	})
}
