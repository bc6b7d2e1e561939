package account_test

import (
	"context"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/tenant"
	"github.com/saasgate/saasgate/control/token"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixture struct {
	m   *account.Manager
	now time.Time
}

func newManager(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	f := &fixture{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	catalog, err := plan.NewCatalog(nil, "free")
	if err != nil {
		t.Fatal(err)
	}
	auditStore := &audit.MongoStore{DB: db}
	accounts := &account.MongoStore{DB: db}
	tenants := &tenant.MongoStore{DB: db}
	refresh := &token.MongoRefreshStore{DB: db}
	for _, init := range []func(context.Context) error{accounts.Init, tenants.Init, refresh.Init} {
		if err := init(ctx); err != nil {
			t.Fatal(err)
		}
	}
	log := &audit.Log{Store: auditStore, Now: clock}
	keys, _ := token.NewKeys([]byte("0123456789abcdef0123456789abcdef"), "saasgate", time.Hour)
	keys.Now = clock
	f.m = &account.Manager{
		Store: accounts,
		Tenants: &tenant.Manager{Store: tenants, Plans: catalog, Audit: log, Now: clock,
			Provisioners: []tenant.Provisioner{accounts.CreateTenantCollections, auditStore.CreateTenantCollections}},
		Keys:      keys,
		Refresh:   &token.Refresher{Store: refresh, Now: clock},
		Passwords: account.NewHasher(64),
		Audit:     log,
		Now:       clock,
	}
	return f
}

var anon = identity.Anonymous("127.0.0.1", "req-1")

// signup signs each request up, failing the test on an error.
func (f *fixture) signup(t *testing.T, reqs ...account.SignupRequest) {
	t.Helper()
	for _, req := range reqs {
		if _, err := f.m.Signup(context.Background(), anon, req); err != nil {
			t.Fatalf("signup %s in %s: %v", req.Email, req.Tenant, err)
		}
	}
}
