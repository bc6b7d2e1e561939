package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
)

// The Caddyfile side of the same checks is covered by testdata/*.caddyfiletest; these tests
// feed validateConfig the JSON config that JSON users write.

const validJWTSecret = "0123456789abcdef0123456789abcdef"

func TestValidateConfig_AcceptsValidJSON(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"EmptyConfigMeansDefaults", `{}`},
		{"EveryOptionSet", `{
			"mongo_uri": "mongodb+srv://gate:pw@cluster0.example.net/?retryWrites=true",
			"database": "gate_prod",
			"data_dir": "/var/lib/saasgate",
			"redis_url": "unix:///run/redis.sock",
			"jwt_secret": "` + validJWTSecret + `",
			"jwt_issuer": "saasgate",
			"access_ttl": "15m",
			"base_domain": "app.example.com",
			"admin_email": "admin@example.com",
			"admin_password": "correct horse battery staple",
			"default_plan": "pro",
			"grace_period": "7d",
			"on_limiter_error": "allow",
			"stripe": {
				"secret_key": "rk_live_abc",
				"webhook_secret": "whsec_abc",
				"api_base": "http://localhost:12111",
				"success_url": "https://app.example.com/ok",
				"cancel_url": "https://app.example.com/cancel"
			},
			"plans": [
				{"id": "free", "rate": "60/1m"},
				{"id": "pro", "name": "Pro", "rate": "10/s", "burst": 20, "quota": "100000/month", "stripe_price": "price_123"}
			]
		}`},
		{"DefaultPlanFreeWithoutPlansIsTheBuiltInPlan", `{"default_plan": "free"}`},
		{"UnsetDefaultPlanFindsADefinedFreePlan", `{"plans": [{"id": "free", "rate": "1/s"}, {"id": "pro", "rate": "10/s"}]}`},
		{"RuntimePlaceholdersAreNotChecked", `{
			"mongo_uri": "{env.MONGO_URI}",
			"redis_url": "{env.REDIS_URL}",
			"jwt_secret": "{env.JWT_SECRET}",
			"base_domain": "{env.BASE_DOMAIN}",
			"admin_email": "{env.ADMIN_EMAIL}",
			"admin_password": "{env.ADMIN_PASSWORD}",
			"default_plan": "{env.DEFAULT_PLAN}",
			"on_limiter_error": "{env.ON_LIMITER_ERROR}",
			"stripe": {"secret_key": "{env.STRIPE_KEY}", "success_url": "https://x.example/ok?s={CHECKOUT_SESSION_ID}"},
			"plans": [{"id": "pro", "rate": "{env.PRO_RATE}", "quota": "{env.PRO_QUOTA}"}]
		}`},
		{"RedisAndRedissURLs", `{"redis_url": "rediss://user:pw@cache.internal:6380/3?dial_timeout=3s"}`},
		{"LocalhostAdminEmail", `{"admin_email": "root@localhost", "admin_password": "password1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := unmarshalApp(t, tt.json)
			if err := validateConfig(app); err != nil {
				t.Fatalf("validateConfig: %v", err)
			}
			if err := app.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateConfig_RejectsInvalidJSON(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string
	}{
		{"MongoURIWithOtherScheme", `{"mongo_uri": "postgres://db/gate"}`, "mongo_uri: must start with mongodb:// or mongodb+srv://"},
		{"MongoURIWithoutHost", `{"mongo_uri": "mongodb:///gate"}`, "mongo_uri: names no host"},
		{"DatabaseNameWithDot", `{"database": "gate.prod"}`, `database: "gate.prod" is not a MongoDB database name`},
		{"RedisURLWithOtherScheme", `{"redis_url": "tcp://cache:6379"}`, "redis_url: must start with redis://, rediss:// or unix://"},
		{"RedisURLWithUnknownOption", `{"redis_url": "redis://cache:6379?colour=blue"}`, "redis_url: redis: unexpected option: colour"},
		{"ShortJWTSecret", `{"jwt_secret": "short"}`, "jwt_secret: is 5 bytes, at least 32 are required"},
		{"NegativeAccessTTL", `{"access_ttl": "-1h"}`, "access_ttl: -1h0m0s is not a positive duration"},
		{"NegativeGracePeriod", `{"grace_period": -1}`, "grace_period: -1ns is not a positive duration"},
		{"BaseDomainWithScheme", `{"base_domain": "https://example.com"}`, `base_domain: "https://example.com" is not a lower-case host name`},
		{"BaseDomainWithPort", `{"base_domain": "example.com:8080"}`, `base_domain: "example.com:8080" is not a lower-case host name`},
		{"BaseDomainInUpperCase", `{"base_domain": "Example.com"}`, `base_domain: "Example.com" is not a lower-case host name`},
		{"BaseDomainIP", `{"base_domain": "::1"}`, `base_domain: "::1" is an IP address`},
		{"AdminEmailWithoutPassword", `{"admin_email": "admin@example.com"}`, "admin_email is set without admin_password"},
		{"AdminPasswordWithoutEmail", `{"admin_password": "password1"}`, "admin_password is set without admin_email"},
		{"AdminEmailNotAnAddress", `{"admin_email": "Admin <admin@example.com>", "admin_password": "password1"}`, `admin_email: "Admin <admin@example.com>": Email must be a valid address`},
		{"AdminPasswordTooShort", `{"admin_email": "admin@example.com", "admin_password": "pw"}`, "admin_password: Password must be 8 to 128 characters"},
		{"OnLimiterErrorNotAChoice", `{"on_limiter_error": "retry"}`, `on_limiter_error: "retry" is not one of allow, deny, local`},
		{"AuthRateUnknownRoute", `{"auth_rates": [{"route": "register", "rate": "5/1m"}]}`, `auth_rates[0]: auth_rate: unknown route "register"`},
		{"AuthRateTwice", `{"auth_rates": [{"route": "login", "rate": "5/1m"}, {"route": "login", "rate": "9/1m"}]}`, "auth_rates[1]: auth_rate login: given twice"},
		{"AuthRateWithoutRate", `{"auth_rates": [{"route": "signup"}]}`, "auth_rates[0]: auth_rate signup: rate"},
		{"AuthRateNegativeBurst", `{"auth_rates": [{"route": "signup", "rate": "5/1h", "burst": -1}]}`, "auth_rates[0]: auth_rate signup: burst: -1 is not a positive integer"},
		{"StripePublishableKey", `{"stripe": {"secret_key": "pk_test_1"}}`, "stripe: secret_key: is a publishable key"},
		{"StripeKeyWithoutPrefix", `{"stripe": {"secret_key": "abc"}}`, "stripe: secret_key: must be a secret key (sk_...) or a restricted key (rk_...)"},
		{"StripeWebhookSecretWithoutPrefix", `{"stripe": {"webhook_secret": "abc"}}`, "stripe: webhook_secret: must be a webhook signing secret (whsec_...)"},
		{"StripeAPIBaseWithoutScheme", `{"stripe": {"api_base": "localhost:12111"}}`, `stripe: api_base: "localhost:12111" is not an http:// or https:// URL`},
		{"StripeSuccessURLRelative", `{"stripe": {"success_url": "/ok"}}`, `stripe: success_url: "/ok" is not an http:// or https:// URL`},
		{"StripeSecretKeyWithoutSuccessURL", `{"stripe": {"secret_key": "sk_test_1"}}`, "stripe: success_url is required with secret_key"},
		{"StripeRetryAfterDefaultGrace", `{"stripe": {"retry_schedule": [86400000000000, 604800000000000]}}`, "stripe: retry_schedule: 168h0m0s is not within grace_period (168h0m0s)"},
		{"StripeRetriesNotIncreasing", `{"grace_period": "240h", "stripe": {"retry_schedule": [172800000000000, 86400000000000]}}`, "stripe: retry_schedule: 24h0m0s must be positive and after the retry before it"},
		{"StripeCancelURLNotHTTP", `{"stripe": {"cancel_url": "ftp://example.com/"}}`, `stripe: cancel_url: "ftp://example.com/" is not an http:// or https:// URL`},
		{"PlanIDInvalid", `{"plans": [{"id": "Pro", "rate": "1/s"}]}`, `plans[0]: plan: "Pro" is not a plan id`},
		{"PlanIDMissing", `{"plans": [{"rate": "1/s"}]}`, `plans[0]: plan: "" is not a plan id`},
		{"PlanIDRuntimePlaceholder", `{"plans": [{"id": "{env.PLAN}", "rate": "1/s"}]}`, `plans[0]: plan: "{env.PLAN}" is not a plan id`},
		{"PlanDefinedTwice", `{"default_plan": "pro", "plans": [{"id": "pro", "rate": "1/s"}, {"id": "pro", "rate": "2/s"}]}`, `plans[1]: plan "pro" is defined twice`},
		{"PlanWithoutRate", `{"plans": [{"id": "free"}]}`, `plans[0]: plan "free": rate is required`},
		{"PlanRateWithUnknownUnit", `{"plans": [{"id": "free", "rate": "10/xyz"}]}`, `plans[0]: plan "free": rate "10/xyz": "1xyz" is not a positive duration`},
		{"PlanQuotaNotMonthly", `{"plans": [{"id": "free", "rate": "1/s", "quota": "10/day"}]}`, `plans[0]: plan "free": quota "10/day": want <n>/month`},
		{"PlanNegativeBurst", `{"plans": [{"id": "free", "rate": "1/s", "burst": -1}]}`, `plans[0]: plan "free": burst: -1 is not a positive integer`},
		{"DefaultPlanNotDefined", `{"default_plan": "gold", "plans": [{"id": "free", "rate": "1/s"}]}`, `default_plan "gold" is not a defined plan (defined: free)`},
		{"DefaultPlanOtherThanFreeWithoutPlans", `{"default_plan": "pro"}`, `default_plan "pro" is not a defined plan (defined: free)`},
		{"DefaultPlanUnsetWithoutAFreePlan", `{"plans": [{"id": "basic", "rate": "1/s"}, {"id": "pro", "rate": "2/s"}]}`, `no plan "free" is defined: set default_plan to one of basic, pro`},
		{"DefaultPlanNotAPlanID", `{"default_plan": "Gold"}`, `default_plan: "Gold" is not a plan id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateConfig(unmarshalApp(t, tt.json))
			if err == nil {
				t.Fatalf("validateConfig accepted %s, want an error containing %q", tt.json, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validateConfig error:\n%v\nwant it to contain:\n%s", err, tt.wantErr)
			}
		})
	}
}

func TestValidateConfig_ErrorsDoNotRepeatSecrets(t *testing.T) {
	const secret = "hunter2hunter2"
	tests := []struct {
		name string
		json string
	}{
		{"MongoURIPassword", `{"mongo_uri": "postgres://gate:` + secret + `@db/gate"}`},
		{"RedisURLPassword", `{"redis_url": "http://:` + secret + `@cache:6379"}`},
		{"RedisURLThatDoesNotParse", `{"redis_url": "redis://:` + secret + `@cache:port"}`},
		{"JWTSecret", `{"jwt_secret": "` + secret + `"}`},
		{"AdminPassword", `{"admin_email": "admin@example.com", "admin_password": "` + secret[:5] + `"}`},
		{"StripeSecretKey", `{"stripe": {"secret_key": "pk_` + secret + `"}}`},
		{"StripeWebhookSecret", `{"stripe": {"webhook_secret": "` + secret + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateConfig(unmarshalApp(t, tt.json))
			if err == nil {
				t.Fatalf("validateConfig accepted %s", tt.json)
			}
			if strings.Contains(err.Error(), secret[:5]) {
				t.Fatalf("error repeats the secret: %v", err)
			}
		})
	}
}

func unmarshalApp(t *testing.T, s string) *App {
	t.Helper()
	app := new(App)
	if err := json.Unmarshal([]byte(s), app); err != nil {
		t.Fatalf("unmarshal %s: %v", s, err)
	}
	return app
}
