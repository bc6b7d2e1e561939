package account_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/identity"
)

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
