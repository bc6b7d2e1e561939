package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/pflag"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
)

// `saasgate audit verify` against a data dir (the embedded FerretDB the app would start there):
// exit status 0 on an intact chain, 1 with the first bad link printed after an edit, 2 when it
// cannot check.
func TestAuditVerifyCommand_DataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := control.BackendConfig{Database: control.DefaultDatabase, DataDir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := control.OpenBackend(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := &audit.MongoStore{DB: b.DB}
	if err := st.CreateTenantCollections(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	log := &audit.Log{Store: st}
	for i := 0; i < 4; i++ {
		log.Record(ctx, "acme", identity.Actor{UserID: "usr_1"}, audit.ActionLogin, "usr_1", audit.OutcomeSuccess, nil)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (int, error) {
		t.Helper()
		fs := pflag.NewFlagSet("verify", pflag.ContinueOnError)
		auditVerifyFlags(fs)
		if err := fs.Parse(append(args, "--data-dir", dir)); err != nil {
			t.Fatal(err)
		}
		return cmdAuditVerify(caddycmd.Flags{FlagSet: fs})
	}
	if status, err := run("--tenant", "acme"); status != 0 || err != nil {
		t.Fatalf("intact chain: status %d, %v; want 0", status, err)
	}
	if status, err := run(); status != 2 || err == nil {
		t.Errorf("no tenant: status %d, %v; want 2 and an error", status, err)
	}

	b, err = control.OpenBackend(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.DB.C("t_acme_audit").UpdateOne(ctx, bson.D{{Key: "seq", Value: 3}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "outcome", Value: audit.OutcomeFailure}}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := auditVerify(ctx, &out, cfg, "acme"); !errors.Is(err, errChainBroken) || !strings.Contains(out.String(), "seq 3:") {
		t.Errorf("edited chain: %v, printed %q; want broken at seq 3", err, out.String())
	}
	if status, err := run("--tenant", "acme"); status != 1 || err == nil {
		t.Errorf("edited chain: status %d, %v; want 1", status, err)
	}
}
