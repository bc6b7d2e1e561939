package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
)

// `saasgate audit verify` over a shared-layout install: it reads the layout from the data, and
// checks one tenant's chain among others' in the shared collection.
func TestAuditVerifyCommand_SharedLayout(t *testing.T) {
	dir := t.TempDir()
	cfg := control.BackendConfig{Database: control.DefaultDatabase, DataDir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := control.OpenBackend(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := &audit.MongoStore{DB: b.DB, Layout: store.LayoutShared}
	if err := st.Init(ctx); err != nil {
		t.Fatal(err)
	}
	log := &audit.Log{Store: st}
	for i := 0; i < 4; i++ {
		for _, tenant := range []string{"acme", "bravo"} {
			log.Record(ctx, tenant, identity.Actor{UserID: "usr_1"}, audit.ActionLogin, "usr_1", audit.OutcomeSuccess, nil)
		}
	}
	if _, err := b.DB.C(store.SuffixAudit).UpdateOne(ctx, bson.D{{Key: "tenant_id", Value: "bravo"}, {Key: "seq", Value: 3}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "outcome", Value: audit.OutcomeFailure}}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := auditVerify(ctx, &out, cfg, "acme"); err != nil || !strings.Contains(out.String(), "ok: tenant acme, 4 entries") {
		t.Errorf("acme's chain: %v, printed %q; want 4 entries ok", err, out.String())
	}
	out.Reset()
	if err := auditVerify(ctx, &out, cfg, "bravo"); !errors.Is(err, errChainBroken) || !strings.Contains(out.String(), "seq 3:") {
		t.Errorf("bravo's edited chain: %v, printed %q; want broken at seq 3", err, out.String())
	}
}
