package caddymodule

import "testing"

// The Caddyfile cases are testdata/saas_api_cors and error_saas_api_cors_*; these are the JSON
// config's, which reaches Validate without the parser.
func TestAPIHandler_ValidateAcceptsOnlyExplicitOrigins(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		wantErr string // empty: valid
	}{
		{"NoneByDefault", nil, ""},
		{"HTTPSAndHTTPWithPort", []string{"https://app.example.com", "http://localhost:3000"}, ""},
		{"IPv6", []string{"http://[::1]:8080"}, ""},
		{"Wildcard", []string{"*"}, "no wildcard"},
		{"WildcardHost", []string{"https://*.example.com"}, "no wildcard"},
		{"Null", []string{"null"}, "want http:// or https://"},
		{"NoScheme", []string{"app.example.com"}, "want http:// or https://"},
		{"TrailingSlash", []string{"https://app.example.com/"}, "no path"},
		{"Path", []string{"https://app.example.com/app"}, "no path"},
		{"Query", []string{"https://app.example.com?x=1"}, "no path, query"},
		{"UserInfo", []string{"https://me@app.example.com"}, "user info"},
		{"UpperCase", []string{"HTTPS://app.example.com"}, "lower case"},
		{"Twice", []string{"https://app.example.com", "https://app.example.com"}, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidateError(t, (&APIHandler{CORSOrigins: tt.origins}).Validate(), tt.wantErr)
		})
	}
}
