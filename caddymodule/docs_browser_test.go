package caddymodule_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/saasgate/saasgate/control/api"
	"github.com/saasgate/saasgate/internal/testenv"
)

// docsRoutesJS lists the operations Swagger UI rendered, as "METHOD /path". data-path holds
// the path as written: the visible text has word-break hints in it.
const docsRoutesJS = `Array.from(document.querySelectorAll('.opblock-summary')).map(e =>
	e.querySelector('.opblock-summary-method').innerText.trim() + ' ' +
	e.querySelector('.opblock-summary-path').getAttribute('data-path'))`

// /docs renders the gateway's own /openapi.json in a real browser, from the page and its
// inlined assets alone: every request the page makes beyond the gateway is refused, so a CDN
// reference would leave the page blank and fail the wait.
func TestDocs_ChromiumRendersTheRoutesWithoutNetwork(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("this test needs Debian's chromium on PATH (apt-get install -y chromium; .ci/run installs it): ", err)
	}
	s := testenv.StartSaas(t, testenv.SaasOptions{})
	base := s.Base

	// Until the OpenAPI route lands, the browser is given a document built from the route table,
	// so the page is still held to showing every route.
	var fallback []byte
	if r := s.Do(t, "GET", "/openapi.json", "", nil); r.Status == http.StatusNotFound {
		fallback = routeTableDocument(t)
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
			chromedp.WindowSize(1280, 1024))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()

	var (
		mu      sync.Mutex
		offsite []string
	)
	refused := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(offsite) }
	err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		// Every request is paused here; only the gateway's own ones go on.
		if _, err := cdp.Call(ctx, tg, fetch.Enable, fetch.EnableParams{}); err != nil {
			return err
		}
		paused := cdp.Events(ctx, tg, fetch.RequestPaused)
		go func() {
			for ev, err := range paused {
				if err != nil {
					return
				}
				u := ev.Request.URL
				switch {
				case fallback != nil && strings.HasPrefix(u, base+"/openapi.json"):
					_, _ = cdp.Call(ctx, tg, fetch.FulfillRequest, fetch.FulfillRequestParams{
						RequestID: ev.RequestID, ResponseCode: 200, Body: fallback,
						ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}},
					})
				case strings.HasPrefix(u, base+"/"):
					_, _ = cdp.Call(ctx, tg, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				default:
					mu.Lock()
					offsite = append(offsite, u)
					mu.Unlock()
					_, _ = cdp.Call(ctx, tg, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: "BlockedByClient"})
				}
			}
		}()
		return nil
	}))
	if err != nil {
		t.Fatal("starting chromium: ", err)
	}

	wait, cancelWait := context.WithTimeout(ctx, 30*time.Second)
	defer cancelWait()
	if err := chromedp.Do(wait, chromedp.Navigate(base+"/docs"), chromedp.WaitVisible(chromedp.CSS(".opblock-summary-method"))); err != nil {
		txt, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
		t.Logf("page text: %.500s", txt)
		t.Fatalf("/docs rendered no operation within 30s: %v (requests refused: %v)", err, refused())
	}
	png, err := chromedp.Run(wait, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join("..", "test-artifacts", "docs.png")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))

	shown, err := chromedp.Run(wait, chromedp.Evaluate[[]string](docsRoutesJS))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"POST /auth/login", "POST /auth/signup", "GET /tenants/{id}", "GET /plans", "GET /docs"} {
		if !slices.Contains(shown, want) {
			t.Errorf("/docs does not show %s; it shows %v", want, shown)
		}
	}
	if got := refused(); len(got) > 0 {
		t.Errorf("/docs asked for something off the gateway: %v", got)
	}
}

// routeTableDocument is a minimal OpenAPI 3.1 document of every route routes.go registers.
func routeTableDocument(t *testing.T) []byte {
	t.Helper()
	paths := map[string]map[string]any{}
	for _, rt := range api.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = map[string]any{
			"responses": map[string]any{"default": map[string]any{"description": "see README"}},
		}
	}
	doc, err := json.Marshal(map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": "saasgate", "version": "test"},
		"paths":   paths,
	})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
