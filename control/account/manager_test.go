package account_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
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

func TestLogin_BackOffGrowsThenExpires(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	if _, err := f.m.Signup(ctx, anon, account.SignupRequest{Email: "a@acme.test", Password: "right-password", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	wrong := account.LoginRequest{Email: "a@acme.test", Password: "wrong-password", Tenant: "acme"}
	right := account.LoginRequest{Email: "a@acme.test", Password: "right-password", Tenant: "acme"}
	for i := 1; i < account.LockAfter; i++ {
		if _, err := f.m.Login(ctx, anon, wrong); err != account.ErrInvalidCredentials {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	_, err := f.m.Login(ctx, anon, wrong)
	if e, ok := errs.As(err); !ok || e.Code != "login_locked" || e.RetryAfter != account.LockBase {
		t.Fatalf("failure %d: %v, want login_locked for %v", account.LockAfter, err, account.LockBase)
	}
	if _, err := f.m.Login(ctx, anon, right); !errs.Is(err, "login_locked") {
		t.Fatalf("the right password during the lock: %v, want login_locked", err)
	}
	f.now = f.now.Add(account.LockBase + time.Second)
	_, err = f.m.Login(ctx, anon, wrong)
	if e, ok := errs.As(err); !ok || e.Code != "login_locked" || e.RetryAfter != 2*account.LockBase {
		t.Fatalf("failure after the lock: %v, want a lock twice as long", err)
	}
	f.now = f.now.Add(2*account.LockBase + time.Second)
	if _, err := f.m.Login(ctx, anon, right); err != nil {
		t.Fatalf("right password after the lock: %v", err)
	}
	if _, err := f.m.Login(ctx, anon, wrong); err != account.ErrInvalidCredentials {
		t.Fatalf("a success resets the count; got %v", err)
	}
}

func TestLogin_UnknownEmailIsLockedLikeAKnownOne(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	req := account.LoginRequest{Email: "ghost@acme.test", Password: "whatever-pw"}
	var err error
	for i := 0; i < account.LockAfter; i++ {
		_, err = f.m.Login(ctx, anon, req)
	}
	if !errs.Is(err, "login_locked") {
		t.Fatalf("an unknown email must back off too (or its absence shows): %v", err)
	}
}

func TestSignup_ConcurrentForOneNewTenantMakesOneOwner(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = f.m.Signup(ctx, anon, account.SignupRequest{
				Email: string(rune('a'+i)) + "@race.test", Password: "password-1", Tenant: "race-corp"})
		}()
	}
	wg.Wait()
	owners := 0
	for _, err := range results {
		switch {
		case err == nil:
			owners++
		case err == account.ErrInvitationRequired:
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if owners != 1 {
		t.Fatalf("%d signups created the tenant, want exactly 1", owners)
	}
}

func TestInvitation_ConcurrentClaimsAdmitOne(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	res, err := f.m.Signup(ctx, anon, account.SignupRequest{Email: "owner@inv.test", Password: "password-1", Tenant: "inv-corp"})
	if err != nil {
		t.Fatal(err)
	}
	owner := identity.Principal{UserID: res.UserID, TenantID: res.TenantID, Role: identity.RoleOwner}
	inv, err := f.m.Invite(ctx, owner, anon, "inv-corp", "new@inv.test", identity.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	joined := 0
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.m.Signup(ctx, anon, account.SignupRequest{Email: "new@inv.test", Password: "password-2", Tenant: "inv-corp", InviteToken: inv.Token})
			if err == nil {
				mu.Lock()
				joined++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if joined != 1 {
		t.Fatalf("%d signups used one invitation, want 1", joined)
	}
}

func TestInvitation_ExpiresAfterItsTTL(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	res, _ := f.m.Signup(ctx, anon, account.SignupRequest{Email: "owner@exp.test", Password: "password-1", Tenant: "exp-corp"})
	owner := identity.Principal{UserID: res.UserID, TenantID: res.TenantID, Role: identity.RoleOwner}
	inv, err := f.m.Invite(ctx, owner, anon, "exp-corp", "late@exp.test", identity.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(account.InvitationTTL + time.Minute)
	_, err = f.m.Signup(ctx, anon, account.SignupRequest{Email: "late@exp.test", Password: "password-2", Tenant: "exp-corp", InviteToken: inv.Token})
	if err != account.ErrInvalidInvitation {
		t.Fatalf("expired invitation: %v", err)
	}
}

func TestBootstrapAdmin_IsIdempotentAndLogsIn(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	if err := f.m.Tenants.Provisioners[0](ctx, "system"); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Tenants.Provisioners[1](ctx, "system"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := f.m.BootstrapAdmin(ctx, "root@platform.test", "admin-password"); err != nil {
			t.Fatal(err)
		}
	}
	// A changed password in the config does not overwrite the existing admin's.
	if err := f.m.BootstrapAdmin(ctx, "root@platform.test", "another-password"); err != nil {
		t.Fatal(err)
	}
	pair, err := f.m.Login(ctx, anon, account.LoginRequest{Email: "root@platform.test", Password: "admin-password"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.m.Keys.Verify(pair.AccessToken)
	if err != nil || p.Role != identity.RoleAdmin || p.TenantID != "system" {
		t.Fatalf("admin token = %+v, %v", p, err)
	}
}
