package account_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/errs"
)

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

// pacedHasher counts password checks and holds each until every one of the logins has either
// reached a check or finished: by then all of them have met the back-off, and none has yet
// recorded a failure, the interleaving in which a check-then-record lockout lets all through.
type pacedHasher struct {
	account.PasswordHasher
	logins int

	mu                         sync.Mutex
	cond                       *sync.Cond
	arrived, finished, checked int
}

func newPacedHasher(inner account.PasswordHasher, logins int) *pacedHasher {
	h := &pacedHasher{PasswordHasher: inner, logins: logins}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *pacedHasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	h.mu.Lock()
	h.arrived++
	h.checked++
	h.cond.Broadcast()
	for h.arrived+h.finished < h.logins {
		h.cond.Wait()
	}
	h.mu.Unlock()
	return h.PasswordHasher.Verify(ctx, password, encoded)
}

// done tells the hasher that one login has returned.
func (h *pacedHasher) done() {
	h.mu.Lock()
	h.finished++
	h.cond.Broadcast()
	h.mu.Unlock()
}

func TestLogin_ConcurrentAttemptsCheckAtMostLockAfterPasswords(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	if _, err := f.m.Signup(ctx, anon, account.SignupRequest{Email: "a@flood.test", Password: "right-password", Tenant: "flood"}); err != nil {
		t.Fatal(err)
	}
	const logins = 20
	h := newPacedHasher(f.m.Passwords, logins)
	f.m.Passwords = h
	results := make([]error, logins)
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() {
			defer h.done()
			password := "wrong-password"
			if i == 0 {
				password = "right-password" // as in the report: one right among many wrong
			}
			_, results[i] = f.m.Login(ctx, anon, account.LoginRequest{Email: "a@flood.test", Password: password, Tenant: "flood"})
		})
	}
	wg.Wait()
	if h.checked != account.LockAfter {
		t.Errorf("%d concurrent logins had %d passwords checked, want %d", logins, h.checked, account.LockAfter)
	}
	for i, err := range results {
		if err != nil && err != account.ErrInvalidCredentials && !errs.Is(err, "login_locked") {
			t.Errorf("login %d: %v", i, err)
		}
	}
}

func TestLogin_WithoutTenantChecksEachAccountOfTheEmail(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	// A victim's account, and an attacker's tenant opened with the victim's email; another
	// email has two accounts with one password.
	f.signup(t,
		account.SignupRequest{Email: "vic@mail.test", Password: "victim-password", Tenant: "victim-co"},
		account.SignupRequest{Email: "vic@mail.test", Password: "attacker-password", Tenant: "attacker-co"},
		account.SignupRequest{Email: "twice@mail.test", Password: "shared-password", Tenant: "first-co"},
		account.SignupRequest{Email: "twice@mail.test", Password: "shared-password", Tenant: "second-co"},
	)
	tests := []struct {
		name, email, password string
		wantTenant            string // "" when the login fails
		wantErr               string
	}{
		{"VictimsPasswordLogsIntoVictimsTenant", "vic@mail.test", "victim-password", "victim-co", ""},
		{"AttackersPasswordLogsIntoAttackersTenant", "vic@mail.test", "attacker-password", "attacker-co", ""},
		{"NoMatchIsInvalidCredentials", "vic@mail.test", "wrong-password", "", "invalid_credentials"},
		{"SeveralMatchesNeedATenant", "twice@mail.test", "shared-password", "", "tenant_required"},
		{"NoMatchOfSeveralIsInvalidCredentials", "twice@mail.test", "wrong-password", "", "invalid_credentials"},
		{"UnknownEmailIsInvalidCredentials", "nobody@mail.test", "wrong-password", "", "invalid_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair, err := f.m.Login(ctx, anon, account.LoginRequest{Email: tt.email, Password: tt.password})
			if tt.wantErr != "" {
				if !errs.Is(err, tt.wantErr) {
					t.Fatalf("login: %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if p, err := f.m.Keys.Verify(pair.AccessToken); err != nil || p.TenantID != tt.wantTenant {
				t.Fatalf("token %+v, %v; want tenant %s", p, err, tt.wantTenant)
			}
		})
	}
}

func TestLogin_WithoutTenantALockedAccountOfAnotherStandsNotInTheWay(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	f.signup(t,
		account.SignupRequest{Email: "vic@mail.test", Password: "victim-password", Tenant: "victim-co"},
		account.SignupRequest{Email: "vic@mail.test", Password: "attacker-password", Tenant: "attacker-co"},
	)
	for range account.LockAfter {
		_, _ = f.m.Login(ctx, anon, account.LoginRequest{Email: "vic@mail.test", Password: "wrong-password", Tenant: "attacker-co"})
	}
	victim := account.LoginRequest{Email: "vic@mail.test", Password: "victim-password"}
	if _, err := f.m.Login(ctx, anon, victim); err != nil {
		t.Fatalf("the victim's login beside a locked account of the attacker: %v", err)
	}
	// Attempts without a tenant count on every account they check: the victim's locks too, and
	// then even the right password meets the lock rather than a misleading invalid_credentials.
	var err error
	for range account.LockAfter {
		_, err = f.m.Login(ctx, anon, account.LoginRequest{Email: "vic@mail.test", Password: "wrong-password"})
	}
	if !errs.Is(err, "login_locked") {
		t.Fatalf("failure %d without a tenant: %v, want login_locked", account.LockAfter, err)
	}
	if _, err := f.m.Login(ctx, anon, victim); !errs.Is(err, "login_locked") {
		t.Fatalf("the victim's right password while locked: %v, want login_locked", err)
	}
}

func TestLogin_RefusedAsBusyDoesNotCountAsAFailure(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	if _, err := f.m.Signup(ctx, anon, account.SignupRequest{Email: "a@busy.test", Password: "right-password", Tenant: "busy"}); err != nil {
		t.Fatal(err)
	}
	hasher := f.m.Passwords
	f.m.Passwords = account.NewHasher(0) // no room in the queue: every check is refused
	for i := 0; i <= account.LockAfter; i++ {
		if _, err := f.m.Login(ctx, anon, account.LoginRequest{Email: "a@busy.test", Password: "right-password", Tenant: "busy"}); err != account.ErrBusy {
			t.Fatalf("attempt %d with a full hasher: %v, want busy", i+1, err)
		}
	}
	f.m.Passwords = hasher
	if _, err := f.m.Login(ctx, anon, account.LoginRequest{Email: "a@busy.test", Password: "right-password", Tenant: "busy"}); err != nil {
		t.Fatalf("the right password after %d busy refusals: %v", account.LockAfter+1, err)
	}
}

func TestLogin_WithoutTenantAnEmailWithMoreThanTenAccountsMustNameOne(t *testing.T) {
	f := newManager(t)
	ctx := context.Background()
	for i := range 11 {
		f.signup(t, account.SignupRequest{Email: "many@mail.test", Password: "many-password", Tenant: fmt.Sprintf("many-%02d", i)})
	}
	if _, err := f.m.Login(ctx, anon, account.LoginRequest{Email: "many@mail.test", Password: "many-password"}); err != account.ErrTenantRequired {
		t.Fatalf("login without a tenant of an email with 11 accounts: %v, want tenant_required", err)
	}
	if _, err := f.m.Login(ctx, anon, account.LoginRequest{Email: "many@mail.test", Password: "many-password", Tenant: "many-10"}); err != nil {
		t.Fatalf("login naming the tenant: %v", err)
	}
}
