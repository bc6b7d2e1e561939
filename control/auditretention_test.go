package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/internal/testenv"
)

type auditCounter struct{ appended, failed atomic.Int64 }

func (c *auditCounter) Appended()     { c.appended.Add(1) }
func (c *auditCounter) VerifyFailed() { c.failed.Add(1) }

// Service.Sweep applies audit_retention: the old entries go, the chain still verifies from the
// anchor. The Log control.New builds reports to Config.AuditObserver.
func TestService_SweepAppliesAuditRetentionAndTheObserverHearsTheChain(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := testenv.NewClock(start)
	obs := &auditCounter{}
	svc, _ := newService(t, control.Config{Now: clock.Now, AuditRetention: time.Hour, AuditObserver: obs})
	call := func(method, path, token string, body any) (int, map[string]any) {
		raw, _ := json.Marshal(body)
		req := httptest.NewRequest(method, path, bytes.NewReader(raw))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		svc.ServeAPI(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	if code, out := call("POST", "/auth/signup", "", testenv.SignupBody("keep@example.com", testenv.Password, "keep-co", "")); code != http.StatusCreated {
		t.Fatalf("signup: %d %v", code, out)
	}
	clock.Set(start.Add(2 * time.Hour))
	_, login := call("POST", "/auth/login", "", map[string]string{"email": "keep@example.com", "password": testenv.Password})
	access, _ := login["access_token"].(string)
	coll := svc.Backend.DB.C("t_keep-co_audit")
	before, _ := coll.CountDocuments(ctx, bson.D{})
	if before < 2 || obs.appended.Load() < before {
		t.Fatalf("%d entries, observer heard %d appends", before, obs.appended.Load())
	}

	svc.Sweep(ctx)
	if after, _ := coll.CountDocuments(ctx, bson.D{}); after != 1 {
		t.Fatalf("%d entries after the sweep, want the login's only (of %d)", after, before)
	}
	v, err := control.VerifyAudit(ctx, svc.Backend, "keep-co")
	if err != nil || !v.OK || v.AnchorSeq != before-1 || v.HeadSeq != before {
		t.Fatalf("verify after the sweep: %+v, %v; want ok from anchor %d", v, err, before-1)
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "seq", Value: before}}, bson.D{{Key: "$set", Value: bson.D{{Key: "ip", Value: "198.51.100.7"}}}}); err != nil {
		t.Fatal(err)
	}
	code, out := call("GET", "/tenants/keep-co/audit-logs/verify", access, nil)
	if code != http.StatusOK || out["ok"] != false || obs.failed.Load() != 1 {
		t.Errorf("verify after an edit: %d %v, observer heard %d failures; want broken and 1", code, out, obs.failed.Load())
	}
}
