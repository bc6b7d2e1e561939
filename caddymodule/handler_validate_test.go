package caddymodule

import (
	"strings"
	"testing"
)

// The handlers' Validate is the one check of their values: JSON configs reach it at load, and
// the Caddyfile parser calls it (testdata/error_saas_tenant_*, error_saas_auth_bad_role).

func TestTenant_ValidateChecksTheSources(t *testing.T) {
	tests := []struct {
		name    string
		sources []string
		wantErr string // empty: valid
	}{
		{"NoneMeansBoth", nil, ""},
		{"Subdomain", []string{"subdomain"}, ""},
		{"Header", []string{"header"}, ""},
		{"BothInAnyOrder", []string{"header", "subdomain"}, ""},
		{"UnknownSource", []string{"subdomain", "cookie"}, `saas_tenant: unknown source "cookie" (want subdomain or header)`},
		{"SourceTwice", []string{"header", "subdomain", "header"}, `saas_tenant: source "header" given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidateError(t, (&Tenant{Sources: tt.sources}).Validate(), tt.wantErr)
		})
	}
}

func TestAuth_ValidateChecksTheRole(t *testing.T) {
	tests := []struct {
		name    string
		role    string
		wantErr string // empty: valid
	}{
		{"UnsetMeansUser", "", ""},
		{"User", "user", ""},
		{"Owner", "owner", ""},
		{"Admin", "admin", ""},
		{"UnknownRole", "root", `saas_auth: require_role "root": want user, owner or admin`},
		{"RolesAreLowerCase", "Admin", `saas_auth: require_role "Admin": want user, owner or admin`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidateError(t, (&Auth{RequireRole: tt.role}).Validate(), tt.wantErr)
		})
	}
}

func checkValidateError(t *testing.T, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("Validate: %v, want no error", err)
	case wantErr != "" && err == nil:
		t.Fatalf("Validate succeeded, want an error containing %q", wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Fatalf("Validate: %v, want an error containing %q", err, wantErr)
	}
}
