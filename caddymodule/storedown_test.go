package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// With the tenant store down, tenants already cached keep being served from memory, and so is
// the 404 of an id the cache (holding every tenant) does not know. A tenant announced by
// another replica but not read yet fails fast with 503 tenant_lookup_failed (not a hang, not a
// 404 that would make a client give up), and /readyz says the store is unavailable.
func TestStoreDown_CachedTenantsServedUncachedFailFast(t *testing.T) {
	db, err := store.StartEmbedded(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			db.Stop()
		}
	})
	up := testenv.EchoUpstream(t)
	prefix := testenv.KeyPrefix(t)
	s := testenv.StartSaas(t, testenv.SaasOptions{
		MongoURI: db.URI(), Database: "storedown",
		Redis: true, RedisPrefix: prefix,
		Sites:    []testenv.Site{{Name: "gw", Body: "saas_tenant\nsaas_auth\nsaas_rate_limit\nreverse_proxy UPSTREAM"}},
		Upstream: up.Addr,
	})
	gwPort := s.Ports["gw"]
	// Creating acme announces it: its bare id on the tenants channel (for replicas of the
	// previous version), then its state on tenants:state. This replica, which cached acme when
	// it made it, drops the entry when the bare id comes back and takes it again from the state
	// behind it; a lookup in between would read the store. Let both pass before the store
	// stops: the test's own subscription sees the bare id, then a message of its own published
	// behind it.
	ctx := context.Background()
	rc := testenv.RedisClient(t)
	sub := rc.Subscribe(ctx, prefix+"tenants")
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	acme := s.NewTenant(t, "acme")
	awaitMessage := func(payload string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for {
			m, err := sub.ReceiveMessage(ctx)
			if err != nil {
				t.Fatalf("waiting for the announcement %q: %v", payload, err)
			}
			if m.Payload == payload {
				return
			}
		}
	}
	awaitMessage("acme")
	if err := rc.Publish(ctx, prefix+"tenants", "storedown-marker").Err(); err != nil {
		t.Fatal(err)
	}
	awaitMessage("storedown-marker")
	gw := testenv.NewClient(t, fmt.Sprintf("http://127.0.0.1:%d", gwPort))
	get := func(tenant, token string) testenv.Response {
		return gw.Do(t, "GET", "/echo", token, nil, testenv.WithHost(fmt.Sprintf("%s.localhost:%d", tenant, gwPort)))
	}
	wantStatus(t, get("acme", acme.UserAccess), http.StatusOK) // acme is now cached

	db.Stop()
	stopped = true

	wantStatus(t, get("acme", acme.UserAccess), http.StatusOK)
	wantProblem(t, get("initech", acme.UserAccess), http.StatusNotFound, "tenant_not_found")

	// initech is announced as created elsewhere: its next lookup needs the store.
	if err := rc.Publish(ctx, prefix+"tenants", "initech").Err(); err != nil {
		t.Fatal(err)
	}
	var r testenv.Response
	for deadline := time.Now().Add(5 * time.Second); ; {
		start := time.Now()
		r = get("initech", acme.UserAccess)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("a miss with the store down took %v; it must fail within the load timeout", took)
		}
		if r.Status != http.StatusNotFound || time.Now().After(deadline) {
			break // the announcement landed (or never will)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantProblem(t, r, http.StatusServiceUnavailable, "tenant_lookup_failed")
	ready := s.Do(t, "GET", "/readyz", "", nil)
	if ready.Status != http.StatusServiceUnavailable || ready.Body["checks"].(map[string]any)["mongo"] != "unavailable" {
		t.Errorf("/readyz with the store down = %s", ready)
	}
}
