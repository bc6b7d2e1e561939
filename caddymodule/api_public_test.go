package caddymodule_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"testing"
)

// ---------------------------------------------------------------------------------------------
// 10. Public routes

func TestPublicRoutes_PlansHealthReadinessAndUnknownRoutes(t *testing.T) {
	s := startAPI(t)

	r := s.Do(t, "GET", "/plans", "", nil)
	mustStatus(t, r, http.StatusOK)
	var got struct {
		Plans []map[string]any `json:"plans"`
	}
	if err := json.Unmarshal(r.Raw, &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"id": "free", "name": "Free", "rate": "60/1m", "burst": float64(60), "purchasable": false, "default": true},
		{"id": "pro", "name": "Pro", "rate": "20/1s", "burst": float64(50), "quota": float64(100000), "purchasable": false, "default": false},
	}
	if len(got.Plans) != len(want) {
		t.Fatalf("plans %s, want %v", r.Raw, want)
	}
	for i := range want {
		if !maps.Equal(got.Plans[i], want[i]) {
			t.Errorf("plan %d = %v, want %v", i, got.Plans[i], want[i])
		}
	}

	h := s.Do(t, "GET", "/healthz", "", nil)
	if wantStatus(t, h, http.StatusOK) && h.Str("status") != "ok" {
		t.Errorf("/healthz %s", h.Raw)
	}
	rd := s.Do(t, "GET", "/readyz", "", nil)
	if wantStatus(t, rd, http.StatusOK) && (rd.Str("status") != "ready" || rd.Obj("checks")["mongo"] != "ok") {
		t.Errorf("/readyz %s, want status ready and checks.mongo ok", rd.Raw)
	}

	for _, tt := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/"},
		{"POST", "/plans/extra"},
		{"GET", "/auth/signup/x"},
	} {
		wantProblem(t, s.Do(t, tt.method, tt.path, "", nil), http.StatusNotFound, "not_found")
	}
}
