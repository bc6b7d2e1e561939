package audit_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
)

// Entries written before the chain existed (no seq, in a collection without the unique index)
// are numbered below zero on the first append: the chain starts at 1 and verifies, and the
// old entries are still listed, after the chained ones, and reached by the cursor.
func TestChain_EntriesFromBeforeTheChainAreNumberedOutsideIt(t *testing.T) {
	f := newChain(t)
	ctx := context.Background()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"aud_old1", "aud_old2", "aud_old3"} {
		if _, err := f.db.C(f.coll("acme")).InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant_id", Value: "acme"},
			{Key: "time", Value: old.Add(time.Duration(i) * time.Hour)}, {Key: "action", Value: audit.ActionLogin}, {Key: "outcome", Value: "success"}}); err != nil {
			t.Fatal(err)
		}
	}
	f.record(2, "acme")
	if v := f.verify(t, "acme"); !v.OK || v.Checked != 2 || v.HeadSeq != 2 {
		t.Fatalf("%+v (broken %+v), want ok with 2 chained entries", v, v.Broken)
	}
	owner := identity.Principal{UserID: "usr_1", TenantID: "acme", Role: identity.RoleOwner}
	var got []string
	filter := audit.Filter{Limit: 2}
	for page := 0; page < 5; page++ {
		p, err := f.log.List(ctx, owner, "acme", filter)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			got = append(got, e.ID)
		}
		if p.NextCursor == "" {
			break
		}
		if filter.Before, err = audit.DecodeCursor(p.NextCursor); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 5 || got[2] != "aud_old3" || got[3] != "aud_old2" || got[4] != "aud_old1" {
		t.Errorf("listed %v, want the 2 chained entries then aud_old3, aud_old2, aud_old1", got)
	}
}
