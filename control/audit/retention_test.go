package audit_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
)

// Retention deletes the old entries and anchors the chain where they end: verify passes from
// the anchor, appends continue the chain, and tampering after the anchor is still found.
func TestRetention_SweptChainStillVerifiesAndTamperingAfterTheAnchorIsFound(t *testing.T) {
	f := newChain(t, "acme")
	f.record(10, "acme") // one a minute
	ctx := context.Background()
	// The clock stands a minute after entry 10: entries 1..5 are older than 5 minutes.
	moved, err := f.log.Sweep(ctx, "acme", 5*time.Minute)
	if err != nil || moved != 5 {
		t.Fatalf("sweep moved the anchor by %d (%v), want 5", moved, err)
	}
	if n, _ := f.db.C(f.coll("acme")).CountDocuments(ctx, bson.D{}); n != 5 {
		t.Errorf("%d entries left, want 5", n)
	}
	v := f.verify(t, "acme")
	if !v.OK || v.AnchorSeq != 5 || v.HeadSeq != 10 || v.Checked != 5 {
		t.Fatalf("after the sweep: %+v (broken %+v), want ok from anchor 5 to 10", v, v.Broken)
	}
	f.record(2, "acme")
	if v := f.verify(t, "acme"); !v.OK || v.HeadSeq != 12 {
		t.Fatalf("after two more appends: %+v (broken %+v), want ok to 12", v, v.Broken)
	}
	// A second sweep within the same retention finds nothing new to sweep.
	if moved, err := f.log.Sweep(ctx, "acme", time.Hour); err != nil || moved != 0 {
		t.Errorf("second sweep moved the anchor by %d (%v), want 0", moved, err)
	}
	f.update(t, "acme", 7, bson.D{{Key: "target", Value: "someone-else"}})
	wantBroken(t, f.verify(t, "acme"), 7, "hash does not match")
}

// A sweep of every entry leaves the anchor as the chain's head: the next append links to it.
func TestRetention_SweepingEveryEntryKeepsTheChain(t *testing.T) {
	f := newChain(t, "acme")
	f.record(3, "acme")
	f.clock.Set(f.clock.Now().Add(time.Hour))
	if moved, err := f.log.Sweep(context.Background(), "acme", time.Minute); err != nil || moved != 3 {
		t.Fatalf("sweep moved the anchor by %d (%v), want 3", moved, err)
	}
	f.record(1, "acme")
	v := f.verify(t, "acme")
	if !v.OK || v.AnchorSeq != 3 || v.HeadSeq != 4 {
		t.Fatalf("%+v (broken %+v), want ok from anchor 3 to 4", v, v.Broken)
	}
	// Deleting the entry after the anchor is a missing link.
	f.record(2, "acme")
	if _, err := f.db.C(f.coll("acme")).DeleteOne(context.Background(), bson.D{{Key: "seq", Value: 4}}); err != nil {
		t.Fatal(err)
	}
	wantBroken(t, f.verify(t, "acme"), 4, "missing")
}

func TestRetention_NoneKeepsEverything(t *testing.T) {
	f := newChain(t, "acme")
	f.record(3, "acme")
	f.clock.Set(f.clock.Now().Add(24 * 365 * time.Hour))
	if moved, err := f.log.Sweep(context.Background(), "acme", 0); err != nil || moved != 0 {
		t.Fatalf("sweep without retention moved the anchor by %d (%v)", moved, err)
	}
	if n, _ := f.db.C(f.coll("acme")).CountDocuments(context.Background(), bson.D{}); n != 3 {
		t.Errorf("%d entries left, want 3", n)
	}
}
