package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/store"
)

// storedChain is tenantID's audit entries as stored, newest first: the ground truth the
// API's answers are checked against.
func storedChain(t *testing.T, db *store.DB, tenantID string) []audit.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cur, err := db.C("t_"+tenantID+"_audit").Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	if err := cur.All(ctx, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// auditPages reads every page of path (limit 3, so that paging is exercised) and returns the
// ids in order, failing on an id seen twice; status is the first page's.
func auditPages(t *testing.T, s *apiServer, path, token string) (ids []string, status int) {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	cursor := ""
	seen := map[string]bool{}
	for page := 0; page < 100; page++ {
		q := path + sep + "limit=3"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := s.Do(t, "GET", q, token, nil)
		if r.Status != http.StatusOK {
			if page > 0 {
				t.Fatalf("page %d: %v", page, r)
			}
			return nil, r.Status
		}
		entries, ok := r.Body["entries"].([]any)
		if !ok {
			t.Fatalf("%v: no entries array", r)
		}
		for _, e := range entries {
			id, _ := e.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("%s: entry %s on two pages", path, id)
			}
			seen[id] = true
			ids = append(ids, id)
		}
		if cursor = r.Str("next_cursor"); cursor == "" {
			return ids, http.StatusOK
		}
	}
	t.Fatalf("%s: more than 100 pages", path)
	return nil, 0
}

// export reads the NDJSON export of path and returns the ids of its lines in order.
func export(t *testing.T, s *apiServer, path, token string) []string {
	t.Helper()
	r := s.Do(t, "GET", path, token, nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%s: %d %s %s", path, r.Status, r.Header.Get("Content-Type"), r.Raw)
	}
	ids := []string{}
	for _, line := range bytes.Split(bytes.TrimSpace(r.Raw), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e audit.Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, line, err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// Who sees what, across every filter: an admin every tenant's entries, an owner their
// tenant's, a user their own actions only (whatever actor they ask for), another tenant's
// members nothing (403). Pages cover every entry once, newest first, and the export holds the
// same entries as the list.
func TestAuditLog_VisibilityAcrossEveryFilter(t *testing.T) {
	s := startAPI(t)
	admin := s.AdminToken(t)
	alpha := s.NewTenant(t, "alpha")
	beta := s.NewTenant(t, "beta")
	wantProblem(t, s.Login(t, alpha.UserEmail, "wrong-password", "alpha"), http.StatusUnauthorized, "invalid_credentials")
	mustStatus(t, s.Do(t, "POST", "/auth/logout", alpha.UserAccess, nil), http.StatusNoContent)
	alpha.UserAccess = s.MustLogin(t, alpha.UserEmail, "alpha").Access
	mustStatus(t, s.Do(t, "PATCH", "/tenants/alpha/users/"+alpha.UserID, alpha.OwnerAccess, map[string]string{"role": "user"}), http.StatusOK)

	chain := storedChain(t, s.store(t), "alpha")
	if len(chain) < 8 {
		t.Fatalf("only %d entries in alpha's chain", len(chain))
	}
	middle := chain[len(chain)/2].Time
	filters := []struct {
		query string
		match func(audit.Entry) bool
	}{
		{"", func(audit.Entry) bool { return true }},
		{"action=auth.login", func(e audit.Entry) bool { return e.Action == "auth.login" }},
		{"actor=" + alpha.OwnerID, func(e audit.Entry) bool { return e.ActorID == alpha.OwnerID }},
		{"actor=" + alpha.UserID, func(e audit.Entry) bool { return e.ActorID == alpha.UserID }},
		{"outcome=failure", func(e audit.Entry) bool { return e.Outcome == "failure" }},
		{"from=" + middle.Format(time.RFC3339Nano), func(e audit.Entry) bool { return !e.Time.Before(middle) }},
		{"to=" + middle.Format(time.RFC3339Nano), func(e audit.Entry) bool { return e.Time.Before(middle) }},
		{"action=auth.login&outcome=success", func(e audit.Entry) bool { return e.Action == "auth.login" && e.Outcome == "success" }},
		{"action=no.such.action", func(audit.Entry) bool { return false }},
	}
	callers := []struct {
		name, token string
		sees        func(audit.Entry) bool // nil: refused
	}{
		{"admin", admin, func(audit.Entry) bool { return true }},
		{"owner", alpha.OwnerAccess, func(audit.Entry) bool { return true }},
		{"user", alpha.UserAccess, func(e audit.Entry) bool { return e.ActorID == alpha.UserID }},
		{"other tenant's owner", beta.OwnerAccess, nil},
		{"other tenant's user", beta.UserAccess, nil},
	}
	for _, c := range callers {
		for _, f := range filters {
			t.Run(c.name+"/"+f.query, func(t *testing.T) {
				path := "/tenants/alpha/audit-logs?" + f.query
				ids, status := auditPages(t, s, path, c.token)
				if c.sees == nil {
					if status != http.StatusForbidden {
						t.Fatalf("status %d, want 403", status)
					}
					wantProblem(t, s.Do(t, "GET", "/tenants/alpha/audit-logs/export?"+f.query, c.token, nil), http.StatusForbidden, "forbidden")
					return
				}
				want := []string{}
				for _, e := range chain {
					if c.sees(e) && f.match(e) {
						want = append(want, e.ID)
					}
				}
				if !slices.Equal(ids, want) && !(len(ids) == 0 && len(want) == 0) {
					t.Errorf("listed %v\nwant     %v", ids, want)
				}
				if got := export(t, s, "/tenants/alpha/audit-logs/export?"+f.query, c.token); !slices.Equal(got, want) {
					t.Errorf("exported %v\nwant       %v", got, want)
				}
			})
		}
	}
	// An empty result is an empty list.
	r := s.Do(t, "GET", "/tenants/alpha/audit-logs?action=no.such.action", alpha.OwnerAccess, nil)
	if !bytes.Contains(r.Raw, []byte(`"entries":[]`)) {
		t.Errorf("%v; want an empty entries list", r)
	}
	// The user's own actions exist, so the forced filter is tested on something.
	if ids, _ := auditPages(t, s, "/tenants/alpha/audit-logs", alpha.UserAccess); len(ids) == 0 {
		t.Error("the user sees no entry of their own")
	}
}

func TestAuditLog_BadQueriesAreRefused(t *testing.T) {
	s := startAPI(t)
	alpha := s.NewTenant(t, "alpha")
	for _, q := range []string{"cursor=garbage", "limit=0", "limit=501", "limit=x", "from=yesterday", "to=2026-13-01"} {
		wantProblem(t, s.Do(t, "GET", "/tenants/alpha/audit-logs?"+q, alpha.OwnerAccess, nil), http.StatusBadRequest, "bad_request")
	}
	wantUnauthenticated(t, s.Do(t, "GET", "/tenants/alpha/audit-logs", "", nil))
}

// The verify route: admins and owners; it reports the first broken link after an edit in the
// database.
func TestAuditLog_VerifyRouteFindsAnEditedEntry(t *testing.T) {
	s := startAPI(t)
	admin := s.AdminToken(t)
	alpha := s.NewTenant(t, "alpha")
	beta := s.NewTenant(t, "beta")
	for _, c := range []struct {
		name, token string
		status      int
	}{{"admin", admin, 200}, {"owner", alpha.OwnerAccess, 200}, {"user", alpha.UserAccess, 403}, {"other owner", beta.OwnerAccess, 403}} {
		r := s.Do(t, "GET", "/tenants/alpha/audit-logs/verify", c.token, nil)
		if r.Status != c.status {
			t.Errorf("%s: %v; want %d", c.name, r, c.status)
		} else if c.status == 200 && r.Body["ok"] != true {
			t.Errorf("%s: %v; want ok", c.name, r)
		}
	}
	db := s.store(t)
	if _, err := db.C("t_alpha_audit").UpdateOne(context.Background(), bson.D{{Key: "seq", Value: 2}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "outcome", Value: "failure"}}}}); err != nil {
		t.Fatal(err)
	}
	r := s.Do(t, "GET", "/tenants/alpha/audit-logs/verify", alpha.OwnerAccess, nil)
	if r.Body["ok"] != false || r.Obj("broken")["seq"] != float64(2) {
		t.Errorf("%v; want broken at seq 2", r)
	}
	if r := s.Do(t, "GET", "/tenants/beta/audit-logs/verify", admin, nil); r.Body["ok"] != true {
		t.Errorf("beta: %v; want ok", r)
	}
}
