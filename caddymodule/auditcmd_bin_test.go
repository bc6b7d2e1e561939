package caddymodule_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/internal/testenv"
)

// The built binary's `audit verify` over a data dir: the command is registered, and its exit
// status is 0 for an intact chain and 1, with the first bad link printed, for an edited one.
func TestAuditVerifyCommand_BuiltBinaryExitStatus(t *testing.T) {
	bin := os.Getenv(testenv.BinEnv)
	if bin == "" {
		t.Fatalf("%s is not set: run `make build` and export %s=$PWD/bin/saasgate (the Makefile does)", testenv.BinEnv, testenv.BinEnv)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	withBackend := func(f func(b *control.Backend)) {
		t.Helper()
		b, err := control.OpenBackend(ctx, control.BackendConfig{Database: control.DefaultDatabase, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		f(b)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	withBackend(func(b *control.Backend) {
		st := &audit.MongoStore{DB: b.DB}
		if err := st.CreateTenantCollections(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		log := &audit.Log{Store: st}
		for i := 0; i < 3; i++ {
			log.Record(ctx, "acme", identity.Actor{UserID: "usr_1"}, audit.ActionLogout, "usr_1", audit.OutcomeSuccess, nil)
		}
	})
	verify := func() (int, string) {
		t.Helper()
		out, err := exec.CommandContext(ctx, bin, "audit", "verify", "--tenant", "acme", "--data-dir", dir).CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if status, out := verify(); status != 0 || !strings.Contains(out, "ok: tenant acme, 3 entries") {
		t.Fatalf("intact chain: exit %d: %s", status, out)
	}
	withBackend(func(b *control.Backend) {
		if _, err := b.DB.C("t_acme_audit").DeleteOne(ctx, bson.D{{Key: "seq", Value: 2}}); err != nil {
			t.Fatal(err)
		}
	})
	if status, out := verify(); status != 1 || !strings.Contains(out, "broken: tenant acme, seq 2: missing") {
		t.Fatalf("chain without seq 2: exit %d: %s", status, out)
	}
}
