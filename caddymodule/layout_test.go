package caddymodule_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// collectionNames lists the collections of the gateway's database (and those its tenants are
// spread over), sorted.
func collectionNames(t *testing.T, db *store.DB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names, err := db.CollectionNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// TestSharedLayout_FlowsAndNoCollectionPerTenant: a gateway with `tenant_layout shared` signs
// tenants up, logs them in, takes invitations, lists members, registers webhook endpoints and
// keeps and verifies each tenant's audit chain, with two tenants holding the same emails; and
// creating tenants creates no collection.
func TestSharedLayout_FlowsAndNoCollectionPerTenant(t *testing.T) {
	s := startAPI(t, "tenant_layout shared", "webhooks {\n\tallow_private 127.0.0.0/8\n}")
	db := s.store(t)
	before := collectionNames(t, db)
	for _, name := range before {
		if strings.HasPrefix(name, "t_") {
			t.Errorf("a shared-layout database holds %s", name)
		}
	}
	for _, name := range []string{"users", "invitations", "audit", "webhook_endpoints"} {
		if !slices.Contains(before, name) {
			t.Errorf("no shared collection %s at start: %v", name, before)
		}
	}

	admin := s.AdminToken(t)
	a, b := s.NewTenant(t, "initech"), s.NewTenant(t, "umbrella")
	// The same email in both tenants: an account in each, each its own password.
	invA := s.MustInvite(t, a.OwnerAccess, "initech", "peter@same.test", "user")
	invB := s.MustInvite(t, b.OwnerAccess, "umbrella", "peter@same.test", "owner")
	wantProblem(t, s.Signup(t, "peter@same.test", testenv.Password, "umbrella", invA), http.StatusForbidden, "invalid_invitation")
	peterA := s.Signup(t, "peter@same.test", testenv.Password, "initech", invA)
	mustStatus(t, peterA, http.StatusCreated)
	peterB := s.Signup(t, "peter@same.test", testenv.Password, "umbrella", invB)
	mustStatus(t, peterB, http.StatusCreated)
	if peterB.Str("role") != "owner" || peterA.Str("role") != "user" {
		t.Errorf("roles: initech %s, umbrella %s", peterA.Str("role"), peterB.Str("role"))
	}
	wantProblem(t, s.Signup(t, "peter@same.test", testenv.Password, "initech", invA), http.StatusForbidden, "invalid_invitation")
	claims := parseAccess(t, s.MustLogin(t, "peter@same.test", "umbrella").Access)
	if claims["tid"] != "umbrella" || claims["sub"] != peterB.Str("user_id") || claims["role"] != "owner" {
		t.Errorf("umbrella peter's claims %v", claims)
	}
	for tenant, f := range map[string]string{"initech": a.OwnerAccess, "umbrella": b.OwnerAccess} {
		users := s.users(t, f, tenant)
		if len(users) != 3 {
			t.Errorf("%s has users %v, want 3", tenant, users)
		}
		other := peterB.Str("user_id")
		if tenant == "umbrella" {
			other = peterA.Str("user_id")
		}
		if _, ok := users[other]; ok {
			t.Errorf("%s lists the other tenant's user %s", tenant, other)
		}
	}
	// Cross-tenant reads are refused by the API, whatever the store holds.
	wantProblem(t, s.Do(t, "GET", "/tenants/umbrella/users", a.OwnerAccess, nil), http.StatusForbidden, "forbidden")

	for _, f := range []*testenv.TenantFixture{a, b} {
		r := s.Do(t, "POST", "/tenants/"+f.ID+"/webhook-endpoints", f.OwnerAccess,
			map[string]any{"url": "http://127.0.0.1:9/" + f.ID, "events": []string{"member.joined"}})
		mustStatus(t, r, http.StatusCreated)
		list := s.Do(t, "GET", "/tenants/"+f.ID+"/webhook-endpoints", f.OwnerAccess, nil)
		mustStatus(t, list, http.StatusOK)
		if !strings.Contains(string(list.Raw), "/"+f.ID) || strings.Count(string(list.Raw), `"url"`) != 1 {
			t.Errorf("%s's endpoints: %s", f.ID, list.Raw)
		}
	}

	for _, f := range []*testenv.TenantFixture{a, b} {
		logs := s.Do(t, "GET", "/tenants/"+f.ID+"/audit-logs?limit=500", f.OwnerAccess, nil)
		mustStatus(t, logs, http.StatusOK)
		entries, _ := logs.Body["entries"].([]any)
		if len(entries) < 4 {
			t.Errorf("%s's audit log holds %d entries: %s", f.ID, len(entries), logs.Raw)
		}
		for _, e := range entries {
			if m, _ := e.(map[string]any); m["tenant_id"] != f.ID {
				t.Errorf("%s's audit log lists %v", f.ID, m)
			}
		}
		v := s.Do(t, "GET", "/tenants/"+f.ID+"/audit-logs/verify", admin, nil)
		mustStatus(t, v, http.StatusOK)
		if v.Body["ok"] != true || v.Body["checked"].(float64) < 4 {
			t.Errorf("%s's chain: %s", f.ID, v.Raw)
		}
	}

	// Creating a tenant, with its owner, members and audit entries, creates no collection.
	s.NewTenant(t, "hooli")
	if after := collectionNames(t, db); !slices.Equal(before, after) {
		t.Errorf("collections before tenants were created %v, after %v", before, after)
	}
	// The documents carry their tenant; emails repeat across tenants, not within one.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for tenant, want := range map[string]int64{"initech": 3, "umbrella": 3, "hooli": 2} {
		n, err := db.C("users").CountDocuments(ctx, bson.D{{Key: "tenant_id", Value: tenant}})
		if err != nil || n != want {
			t.Errorf("users of %s in the shared collection: %d, %v; want %d", tenant, n, err, want)
		}
	}
	if n, _ := db.C("users").CountDocuments(ctx, bson.D{{Key: "email", Value: "peter@same.test"}}); n != 2 {
		t.Errorf("peter@same.test has %d accounts, want 2", n)
	}
}

// TestTenantLayout_FixedAtInstall: a gateway configured with one layout refuses to start over a
// database holding the other's data, saying so; the layout it was installed with starts.
func TestTenantLayout_FixedAtInstall(t *testing.T) {
	for _, c := range []struct{ installed, then string }{{"collections", "shared"}, {"shared", "collections"}} {
		t.Run(c.installed+"_then_"+c.then, func(t *testing.T) {
			ctx := context.Background()
			opts := testenv.SaasOptions{Options: "tenant_layout " + c.installed}
			s := testenv.NewSaas(t, opts)
			db, err := store.Connect(ctx, s.Opts.MongoURI, s.Opts.Database, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close(context.Background()) })
			// Install: start once with the first layout and stop.
			cfg := testenv.AdaptCaddyfile(t, s.Caddyfile)
			if err := caddy.Load(cfg, true); err != nil {
				t.Fatalf("installing with %s: %v", c.installed, err)
			}
			t.Cleanup(func() { _ = caddy.Stop() })
			s.WaitReady(t, 10*time.Second)
			if err := caddy.Stop(); err != nil {
				t.Fatal(err)
			}
			if l, found, err := db.DetectLayout(ctx); err != nil || !found || string(l) != c.installed {
				t.Fatalf("installed layout reads as %s, %v, %v", l, found, err)
			}

			opts.MongoURI, opts.Database, opts.APIPort = s.Opts.MongoURI, s.Opts.Database, s.Opts.APIPort
			opts.Options = "tenant_layout " + c.then
			other := testenv.NewSaas(t, opts)
			err = caddy.Load(testenv.AdaptCaddyfile(t, other.Caddyfile), true)
			if err == nil {
				_ = caddy.Stop()
				t.Fatalf("a gateway with tenant_layout %s started over a %s install", c.then, c.installed)
			}
			for _, want := range []string{"tenant_layout is " + c.then, "holds data of the " + c.installed + " layout", "chosen at install"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("start error %q does not say %q", err, want)
				}
			}
			if l, _, _ := db.DetectLayout(ctx); string(l) != c.installed {
				t.Errorf("the refused start left the database reading as %s", l)
			}
		})
	}
}

// TestTenantLayout_BadValueIsRefusedAtAdapt: a layout other than collections or shared fails
// the Caddyfile with the option's name.
func TestTenantLayout_BadValueIsRefusedAtAdapt(t *testing.T) {
	_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("{\n\tsaas {\n\t\ttenant_layout per-tenant\n\t}\n}\n"), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), "tenant_layout") || !strings.Contains(err.Error(), "collections, shared") {
		t.Errorf("adapting tenant_layout per-tenant: %v", err)
	}
}
