package main

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
)

func tenantID(i int) string { return "bench-" + strconv.Itoa(i) }

func startDatabase(dir string) (*store.DB, string, func(), error) {
	e, err := store.StartEmbedded(filepath.Join(dir, "db"), nil)
	if err != nil {
		return nil, "", nil, err
	}
	db, err := store.Connect(context.Background(), e.URI(), "bench", 10*time.Second)
	if err != nil {
		e.Stop()
		return nil, "", nil, err
	}
	return db, e.URI(), func() { _ = db.Close(context.Background()); e.Stop() }, nil
}

// seedTenants stores n active tenants on plan "bench" through the tenant store, as the
// gateway reads them. Signup would make them too, but 10,000 signups spend minutes hashing
// passwords the bench never uses.
func seedTenants(db *store.DB, n int) error {
	ctx := context.Background()
	tenants := &tenant.MongoStore{DB: db}
	if err := tenants.Init(ctx); err != nil {
		return err
	}
	now := time.Now().UTC()
	// A few inserts in flight at once: one at a time, the round trips to the embedded
	// database would dominate the seeding.
	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				t := &tenant.Tenant{ID: tenantID(i), Name: tenantID(i), Status: tenant.StatusActive,
					Plan: "bench", CreatedAt: now, UpdatedAt: now}
				if errs[w] = tenants.Insert(ctx, t); errs[w] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// requests builds every tenant's request once, with a token of a user of that tenant: the
// load sends bytes, it does not build requests.
func requests(n int) ([][]byte, error) {
	keys, err := token.NewKeys([]byte(secret), "saasgate", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	reqs := make([][]byte, n)
	for i := range reqs {
		tok, err := keys.Issue(identity.Principal{UserID: "usr_bench" + strconv.Itoa(i), TenantID: tenantID(i), Role: identity.RoleUser})
		if err != nil {
			return nil, err
		}
		reqs[i] = buildRequest("/bench", tenantID(i)+".localhost", tok)
	}
	return reqs, nil
}
