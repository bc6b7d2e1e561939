package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
	"go.mongodb.org/mongo-driver/bson"
)

// ---------------------------------------------------------------------------------------------
// 1. Signup

func TestSignup_NewTenantIsCreatedWithTheCallerAsOwner(t *testing.T) {
	s := startAPI(t)

	r := s.Signup(t, "Founder@Globex.test", testenv.Password, "Globex Corporation", "")
	mustStatus(t, r, http.StatusCreated)
	// The contract's body, plus the role the account got (an allowed extra).
	if _, ok := r.Body["role"]; ok {
		wantKeys(t, r, "message", "user_id", "tenant_id", "role")
	} else {
		wantKeys(t, r, "message", "user_id", "tenant_id")
	}
	if r.Str("message") != "User registered successfully." {
		t.Errorf("message %q", r.Str("message"))
	}
	if r.Str("tenant_id") != "globex-corporation" {
		t.Errorf("tenant_id %q, want the slug globex-corporation", r.Str("tenant_id"))
	}
	if role, ok := r.Body["role"]; ok && role != "owner" {
		t.Errorf("role %v, want owner", role)
	}
	userID := r.Str("user_id")
	if userID == "" {
		t.Fatal("no user_id")
	}

	pair := s.MustLogin(t, "founder@globex.test", "globex-corporation")
	me := s.Do(t, "GET", "/me", pair.Access, nil)
	mustStatus(t, me, http.StatusOK)
	if me.Str("user_id") != userID || me.Str("role") != "owner" || me.Str("tenant_id") != "globex-corporation" ||
		me.Str("email") != "founder@globex.test" {
		t.Errorf("GET /me = %s", me.Raw)
	}
	tr := s.Do(t, "GET", "/tenants/globex-corporation", pair.Access, nil)
	mustStatus(t, tr, http.StatusOK)
	if tr.Str("name") != "Globex Corporation" || tr.Str("status") != "active" || tr.Str("plan") != "free" {
		t.Errorf("new tenant = %s, want name \"Globex Corporation\", status active, plan free", tr.Raw)
	}
}

func TestSignup_ExistingTenantNeedsAnInvitationForTheCallersEmail(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "initech")
	other := s.NewTenant(t, "umbrella")

	wantProblem(t, s.Signup(t, "peter@initech.test", testenv.Password, "initech", ""), http.StatusForbidden, "invitation_required")
	wantProblem(t, s.Signup(t, "peter@initech.test", testenv.Password, "initech", "inv_unknown"), http.StatusForbidden, "invalid_invitation")
	wantProblem(t, s.Signup(t, "peter@initech.test", testenv.Password, "initech", strings.Repeat("x", 200)), http.StatusForbidden, "invalid_invitation")

	inv := s.MustInvite(t, f.OwnerAccess, "initech", "peter@initech.test", "")
	wantProblem(t, s.Signup(t, "milton@initech.test", testenv.Password, "initech", inv), http.StatusForbidden, "invalid_invitation")
	// An invitation of one tenant does not open another.
	wantProblem(t, s.Signup(t, "peter@initech.test", testenv.Password, "umbrella", inv), http.StatusForbidden, "invalid_invitation")
	if got := s.users(t, other.OwnerAccess, "umbrella"); len(got) != 2 {
		t.Errorf("umbrella has %d users after a foreign invitation was tried, want 2", len(got))
	}

	// The refused attempts did not spend the invitation.
	r := s.Signup(t, "Peter@Initech.test", testenv.Password, "initech", inv)
	mustStatus(t, r, http.StatusCreated)
	if r.Str("role") != "user" || r.Str("tenant_id") != "initech" {
		t.Errorf("invited signup = %s, want role user in initech", r.Raw)
	}
	claims := parseAccess(t, s.MustLogin(t, "peter@initech.test", "initech").Access)
	if claims["role"] != "user" || claims["tid"] != "initech" || claims["sub"] != r.Str("user_id") {
		t.Errorf("invited user's token claims %v", claims)
	}

	// An owner invitation makes an owner.
	ownerInv := s.MustInvite(t, f.OwnerAccess, "initech", "bill@initech.test", "owner")
	r = s.Signup(t, "bill@initech.test", testenv.Password, "initech", ownerInv)
	mustStatus(t, r, http.StatusCreated)
	if r.Str("role") != "owner" {
		t.Errorf("signup through an owner invitation gave role %q", r.Str("role"))
	}
	if got := s.users(t, f.OwnerAccess, "initech"); len(got) != 4 || got[r.Str("user_id")] != "owner" {
		t.Errorf("initech users %v, want 4 with %s an owner", got, r.Str("user_id"))
	}
	// Owners may only invite users or owners.
	wantProblem(t, s.Do(t, "POST", "/tenants/initech/invitations", f.OwnerAccess,
		map[string]string{"email": "x@initech.test", "role": "admin"}), http.StatusUnprocessableEntity, "invalid_role")
}

func TestSignup_InvitationIsSingleUse(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "hooli")
	db := s.store(t)

	inv := s.MustInvite(t, f.OwnerAccess, "hooli", "gavin@hooli.test", "user")
	mustStatus(t, s.Signup(t, "gavin@hooli.test", testenv.Password, "hooli", inv), http.StatusCreated)
	// The same email comes back with the same invitation: it is spent, and no second account
	// appears.
	wantProblem(t, s.Signup(t, "gavin@hooli.test", "another-password", "hooli", inv), http.StatusForbidden, "invalid_invitation")
	if got := s.users(t, f.OwnerAccess, "hooli"); len(got) != 3 {
		t.Errorf("hooli has %d users, want 3", len(got))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := db.C("t_hooli_invitations").CountDocuments(ctx, bson.D{{Key: "email", Value: "gavin@hooli.test"}, {Key: "used_at", Value: nil}})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d unused invitations for gavin@hooli.test remain after the signup, want 0", n)
	}

	// Two signups racing on one invitation: exactly one account.
	for round := range 3 {
		email := fmt.Sprintf("racer%d@hooli.test", round)
		inv := s.MustInvite(t, f.OwnerAccess, "hooli", email, "user")
		var wg sync.WaitGroup
		results := make([]testenv.Response, 2)
		errs := make([]error, 2)
		for i := range results {
			wg.Go(func() {
				results[i], errs[i] = s.Send("POST", "/auth/signup", "", testenv.SignupBody(email, testenv.Password, "hooli", inv))
			})
		}
		wg.Wait()
		created := 0
		for i, r := range results {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			switch {
			case r.Status == http.StatusCreated:
				created++
			case r.Status == http.StatusForbidden && r.Str("code") == "invalid_invitation",
				r.Status == http.StatusConflict && r.Str("code") == "email_taken":
			default:
				t.Errorf("racing signup: %v", r)
			}
		}
		if created != 1 {
			t.Errorf("round %d: %d racing signups on one invitation succeeded, want 1", round, created)
		}
	}
}

func TestSignup_EmailAlreadyInTheTenantIsAConflict(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "pied-piper")

	// Inviting an email that already has an account is refused by the invite call itself.
	for _, email := range []string{f.OwnerEmail, f.UserEmail, strings.ToUpper(f.UserEmail)} {
		wantProblem(t, s.Do(t, "POST", "/tenants/pied-piper/invitations", f.OwnerAccess,
			map[string]string{"email": email, "role": "user"}), http.StatusConflict, "email_taken")
	}
	// Two invitations for one new email: the second signup meets the existing account.
	first := s.MustInvite(t, f.OwnerAccess, "pied-piper", "jared@pied-piper.test", "user")
	second := s.MustInvite(t, f.OwnerAccess, "pied-piper", "jared@pied-piper.test", "owner")
	mustStatus(t, s.Signup(t, "jared@pied-piper.test", testenv.Password, "pied-piper", first), http.StatusCreated)
	wantProblem(t, s.Signup(t, "Jared@Pied-Piper.test", testenv.Password, "pied-piper", second), http.StatusConflict, "email_taken")
	users := s.users(t, f.OwnerAccess, "pied-piper")
	if len(users) != 3 {
		t.Errorf("pied-piper users %v, want 3", users)
	}
	// The owner's own email in its own tenant, without an invitation, is told to get one.
	wantProblem(t, s.Signup(t, f.OwnerEmail, testenv.Password, "pied-piper", ""), http.StatusForbidden, "invitation_required")
}

func TestSignup_BadInvitationAnswersAlikeForTakenAndFreeEmails(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "vandelay")
	foreign := s.MustInvite(t, f.OwnerAccess, "vandelay", "art@vandelay.test", "user")
	invites := []struct{ name, token string }{
		{"Unknown", "inv_unknown"}, {"AnotherEmails", foreign}, {"Oversized", strings.Repeat("x", 200)}}
	emails := []struct{ name, email string }{{"Taken", f.UserEmail}, {"Free", "free@vandelay.test"}}
	for _, inv := range invites {
		for _, e := range emails {
			t.Run(inv.name+"Invitation/"+e.name+"Email", func(t *testing.T) {
				wantProblem(t, s.Signup(t, e.email, testenv.Password, "vandelay", inv.token), http.StatusForbidden, "invalid_invitation")
			})
		}
	}
}

func TestSignup_PasswordLengthIsEightToOneHundredTwentyEightCharacters(t *testing.T) {
	s := startAPI(t)
	tests := []struct {
		name     string
		password string
		want     int
	}{
		{"SevenCharacters", "1234567", http.StatusUnprocessableEntity},
		{"SevenMultiByteCharacters", "ääääääää"[:14], http.StatusUnprocessableEntity},
		{"EightCharacters", "12345678", http.StatusCreated},
		{"EightMultiByteCharacters", "pässwörd", http.StatusCreated},
		{"OneHundredTwentyEight", strings.Repeat("p", 128), http.StatusCreated},
		{"OneHundredTwentyNine", strings.Repeat("p", 129), http.StatusUnprocessableEntity},
		{"Empty", "", http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := "pw-" + strings.ToLower(tt.name)
			r := s.Signup(t, "someone@pw.test", tt.password, tenant, "")
			if tt.want == http.StatusCreated {
				wantStatus(t, r, http.StatusCreated)
				testenv.PairOf(t, s.Login(t, "someone@pw.test", tt.password, tenant))
				return
			}
			wantProblem(t, r, tt.want, "weak_password")
			wantProblem(t, s.Do(t, "GET", "/tenants/"+tenant, s.AdminToken(t), nil), http.StatusNotFound, "tenant_not_found")
		})
	}
}

func TestSignup_InvalidOrReservedTenantIsRefused(t *testing.T) {
	s := startAPI(t)
	tests := []struct{ tenant, code string }{
		{"api", "tenant_reserved"},
		{"www", "tenant_reserved"},
		{"admin", "tenant_reserved"},
		{"system", "tenant_reserved"},
		{"mail", "tenant_reserved"},
		{"API", "tenant_reserved"},
		{"a", "invalid_tenant"},
		{"ab", "invalid_tenant"},
		{"", "invalid_tenant"},
		{"---", "invalid_tenant"},
		{"日本語", "invalid_tenant"},
		{strings.Repeat("a", 64), "invalid_tenant"},
		{strings.Repeat("abcdefgh-", 8), "invalid_tenant"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.tenant), func(t *testing.T) {
			wantProblem(t, s.Signup(t, "x@bad-names.test", testenv.Password, tt.tenant, ""), http.StatusUnprocessableEntity, tt.code)
		})
	}
	if ids := s.tenantIDs(t, s.AdminToken(t)); len(ids) != 0 {
		t.Errorf("tenants after refused signups: %v, want none", ids)
	}
	// The longest valid id is fine.
	long := strings.Repeat("z", 63)
	r := s.Signup(t, "x@long.test", testenv.Password, long, "")
	if wantStatus(t, r, http.StatusCreated) && r.Str("tenant_id") != long {
		t.Errorf("tenant_id %q, want %q", r.Str("tenant_id"), long)
	}
}

// A signup's tenant is a display name whose slug is the id, like POST /tenants' tenant_name:
// leading and trailing separators go, inner runs become one dash. So "-bad-" is not refused:
// it names the tenant "bad".
func TestSignup_TenantIsTheSlugOfTheGivenName(t *testing.T) {
	s := startAPI(t)
	for _, tt := range []struct{ name, id string }{
		{"-bad-", "bad"},
		{"  Wayne   Enterprises!! ", "wayne-enterprises"},
		{"Stark_Industries", "stark-industries"},
	} {
		r := s.Signup(t, "x@slug.test", testenv.Password, tt.name, "")
		if wantStatus(t, r, http.StatusCreated) && r.Str("tenant_id") != tt.id {
			t.Errorf("signup with tenant %q: tenant_id %q, want %q", tt.name, r.Str("tenant_id"), tt.id)
		}
	}
	// Another spelling of an existing tenant's name reaches that tenant: joining needs an invitation.
	wantProblem(t, s.Signup(t, "y@slug.test", testenv.Password, "Wayne Enterprises", ""), http.StatusForbidden, "invitation_required")
}

func TestSignup_MalformedBodyIsABadRequestAndStoresNothing(t *testing.T) {
	s := startAPI(t)
	valid := func(name string) string {
		return fmt.Sprintf(`"email":"%s@bad.test","password":"password-123","tenant":"%s-co"`, name, name)
	}
	tests := []struct {
		name string // also the email local part and the tenant prefix the body would create
		body string
	}{
		{"unknown", `{` + valid("unknown") + `,"is_admin":true}`},
		{"wrongtype", `{` + valid("wrongtype") + `,"invite_token":5}`},
		{"operator", `{"email":"operator@bad.test","password":{"$ne":""},"tenant":"operator-co"}`},
		{"operatoremail", `{"email":{"$gt":""},"password":"password-123","tenant":"operatoremail-co"}`},
		{"truncated", `{` + valid("truncated")},
		{"syntax", `{` + valid("syntax") + `,}`},
		{"twoobjects", `{` + valid("twoobjects") + `}{"email":"x@y.test"}`},
		{"trailing", `{` + valid("trailing") + `} garbage`},
		{"array", `[{` + valid("array") + `}]`},
		{"toolarge", `{` + valid("toolarge") + `,"invite_token":"` + strings.Repeat("a", 1<<20) + `"}`},
		{"empty", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, s.Do(t, "POST", "/auth/signup", "", tt.body), http.StatusBadRequest, "bad_request")
		})
	}

	admin := s.AdminToken(t)
	if ids := s.tenantIDs(t, admin); len(ids) != 0 {
		t.Errorf("tenants after malformed signups: %v, want none", ids)
	}
	for _, tt := range tests {
		wantProblem(t, s.Do(t, "GET", "/tenants/"+tt.name+"-co", admin, nil), http.StatusNotFound, "tenant_not_found")
		wantProblem(t, s.Login(t, tt.name+"@bad.test", "password-123", ""), http.StatusUnauthorized, "invalid_credentials")
	}
}

func TestSignup_BodyOfExactlyOneMebibyteIsAccepted(t *testing.T) {
	s := startAPI(t)
	obj := `{"email":"big@big.test","password":"password-123","tenant":"big-co"}`
	pad := (1 << 20) - len(obj)
	mustStatus(t, s.Do(t, "POST", "/auth/signup", "", strings.Repeat(" ", pad)+obj), http.StatusCreated)
	wantProblem(t, s.Do(t, "POST", "/auth/signup", "", strings.Repeat(" ", pad+1)+
		`{"email":"big@big2.test","password":"password-123","tenant":"big2-co"}`), http.StatusBadRequest, "bad_request")
}

func TestAPI_MalformedBodiesOnEveryBodyRouteAreBadRequests(t *testing.T) {
	s := startAPI(t)
	f := s.NewTenant(t, "soylent")
	admin := s.AdminToken(t)
	tests := []struct {
		method, path, token, body string
	}{
		{"POST", "/auth/login", "", `{"email":"owner@soylent.test","password":{"$ne":""}}`},
		{"POST", "/auth/login", "", `{"email":"owner@soylent.test","password":"x","mfa":1}`},
		{"POST", "/auth/refresh", "", `{"refresh_token":{"$ne":""}}`},
		{"POST", "/auth/logout", f.UserAccess, `{"refresh_token":7}`},
		{"POST", "/tenants", admin, `{"tenant_name":"Evil","admin_email":"e@evil.test","plan":"pro"}`},
		{"PATCH", "/tenants/soylent", admin, `{"status":["suspended"]}`},
		{"POST", "/tenants/soylent/invitations", f.OwnerAccess, `{"email":"a@soylent.test","role":"user"}{}`},
		{"PATCH", "/tenants/soylent/users/" + f.UserID, f.OwnerAccess, `{"role":{"$set":"admin"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			wantProblem(t, s.Do(t, tt.method, tt.path, tt.token, tt.body), http.StatusBadRequest, "bad_request")
		})
	}
	if got := s.users(t, f.OwnerAccess, "soylent"); got[f.UserID] != "user" || len(got) != 2 {
		t.Errorf("soylent users after malformed requests: %v", got)
	}
	if ids := s.tenantIDs(t, admin); !slices.Equal(ids, []string{"soylent"}) {
		t.Errorf("tenants %v, want [soylent]", ids)
	}
	tr := s.Do(t, "GET", "/tenants/soylent", admin, nil)
	if tr.Str("status") != "active" {
		t.Errorf("soylent after a malformed PATCH: %s", tr.Raw)
	}
}
