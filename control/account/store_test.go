package account_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// The conformance suite of account.MongoStore, run in both tenant layouts.

var st0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// newStore is a MongoStore in layout over a fresh database, with the tenants alpha and bravo
// provisioned.
func newStore(t *testing.T, layout store.Layout) *account.MongoStore {
	t.Helper()
	ctx := context.Background()
	s := &account.MongoStore{DB: testenv.DB(t), Layout: layout}
	if err := s.Init(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alpha", "bravo"} {
		if err := s.CreateTenantCollections(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// userID is the id of a user of tenant: the same for both tenants in the collections layout,
// where ids are per tenant; per tenant in the shared one, where _id is unique across it.
func userID(layout store.Layout, tenant, name string) string {
	if layout == store.LayoutShared {
		return "usr_" + tenant + "_" + name
	}
	return "usr_" + name
}

func TestAccountStore_Conformance(t *testing.T) {
	for _, layout := range store.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t, layout)
			id := userID(layout, "alpha", "ann")
			ann := &account.User{ID: id, Email: "ann@x.test", PasswordHash: "h1", Role: identity.RoleOwner, CreatedAt: st0, UpdatedAt: st0}
			if err := s.InsertUser(ctx, "alpha", ann); err != nil {
				t.Fatal(err)
			}
			bob := &account.User{ID: userID(layout, "alpha", "bob"), Email: "bob@x.test", Role: identity.RoleUser, CreatedAt: st0.Add(time.Second)}
			if err := s.InsertUser(ctx, "alpha", bob); err != nil {
				t.Fatal(err)
			}
			dup := &account.User{ID: userID(layout, "alpha", "ann2"), Email: "ann@x.test", Role: identity.RoleUser}
			if err := s.InsertUser(ctx, "alpha", dup); !errors.Is(err, account.ErrEmailTaken) {
				t.Errorf("InsertUser of a taken email: %v, want ErrEmailTaken", err)
			}
			if u, err := s.UserByEmail(ctx, "alpha", "ann@x.test"); err != nil || u.ID != id || u.PasswordHash != "h1" || !u.CreatedAt.Equal(st0) {
				t.Errorf("UserByEmail = %+v, %v", u, err)
			}
			if u, err := s.UserByID(ctx, "alpha", id); err != nil || u.Email != "ann@x.test" {
				t.Errorf("UserByID = %+v, %v", u, err)
			}
			if _, err := s.UserByID(ctx, "alpha", "usr_nobody"); !errors.Is(err, account.ErrUserNotFound) {
				t.Errorf("UserByID of nobody: %v", err)
			}
			if us, err := s.ListUsers(ctx, "alpha"); err != nil || len(us) != 2 || us[0].ID != id || us[1].ID != bob.ID {
				t.Errorf("ListUsers = %v, %v", us, err)
			}
			if n, err := s.CountRole(ctx, "alpha", identity.RoleOwner); err != nil || n != 1 {
				t.Errorf("CountRole owner = %d, %v", n, err)
			}
			if rev, err := s.RolesRevision(ctx, "alpha"); err != nil || rev != 0 {
				t.Errorf("RolesRevision = %d, %v", rev, err)
			}
			if won, err := s.ClaimRolesRevision(ctx, "alpha", 1, st0.Add(time.Hour)); err != nil || !won {
				t.Errorf("ClaimRolesRevision 1 = %v, %v", won, err)
			}
			if won, err := s.ClaimRolesRevision(ctx, "alpha", 1, st0.Add(time.Hour)); err != nil || won {
				t.Errorf("ClaimRolesRevision 1 again = %v, %v", won, err)
			}
			if u, err := s.SetRole(ctx, "alpha", bob.ID, identity.RoleOwner, 1, st0.Add(time.Minute)); err != nil || u.Role != identity.RoleOwner || u.RoleRev != 1 {
				t.Errorf("SetRole = %+v, %v", u, err)
			}
			if _, err := s.SetRole(ctx, "alpha", "usr_nobody", identity.RoleOwner, 2, st0); !errors.Is(err, account.ErrUserNotFound) {
				t.Errorf("SetRole of nobody: %v", err)
			}
			if rev, err := s.RolesRevision(ctx, "alpha"); err != nil || rev != 1 {
				t.Errorf("RolesRevision after SetRole = %d, %v", rev, err)
			}
			if err := s.SetMFA(ctx, "alpha", id, &account.MFA{Enabled: true, Secret: "sealed", LastStep: 7}); err != nil {
				t.Fatal(err)
			}
			if u, _ := s.UserByID(ctx, "alpha", id); u == nil || !u.MFAEnabled() || u.MFA.LastStep != 7 {
				t.Errorf("after SetMFA: %+v", u)
			}
			if err := s.SetMFA(ctx, "alpha", id, nil); err != nil {
				t.Fatal(err)
			}
			if u, _ := s.UserByID(ctx, "alpha", id); u == nil || u.MFA != nil {
				t.Errorf("after SetMFA nil: %+v", u)
			}
			if err := s.SetMFA(ctx, "alpha", "usr_nobody", nil); !errors.Is(err, account.ErrUserNotFound) {
				t.Errorf("SetMFA of nobody: %v", err)
			}

			for _, tenant := range []string{"bravo", "alpha", "alpha"} {
				if err := s.AddDirectory(ctx, "ann@x.test", tenant); err != nil {
					t.Fatal(err)
				}
			}
			if ts, err := s.TenantsOf(ctx, "ann@x.test", 10); err != nil || len(ts) != 2 || ts[0] != "alpha" || ts[1] != "bravo" {
				t.Errorf("TenantsOf = %v, %v", ts, err)
			}

			inv := &account.Invitation{Hash: "inv-1", Email: "cy@x.test", Role: identity.RoleUser, CreatedAt: st0, ExpiresAt: st0.Add(time.Hour)}
			if err := s.InsertInvitation(ctx, "alpha", inv); err != nil {
				t.Fatal(err)
			}
			if got, err := s.UsableInvitation(ctx, "alpha", "inv-1", "cy@x.test", st0); err != nil || got.Email != "cy@x.test" {
				t.Errorf("UsableInvitation = %+v, %v", got, err)
			}
			for _, c := range []struct{ hash, email string }{{"inv-1", "eve@x.test"}, {"inv-2", "cy@x.test"}} {
				if _, err := s.UsableInvitation(ctx, "alpha", c.hash, c.email, st0); !errors.Is(err, account.ErrInvalidInvitation) {
					t.Errorf("UsableInvitation %v: %v", c, err)
				}
			}
			if _, err := s.UsableInvitation(ctx, "alpha", "inv-1", "cy@x.test", st0.Add(time.Hour)); !errors.Is(err, account.ErrInvalidInvitation) {
				t.Errorf("UsableInvitation once expired: %v", err)
			}
			if got, err := s.ClaimInvitation(ctx, "alpha", "inv-1", "cy@x.test", st0); err != nil || got.UsedAt == nil {
				t.Errorf("ClaimInvitation = %+v, %v", got, err)
			}
			if _, err := s.ClaimInvitation(ctx, "alpha", "inv-1", "cy@x.test", st0); !errors.Is(err, account.ErrInvalidInvitation) {
				t.Errorf("ClaimInvitation again: %v", err)
			}

			// Login back-off and claims are platform collections, the same in both layouts.
			key := "k1"
			for seq := 1; seq <= 3; seq++ {
				if ok, err := s.ReserveLogin(ctx, key, seq, st0.Add(time.Duration(seq)*time.Second)); err != nil || !ok {
					t.Fatalf("ReserveLogin %d = %v, %v", seq, ok, err)
				}
			}
			if ok, err := s.ReserveLogin(ctx, key, 3, st0); err != nil || ok {
				t.Errorf("ReserveLogin 3 again = %v, %v", ok, err)
			}
			if err := s.ReleaseLogin(ctx, key, 3); err != nil {
				t.Fatal(err)
			}
			if lf, err := s.LoginFailures(ctx, key); err != nil || lf.Count != 2 || lf.Seq != 2 || !lf.Last.Equal(st0.Add(2*time.Second)) {
				t.Errorf("LoginFailures = %+v, %v", lf, err)
			}
			if n, err := s.DeleteStaleLogins(ctx, st0.Add(1500*time.Millisecond)); err != nil || n != 1 {
				t.Errorf("DeleteStaleLogins = %d, %v", n, err)
			}
			if err := s.ResetLogin(ctx, key); err != nil {
				t.Fatal(err)
			}
			if lf, err := s.LoginFailures(ctx, key); err != nil || lf.Count != 0 {
				t.Errorf("LoginFailures after reset = %+v, %v", lf, err)
			}
			if ok, err := s.ClaimOnce(ctx, "once", st0.Add(time.Hour)); err != nil || !ok {
				t.Errorf("ClaimOnce = %v, %v", ok, err)
			}
			if ok, err := s.ClaimOnce(ctx, "once", st0.Add(time.Hour)); err != nil || ok {
				t.Errorf("ClaimOnce again = %v, %v", ok, err)
			}
		})
	}
}

// TestAccountStore_Isolation: alpha and bravo hold the same emails and invitations (and, in the
// collections layout, the same user ids). Every per-tenant method called for alpha, with any
// argument, including bravo's ids and hashes, reads and changes alpha's documents only.
func TestAccountStore_Isolation(t *testing.T) {
	for _, layout := range store.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t, layout)
			for _, tenant := range []string{"alpha", "bravo"} {
				for i, name := range []string{"ann", "bob"} {
					role := identity.RoleOwner
					if i == 1 {
						role = identity.RoleUser
					}
					u := &account.User{ID: userID(layout, tenant, name), Email: name + "@x.test", PasswordHash: "hash-" + tenant, Role: role, CreatedAt: st0}
					if err := s.InsertUser(ctx, tenant, u); err != nil {
						t.Fatal(err)
					}
				}
				hash := "inv-" + tenant
				if layout == store.LayoutCollections {
					hash = "inv-same"
				}
				if err := s.InsertInvitation(ctx, tenant, &account.Invitation{Hash: hash, Email: "cy@x.test", Role: identity.RoleUser, ExpiresAt: st0.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			bravoAnn, bravoBob := userID(layout, "bravo", "ann"), userID(layout, "bravo", "bob")
			bravoInv := "inv-bravo"
			if layout == store.LayoutCollections {
				bravoInv = "inv-same"
			}
			// snapshot is bravo's state as seen through bravo's own handle.
			snapshot := func() string {
				us, err := s.ListUsers(ctx, "bravo")
				if err != nil {
					t.Fatal(err)
				}
				out := ""
				for _, u := range us {
					out += u.ID + "|" + u.Email + "|" + u.PasswordHash + "|" + string(u.Role) + "|" + u.UpdatedAt.String() + "|" + boolStr(u.MFA != nil) + ";"
				}
				inv, err := s.UsableInvitation(ctx, "bravo", bravoInv, "cy@x.test", st0)
				if err != nil {
					t.Fatalf("bravo's invitation: %v", err)
				}
				return out + inv.Hash
			}
			before := snapshot()

			// Reads for alpha see alpha's users only, whatever they name.
			for _, email := range []string{"ann@x.test", "bob@x.test"} {
				if u, err := s.UserByEmail(ctx, "alpha", email); err != nil || u.PasswordHash != "hash-alpha" {
					t.Errorf("UserByEmail(alpha, %s) = %+v, %v", email, u, err)
				}
			}
			for _, id := range []string{bravoAnn, bravoBob} {
				u, err := s.UserByID(ctx, "alpha", id)
				if layout == store.LayoutShared && !errors.Is(err, account.ErrUserNotFound) {
					t.Errorf("UserByID(alpha, bravo's %s) = %+v, %v", id, u, err)
				}
				if err == nil && u.PasswordHash != "hash-alpha" {
					t.Errorf("UserByID(alpha, %s) returned bravo's user %+v", id, u)
				}
			}
			us, err := s.ListUsers(ctx, "alpha")
			if err != nil || len(us) != 2 {
				t.Errorf("ListUsers(alpha) = %d users, %v", len(us), err)
			}
			for _, u := range us {
				if u.PasswordHash != "hash-alpha" {
					t.Errorf("ListUsers(alpha) returned %+v", u)
				}
			}
			if n, err := s.CountRole(ctx, "alpha", identity.RoleOwner); err != nil || n != 1 {
				t.Errorf("CountRole(alpha, owner) = %d, %v", n, err)
			}
			// Emails are unique per tenant: alpha's ann does not stop bravo's, nor the reverse
			// (both were inserted above); another ann in alpha is refused.
			if err := s.InsertUser(ctx, "alpha", &account.User{ID: userID(layout, "alpha", "ann3"), Email: "ann@x.test"}); !errors.Is(err, account.ErrEmailTaken) {
				t.Errorf("second ann in alpha: %v", err)
			}

			// Writes for alpha naming bravo's ids do not reach bravo.
			if _, err := s.SetRole(ctx, "alpha", bravoBob, identity.RoleOwner, 5, st0.Add(time.Hour)); layout == store.LayoutShared && !errors.Is(err, account.ErrUserNotFound) {
				t.Errorf("SetRole(alpha, bravo's bob): %v", err)
			}
			if err := s.SetMFA(ctx, "alpha", bravoAnn, &account.MFA{Enabled: true}); layout == store.LayoutShared && !errors.Is(err, account.ErrUserNotFound) {
				t.Errorf("SetMFA(alpha, bravo's ann): %v", err)
			}
			if rev, err := s.RolesRevision(ctx, "bravo"); err != nil || rev != 0 {
				t.Errorf("bravo's roles revision = %d, %v", rev, err)
			}
			// A user inserted for alpha with bravo's id: refused (shared) or alpha's (collections).
			err = s.InsertUser(ctx, "alpha", &account.User{ID: bravoAnn, Email: "new@x.test", PasswordHash: "evil"})
			if layout == store.LayoutShared && err == nil {
				t.Error("InsertUser(alpha) with bravo's id succeeded in the shared collection")
			}

			// Invitations: alpha cannot read or claim bravo's.
			inv, err := s.UsableInvitation(ctx, "alpha", bravoInv, "cy@x.test", st0)
			if layout == store.LayoutShared && !errors.Is(err, account.ErrInvalidInvitation) {
				t.Errorf("UsableInvitation(alpha, bravo's hash) = %+v, %v", inv, err)
			}
			if _, err := s.ClaimInvitation(ctx, "alpha", bravoInv, "cy@x.test", st0); layout == store.LayoutShared && !errors.Is(err, account.ErrInvalidInvitation) {
				t.Errorf("ClaimInvitation(alpha, bravo's hash): %v", err)
			}
			if err := s.InsertInvitation(ctx, "alpha", &account.Invitation{Hash: bravoInv, Email: "eve@x.test", ExpiresAt: st0.Add(time.Hour)}); layout == store.LayoutShared && err == nil {
				t.Error("InsertInvitation(alpha) with bravo's hash succeeded in the shared collection")
			}

			if after := snapshot(); after != before {
				t.Errorf("bravo changed by alpha's calls:\nbefore %s\nafter  %s", before, after)
			}
			// And bravo's invitation is still claimable by bravo, once.
			if _, err := s.ClaimInvitation(ctx, "bravo", bravoInv, "cy@x.test", st0); err != nil {
				t.Errorf("bravo claiming its own invitation: %v", err)
			}
		})
	}
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
