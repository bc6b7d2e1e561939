package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// /readyz follows the store: 200 while it answers, 503 (mongo unavailable) within about
// mongo_server_selection_timeout once it stops, and 200 again within a bound once it is back
// at the same address, with writes working again, without a restart or reload of the gateway.
func TestReadyz_FollowsTheStoreDownAndBack(t *testing.T) {
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePorts(t, 1)[0])
	db, err := store.StartEmbeddedOn(dir, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Stop() }) // the db running when the test ends, whichever it is
	s := testenv.StartSaas(t, testenv.SaasOptions{
		MongoURI: db.URI(), Database: "readyz",
		Options: "mongo_connect_timeout 500ms\n\t\tmongo_server_selection_timeout 1s",
	})
	readyz := func() testenv.Response { return s.Do(t, "GET", "/readyz", "", nil) }
	awaitReadyz := func(status int, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			r := readyz()
			if r.Status == status {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("/readyz after %v = %s, want %d", within, r, status)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	awaitReadyz(http.StatusOK, 5*time.Second)

	db.Stop()
	r := readyz()
	if r.Status != http.StatusServiceUnavailable || r.Body["checks"].(map[string]any)["mongo"] != "unavailable" {
		t.Fatalf("/readyz with the store stopped = %s, want 503 with mongo unavailable", r)
	}

	if db, err = store.StartEmbeddedOn(dir, addr, nil); err != nil {
		t.Fatal(err)
	}
	took := awaitReadyz(http.StatusOK, 15*time.Second)
	t.Logf("/readyz back to 200 %v after the store restarted", took)
	s.NewTenant(t, "acme") // writes go through again
}
