package control_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/control"
)

func TestLoadOrCreateSecret_RefusesAFileGroupOrOthersCanRead(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		mode    os.FileMode
		refused bool
	}{
		{0o600, false},
		{0o400, false},
		{0o640, true},
		{0o604, true},
		{0o644, true},
		{0o660, true},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "jwt_secret")
			if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			got, err := control.LoadOrCreateSecret(dir)
			if tc.refused {
				if err == nil || !strings.Contains(err.Error(), "readable by group or others") || strings.Contains(err.Error(), secret) {
					t.Fatalf("err = %v, want a refusal that does not repeat the secret", err)
				}
				return
			}
			if err != nil || string(got) != secret {
				t.Fatalf("LoadOrCreateSecret = %q, %v", got, err)
			}
		})
	}
}

func TestLoadOrCreateSecret_CreatesAnOwnerOnlyFileAndReadsItBack(t *testing.T) {
	dir := t.TempDir()
	first, err := control.LoadOrCreateSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, "jwt_secret"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("created file: %v, %v; want mode 0600", info, err)
	}
	again, err := control.LoadOrCreateSecret(dir)
	if err != nil || string(again) != string(first) {
		t.Fatalf("second load = %q, %v; want the created secret", again, err)
	}
}
