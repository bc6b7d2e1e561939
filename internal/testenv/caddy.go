package testenv

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // registers the "caddyfile" adapter
	"github.com/saasgate/saasgate/internal/proc"
)

// CaddyGlobal returns global options for test Caddyfiles, one per line and tab-indented, to
// splice into the Caddyfile's global block:
//
//	"{\n" + testenv.CaddyGlobal() + "\tsaas { ... }\n}\n" + sites
//
// They turn off what a test must not touch: the admin endpoint (a fixed port, shared by every
// process on the machine), config autosave, automatic HTTPS and the system trust store. A
// short grace period keeps stopping and reloading quick.
func CaddyGlobal() string {
	return "\tadmin off\n" +
		"\tpersist_config off\n" +
		"\tauto_https off\n" +
		"\tskip_install_trust\n" +
		"\tgrace_period 1s\n"
}

var (
	caddyMu    sync.Mutex
	caddyOwner string // name of the test whose Caddy runs; "" when none does
)

// StartCaddy adapts caddyfile and runs it with Caddy inside the test process; Caddy is stopped
// when the test ends. Its listeners are bound when StartCaddy returns. The Caddyfile should put
// CaddyGlobal() in its global block. The modules it uses must be linked into the test binary:
// import _ "github.com/caddyserver/caddy/v2/modules/standard" (and saasgate's own modules).
//
// Caddy's running config is process-global, so one Caddy runs per test process at a time: a
// second StartCaddy before the first test ends fails, and tests using it must not call
// t.Parallel. Tests that need two gateways at once use StartSaasgate.
func StartCaddy(t testing.TB, caddyfile string) {
	t.Helper()
	caddyMu.Lock()
	if caddyOwner != "" {
		owner := caddyOwner
		caddyMu.Unlock()
		t.Fatalf("testenv: Caddy is already running for %s; one Caddy runs per test process at "+
			"a time, so tests that use StartCaddy must not call t.Parallel", owner)
	}
	caddyOwner = t.Name()
	caddyMu.Unlock()
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("testenv: stopping Caddy: %v", err)
		}
		caddyMu.Lock()
		caddyOwner = ""
		caddyMu.Unlock()
	})
	loadCaddy(t, caddyfile)
}

// ReloadCaddy replaces the running config of the Caddy started by StartCaddy, as `saasgate
// reload` does.
func ReloadCaddy(t testing.TB, caddyfile string) {
	t.Helper()
	caddyMu.Lock()
	running := caddyOwner != ""
	caddyMu.Unlock()
	if !running {
		t.Fatalf("testenv: ReloadCaddy needs a Caddy started by StartCaddy")
	}
	loadCaddy(t, caddyfile)
}

func loadCaddy(t testing.TB, caddyfile string) {
	t.Helper()
	cfg := AdaptCaddyfile(t, caddyfile)
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("testenv: loading the config into Caddy: %v\n%s", err, numberLines(caddyfile))
	}
}

// AdaptCaddyfile converts caddyfile to Caddy's JSON config, failing the test on an error.
// Adapter warnings are logged.
func AdaptCaddyfile(t testing.TB, caddyfile string) []byte {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatalf("testenv: the caddyfile config adapter is not registered")
	}
	cfg, warnings, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	for _, w := range warnings {
		t.Logf("testenv: Caddyfile adapter: %s", w.String())
	}
	if err != nil {
		t.Fatalf("testenv: adapting the Caddyfile: %v\n%s", err, numberLines(caddyfile))
	}
	return cfg
}

// numberLines prefixes each line with its number, to match adapter errors to the text.
func numberLines(s string) string {
	var b strings.Builder
	for i, line := range strings.Split(s, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}

// WaitHTTP polls url until the server answers with any HTTP response, for at most 5 s.
func WaitHTTP(t testing.TB, url string) {
	t.Helper()
	if err := proc.WaitHTTP(url, 5*time.Second, nil); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
