package account_test

import (
	"context"
	"testing"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/identity"
)

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
