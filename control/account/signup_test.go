package account_test

import (
	"context"
	"sync"
	"testing"

	"github.com/saasgate/saasgate/control/account"
)

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
