package account_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
)

// pauseAfterOwnerCount is the real store, except that the first count of owners is held back
// until release is closed: its caller has checked the last-owner rule and changed nothing yet.
type pauseAfterOwnerCount struct {
	account.Store
	paused           atomic.Bool
	counted, release chan struct{}
}

func (s *pauseAfterOwnerCount) CountRole(ctx context.Context, tenantID string, role identity.Role) (int64, error) {
	n, err := s.Store.CountRole(ctx, tenantID, role)
	if s.paused.CompareAndSwap(false, true) {
		close(s.counted)
		<-s.release
	}
	return n, err
}

// twoOwners signs up a tenant's owner and invites and signs up a second one.
func twoOwners(t *testing.T, f *fixture, tenantID string) (a, b identity.Principal) {
	t.Helper()
	ctx := context.Background()
	res, err := f.m.Signup(ctx, anon, account.SignupRequest{Email: "a@" + tenantID + ".test", Password: "password-a", Tenant: tenantID})
	if err != nil {
		t.Fatal(err)
	}
	a = identity.Principal{UserID: res.UserID, TenantID: tenantID, Role: identity.RoleOwner}
	inv, err := f.m.Invite(ctx, a, anon, tenantID, "b@"+tenantID+".test", identity.RoleOwner)
	if err != nil {
		t.Fatal(err)
	}
	res, err = f.m.Signup(ctx, anon, account.SignupRequest{Email: "b@" + tenantID + ".test", Password: "password-b", Tenant: tenantID, InviteToken: inv.Token})
	if err != nil {
		t.Fatal(err)
	}
	return a, identity.Principal{UserID: res.UserID, TenantID: tenantID, Role: identity.RoleOwner}
}

// Two demotions of a tenant's two owners, the second made entirely while the first has
// counted two owners and not yet written: the tenant keeps an owner, and exactly one of them
// takes effect.
func TestChangeRole_ConcurrentDemotionsOfTheLastTwoOwnersLeaveOne(t *testing.T) {
	admin := identity.Principal{UserID: "usr_root", TenantID: "system", Role: identity.RoleAdmin}
	cases := []struct {
		name string
		// first demotes the second owner and second the first, as actors named by index
		first, second func(a, b identity.Principal) identity.Principal
		loserCodes    []string // what the held-back demotion may answer
	}{
		{"OwnersDemoteEachOther",
			func(a, _ identity.Principal) identity.Principal { return a },
			func(_, b identity.Principal) identity.Principal { return b },
			[]string{"forbidden", "last_owner"}},
		{"AdminDemotesBoth",
			func(identity.Principal, identity.Principal) identity.Principal { return admin },
			func(identity.Principal, identity.Principal) identity.Principal { return admin },
			[]string{"last_owner"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newManager(t)
			ctx := context.Background()
			a, b := twoOwners(t, f, "duo-corp")
			paused := &pauseAfterOwnerCount{Store: f.m.Store, counted: make(chan struct{}), release: make(chan struct{})}
			f.m.Store = paused

			var heldErr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, heldErr = f.m.ChangeRole(ctx, c.first(a, b), anon, "duo-corp", b.UserID, identity.RoleUser)
			}()
			<-paused.counted
			_, err := f.m.ChangeRole(ctx, c.second(a, b), anon, "duo-corp", a.UserID, identity.RoleUser)
			close(paused.release)
			<-done

			if err != nil {
				t.Fatalf("the demotion made while the other waited: %v", err)
			}
			if e, ok := errs.As(heldErr); !ok || !slices.Contains(c.loserCodes, e.Code) {
				t.Errorf("the held-back demotion answered %v, want one of %v", heldErr, c.loserCodes)
			}
			users, err := f.m.ListUsers(ctx, admin, "duo-corp")
			if err != nil {
				t.Fatal(err)
			}
			roles := map[string]identity.Role{}
			for _, u := range users {
				roles[u.ID] = u.Role
			}
			if roles[a.UserID] != identity.RoleUser || roles[b.UserID] != identity.RoleOwner {
				t.Errorf("roles afterwards %v, want %s user and %s the one owner left", roles, a.UserID, b.UserID)
			}
		})
	}
}

// Role changes go on one after another (each claims the revision after the last), a change to
// the role a user already has changes nothing, and an owner demoted since their token was
// issued is refused.
func TestChangeRole_SuccessiveChangesCheckTheCallersStoredRole(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	a, b := twoOwners(t, f, "seq-corp")
	steps := []struct {
		actor  identity.Principal
		target string
		role   identity.Role
		code   string
	}{
		{a, b.UserID, identity.RoleUser, ""},
		{a, b.UserID, identity.RoleUser, ""},
		{a, a.UserID, identity.RoleUser, "last_owner"},
		{b, a.UserID, identity.RoleUser, "forbidden"},
		{a, b.UserID, identity.RoleOwner, ""},
		{b, a.UserID, identity.RoleUser, ""},
		{a, b.UserID, identity.RoleUser, "forbidden"},
		{b, a.UserID, identity.RoleOwner, ""},
		{b, b.UserID, identity.RoleUser, ""},
	}
	for i, st := range steps {
		u, err := f.m.ChangeRole(ctx, st.actor, anon, "seq-corp", st.target, st.role)
		switch {
		case st.code == "" && err != nil:
			t.Fatalf("step %d: %v", i, err)
		case st.code == "" && u.Role != st.role:
			t.Fatalf("step %d: role %s, want %s", i, u.Role, st.role)
		case st.code != "" && !errs.Is(err, st.code):
			t.Fatalf("step %d: %v, want %s", i, err, st.code)
		}
	}
}
