package token

import "testing"

func TestBearer_TakesTheTokenOfTheBearerSchemeOnly(t *testing.T) {
	for _, tc := range []struct {
		header, raw string
		ok          bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER   abc  ", "abc", true},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Bearer", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	} {
		raw, ok := Bearer(tc.header)
		if raw != tc.raw || ok != tc.ok {
			t.Errorf("Bearer(%q) = %q, %v; want %q, %v", tc.header, raw, ok, tc.raw, tc.ok)
		}
	}
}
