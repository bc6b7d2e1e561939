package caddymodule

import (
	"strings"
	"testing"
)

// TestValidateConfig_MongoSettings: JSON configs get the same checks of the MongoDB driver
// settings as the Caddyfile (whose cases are in testdata/*mongo*.caddyfiletest).
func TestValidateConfig_MongoSettings(t *testing.T) {
	good := `{"mongo_pool_size": 20, "mongo_connect_timeout": "2s", "mongo_server_selection_timeout": "3s", "mongo_read_preference": "nearest"}`
	if err := validateConfig(unmarshalApp(t, good)); err != nil {
		t.Errorf("validateConfig refused %s: %v", good, err)
	}
	for json, want := range map[string]string{
		`{"mongo_read_preference": "Secondary"}`:    `mongo_read_preference: "Secondary" is not one of primary, primaryPreferred`,
		`{"mongo_pool_size": -1}`:                   "mongo_pool_size: -1 is not a positive integer",
		`{"mongo_connect_timeout": "-1s"}`:          "mongo_connect_timeout: -1s is not a positive duration",
		`{"mongo_server_selection_timeout": "-2s"}`: "mongo_server_selection_timeout: -2s is not a positive duration",
	} {
		err := validateConfig(unmarshalApp(t, json))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validateConfig(%s) = %v, want an error containing %q", json, err, want)
		}
	}
}
