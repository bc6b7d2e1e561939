package caddymodule

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control"
)

// TestOptions_DocumentedEverywhere: every row of the option tables has its line in the syntax
// comment of parseGlobalOption and in the README's Caddyfile reference, inside the right block,
// so an option added to a table cannot go undocumented (and a documented one cannot lose its
// row unnoticed).
func TestOptions_DocumentedEverywhere(t *testing.T) {
	app := &App{Stripe: new(StripeConfig), Webhooks: new(WebhooksConfig)}
	tables := map[string][]option{"saas": app.options(), "stripe": app.Stripe.options(), "webhooks": app.Webhooks.options(),
		"plan": new(PlanConfig).options()}
	// The options parsed by hand (repeated, or holding a block) have no row but are documented.
	handParsed := map[string][]string{"saas": {"auth_rate", "stripe", "webhooks", "plan"}}

	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "saasoption.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var syntax string
	for _, decl := range f.Decls {
		if fn, ok := decl.(*ast.FuncDecl); ok && fn.Name.Name == "parseGlobalOption" {
			syntax = fn.Doc.Text()
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]map[string]bool{
		"the syntax comment of parseGlobalOption": documentedOptions(syntax),
		"README.md": documentedOptions(string(readme)),
	}
	for where, documented := range docs {
		for block, rows := range tables {
			names := handParsed[block]
			for _, o := range rows {
				names = append(names, o.optionName())
			}
			for _, name := range names {
				if !documented[block][name] {
					t.Errorf("%s: option %q of the %s block is not documented", where, name, block)
				}
			}
			for name := range documented[block] {
				if findOption(rows, name) == nil && !contains(handParsed[block], name) {
					t.Errorf("%s: documents %q in the %s block, which has no such option", where, name, block)
				}
			}
		}
	}
}

// documentedOptions reads the first `saas { ... }` block of text: the first word of each line,
// by the block it is in (saas, stripe, webhooks or plan).
func documentedOptions(text string) map[string]map[string]bool {
	out := make(map[string]map[string]bool)
	var path []string
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(path) == 0 {
			if fields[0] == "saas" && strings.HasSuffix(strings.TrimSpace(line), "{") {
				path = append(path, "saas")
			}
			continue
		}
		if fields[0] == "}" {
			path = path[:len(path)-1]
			if len(path) == 0 {
				break
			}
			continue
		}
		block := path[len(path)-1]
		if out[block] == nil {
			out[block] = make(map[string]bool)
		}
		out[block][fields[0]] = true
		if code, _, _ := strings.Cut(line, "#"); strings.HasSuffix(strings.TrimSpace(code), "{") {
			path = append(path, fields[0])
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestOptions_ProvisionResolvesPlaceholdersAndFillsDefaults: every table takes part in
// Provision: runtime placeholders resolve in the app, stripe and plan options (unknown ones,
// such as Stripe's, stay), and each option left empty gets its default.
func TestOptions_ProvisionResolvesPlaceholdersAndFillsDefaults(t *testing.T) {
	t.Setenv("SAAS_OPTION_TEST", "from-env")
	a := &App{
		BaseDomain: "{env.SAAS_OPTION_TEST}.example.com",
		Stripe:     &StripeConfig{SecretKey: "sk_{env.SAAS_OPTION_TEST}", SuccessURL: "https://x.test/ok?s={CHECKOUT_SESSION_ID}"},
		Plans:      []PlanConfig{{ID: "pro", Name: "{env.SAAS_OPTION_TEST}", Rate: "10/1s"}},
	}
	a.provisionOptions()
	want := map[string]string{
		"base_domain": "from-env.example.com", "stripe secret_key": "sk_from-env",
		"stripe success_url": "https://x.test/ok?s={CHECKOUT_SESSION_ID}", "plan name": "from-env",
		"database": control.DefaultDatabase, "data_dir": control.DefaultDataDir, "jwt_issuer": control.DefaultIssuer,
		"default_plan": control.DefaultPlan, "on_limiter_error": control.DefaultOnLimiterError,
		"redis_prefix": control.DefaultKeyPrefix, "mongo_uri": "",
	}
	got := map[string]string{
		"base_domain": a.BaseDomain, "stripe secret_key": a.Stripe.SecretKey, "stripe success_url": a.Stripe.SuccessURL,
		"plan name": a.Plans[0].Name, "database": a.Database, "data_dir": a.DataDir, "jwt_issuer": a.JWTIssuer,
		"default_plan": a.DefaultPlan, "on_limiter_error": a.OnLimiterError, "redis_prefix": a.RedisPrefix, "mongo_uri": a.MongoURI,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	durations := map[string][2]time.Duration{
		"access_ttl":    {time.Duration(a.AccessTTL), control.DefaultAccessTTL},
		"grace_period":  {time.Duration(a.GracePeriod), control.DefaultGracePeriod},
		"redis_timeout": {time.Duration(a.RedisTimeout), control.DefaultRedisTimeout},
	}
	for name, d := range durations {
		if d[0] != d[1] {
			t.Errorf("%s = %s, want the default %s", name, d[0], d[1])
		}
	}
}
