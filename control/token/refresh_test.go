package token_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/token"
	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// refreshStores lists every RefreshStore implementation; each runs the same suite.
func refreshStores(t *testing.T) map[string]token.RefreshStore {
	s := &token.MongoRefreshStore{DB: testenv.DB(t)}
	if err := s.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return map[string]token.RefreshStore{"mongo": s}
}

func TestRefresher_Conformance(t *testing.T) {
	ctx := context.Background()
	for name, newStore := range map[string]func(*testing.T) token.RefreshStore{
		"mongo": func(t *testing.T) token.RefreshStore { return refreshStores(t)["mongo"] },
	} {
		t.Run(name+"/RotationSpendsOnce", func(t *testing.T) {
			r := &token.Refresher{Store: newStore(t)}
			raw, err := r.Issue(ctx, "acme", "usr_1", "")
			if err != nil {
				t.Fatal(err)
			}
			rec, err := r.Spend(ctx, raw)
			if err != nil || rec.TenantID != "acme" || rec.UserID != "usr_1" || rec.Family == "" {
				t.Fatalf("Spend = %+v, %v", rec, err)
			}
			next, err := r.Issue(ctx, "acme", "usr_1", rec.Family)
			if err != nil {
				t.Fatal(err)
			}
			// Reuse of the spent token revokes the family, including the newer token.
			if _, err := r.Spend(ctx, raw); err != token.ErrRefreshReused {
				t.Fatalf("reuse: err = %v, want ErrRefreshReused", err)
			}
			if _, err := r.Spend(ctx, next); err != token.ErrRefreshInvalid {
				t.Fatalf("after reuse the family's newer token must be dead, got %v", err)
			}
		})
		// A rotation spends the old token, then issues the new one. Reuse of the old token (or
		// a logout of every session) can revoke the family at any point in between; whichever
		// point, no live token may come out of the rotation.
		for _, tc := range []struct {
			name     string
			at       string // where the revocation happens
			byUser   bool   // RevokeUser instead of a reuse of the spent token
			spendErr error
			issueErr error
		}{
			{name: "WhileTheOldTokenIsSpent", at: "spend check", spendErr: token.ErrRefreshInvalid},
			{name: "BetweenSpendAndIssue", at: "issue", issueErr: token.ErrRefreshInvalid},
			{name: "BetweenSpendAndIssueByLogoutOfEverySession", at: "issue", byUser: true, issueErr: token.ErrRefreshInvalid},
			{name: "BetweenInsertAndCheckOfTheNewToken", at: "issue check", issueErr: token.ErrRefreshInvalid},
			{name: "AfterTheRotation", at: "after"},
		} {
			t.Run(name+"/RevokedDuringRotation/"+tc.name, func(t *testing.T) {
				s := &hookedStore{RefreshStore: newStore(t)}
				r := &token.Refresher{Store: s}
				old, err := r.Issue(ctx, "acme", "usr_1", "")
				if err != nil {
					t.Fatal(err)
				}
				revoke := func() {
					if tc.byUser {
						if err := r.RevokeUser(ctx, "acme", "usr_1"); err != nil {
							t.Fatal(err)
						}
					} else if _, err := r.Spend(ctx, old); err != token.ErrRefreshReused {
						t.Fatalf("reuse of the spent token: %v, want ErrRefreshReused", err)
					}
				}
				if tc.at == "spend check" {
					s.beforeFamilyCheck = revoke
				}
				rec, err := r.Spend(ctx, old)
				if err != tc.spendErr {
					t.Fatalf("Spend = %v, want %v", err, tc.spendErr)
				}
				if err != nil {
					return
				}
				switch tc.at {
				case "issue":
					revoke()
				case "issue check":
					s.beforeFamilyCheck = revoke
				}
				next, err := r.Issue(ctx, rec.TenantID, rec.UserID, rec.Family)
				if err != tc.issueErr {
					t.Fatalf("Issue = %v, want %v", err, tc.issueErr)
				}
				if err != nil {
					return
				}
				if tc.at == "after" {
					revoke()
				}
				if _, err := r.Spend(ctx, next); err != token.ErrRefreshInvalid {
					t.Fatalf("the rotated token outlived its family's revocation: %v", err)
				}
			})
		}
		t.Run(name+"/UnknownAndMalformedAreInvalid", func(t *testing.T) {
			r := &token.Refresher{Store: newStore(t)}
			for _, raw := range []string{"", "rt_unknown", "nope", "rt_" + string(make([]byte, 200))} {
				if _, err := r.Spend(ctx, raw); !errs.Is(err, "invalid_token") {
					t.Errorf("Spend(%q) = %v", raw, err)
				}
			}
		})
		t.Run(name+"/ExpiredIsInvalidAndSwept", func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			r := &token.Refresher{Store: newStore(t), TTL: time.Hour, Now: func() time.Time { return now }}
			raw, err := r.Issue(ctx, "acme", "usr_1", "")
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(2 * time.Hour)
			if _, err := r.Spend(ctx, raw); err != token.ErrRefreshInvalid {
				t.Fatalf("expired token: %v", err)
			}
			if n, err := r.Sweep(ctx); err != nil || n != 1 {
				t.Fatalf("Sweep = %d, %v; want 1", n, err)
			}
		})
		t.Run(name+"/RevokeUserEndsEverySession", func(t *testing.T) {
			r := &token.Refresher{Store: newStore(t)}
			a, _ := r.Issue(ctx, "acme", "usr_1", "")
			b, _ := r.Issue(ctx, "acme", "usr_1", "")
			other, _ := r.Issue(ctx, "acme", "usr_2", "")
			if err := r.RevokeUser(ctx, "acme", "usr_1"); err != nil {
				t.Fatal(err)
			}
			for _, raw := range []string{a, b} {
				if _, err := r.Spend(ctx, raw); err != token.ErrRefreshInvalid {
					t.Errorf("revoked token: %v", err)
				}
			}
			if _, err := r.Spend(ctx, other); err != nil {
				t.Errorf("another user's session must survive: %v", err)
			}
		})
		// Concurrent spends of one token are a reuse: one spend wins the token, and the losers'
		// reuse detection revokes the family, which the winner's check may see in time (its
		// rotation then fails) or not (its new token is revoked with the family).
		t.Run(name+"/ConcurrentSpendSucceedsAtMostOnce", func(t *testing.T) {
			r := &token.Refresher{Store: newStore(t)}
			raw, _ := r.Issue(ctx, "acme", "usr_1", "")
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok := 0
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := r.Spend(ctx, raw)
					mu.Lock()
					defer mu.Unlock()
					switch err {
					case nil:
						ok++
					case token.ErrRefreshReused, token.ErrRefreshInvalid:
					default:
						t.Errorf("a concurrent spend failed: %v", err)
					}
				}()
			}
			wg.Wait()
			if ok > 1 {
				t.Fatalf("%d concurrent spends succeeded, want at most 1", ok)
			}
		})
	}
}

// hookedStore runs a hook, once, just before the real store reads a family's revocation
// marker, so that a test can put a revocation at that exact point of a rotation.
type hookedStore struct {
	token.RefreshStore
	beforeFamilyCheck func()
}

func (s *hookedStore) FamilyRevoked(ctx context.Context, family string, now time.Time) (bool, error) {
	if hook := s.beforeFamilyCheck; hook != nil {
		s.beforeFamilyCheck = nil
		hook()
	}
	return s.RefreshStore.FamilyRevoked(ctx, family, now)
}
