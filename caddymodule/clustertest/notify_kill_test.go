package clustertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/testenv"
)

// webhookTimeout and webhookLease are the delivery settings of killedWorkerOptions: a claimed
// delivery stays its worker's for the timeout + 5 s (the README's default lease).
const (
	webhookTimeout = 2 * time.Second
	webhookLease   = webhookTimeout + 5*time.Second
)

// killedWorkerOptions lets the workers reach a receiver on 127.0.0.1, retry at once, and give
// a dead worker's delivery to another after webhookLease.
const killedWorkerOptions = `webhooks {
	allow_private 127.0.0.0/8
	timeout 2s
	retry_schedule 0s 1s 1s
}`

// A replica killed while it waits for a receiver's answer (SIGKILL: no shutdown, no record of
// the attempt) leaves its delivery leased. When the lease expires, a worker of another replica
// takes the delivery over and sends it with the same webhook-id; the delivery log then holds
// that one successful attempt, and the receiver answered one live request with a 2xx.
func TestNotify_KilledWorkersDeliveryIsTakenOverOnce(t *testing.T) {
	t.Parallel()
	rc := newBlockingReceiver(t)
	a := testenv.NewSaas(t, testenv.SaasOptions{Options: killedWorkerOptions})
	procA := a.StartProcess(t)
	a.WaitReady(t, 30*time.Second)

	_, owner := a.NewOwner(t, "killed-worker")
	r := a.Do(t, http.MethodPost, "/tenants/killed-worker/webhook-endpoints", owner.Access,
		map[string]any{"url": rc.URL, "events": []string{"member.joined"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("registering the receiver: %s", r)
	}
	endpoint := r.Str("id")
	invite := a.MustInvite(t, owner.Access, "killed-worker", "joiner@killed-worker.test", "user")
	a.MustSignup(t, "joiner@killed-worker.test", "killed-worker", invite)

	var first received
	select {
	case first = <-rc.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("gateway A did not send member.joined to the receiver within 10 s")
	}
	procA.Kill()
	killed := time.Now()
	t.Logf("gateway A (pid %d) killed %s after its request arrived", procA.Pid(), killed.Sub(first.at).Round(time.Millisecond))
	close(rc.release)
	select {
	case gone := <-rc.firstGone:
		if !gone {
			t.Error("the receiver still had gateway A's connection 2 s after the kill: the attempt was not cut")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the receiver's first request did not return after it was released")
	}

	b := testenv.NewSaas(t, testenv.SaasOptions{MongoURI: a.Opts.MongoURI, Database: a.Opts.Database, Options: killedWorkerOptions})
	b.StartProcess(t)
	b.WaitReady(t, 30*time.Second)

	var second received
	select {
	case second = <-rc.arrived:
	case <-time.After(time.Until(first.at.Add(webhookLease + 10*time.Second))):
		t.Fatalf("no worker took the delivery over within the lease (%s) + 10 s of A's attempt", webhookLease)
	}
	t.Logf("gateway B's attempt arrived %s after A's", second.at.Sub(first.at).Round(time.Millisecond))
	if second.id != first.id || first.id == "" {
		t.Errorf("the takeover sent webhook-id %q, A had sent %q: want the same, not empty", second.id, first.id)
	}
	if second.timestamp < first.timestamp {
		t.Errorf("the takeover's webhook-timestamp %d is before A's %d", second.timestamp, first.timestamp)
	}
	// A claims the delivery before it sends it, so its lease ends at most webhookLease after
	// its request arrived, and earlier by however long the claim took to reach the receiver.
	// A takeover that ignored the lease comes at once; half the lease is slack for a slow
	// machine between A's claim and its request.
	if gap := second.at.Sub(first.at); gap < webhookLease/2 {
		t.Errorf("the delivery was taken over %s after A's attempt, before A's lease of %s expired", gap, webhookLease)
	}

	// B records its attempt after the receiver's answer reaches it.
	d := settledDelivery(t, b, owner.Access, "killed-worker", endpoint, 5*time.Second)
	attempts, _ := d["attempts"].([]any)
	if d["status"] != "succeeded" || d["event_id"] != first.id || d["type"] != "member.joined" || len(attempts) != 1 {
		t.Fatalf("delivery %v (event %v, type %v) with %d attempts; want succeeded, event %s, member.joined, exactly one attempt (B's: A died before recording its own)",
			d["status"], d["event_id"], d["type"], len(attempts), first.id)
	}
	att, _ := attempts[0].(map[string]any)
	at, err := time.Parse(time.RFC3339Nano, str(att["at"]))
	if att["status_code"] != float64(http.StatusOK) || att["error"] != nil || err != nil || at.Before(killed) {
		t.Errorf("the recorded attempt %v; want B's: status_code 200, no error, made after the kill at %s", att, killed.Format(time.RFC3339Nano))
	}

	// Nothing is left for a third attempt: the receiver gets no more requests.
	select {
	case extra := <-rc.arrived:
		t.Errorf("another request after the delivery succeeded: webhook-id %s", extra.id)
	case <-time.After(2 * time.Second):
	}
	if n := rc.liveSuccesses(); n != 1 {
		t.Errorf("the receiver answered %d live requests with 200, want exactly 1", n)
	}
}

// settledDelivery polls the tenant's delivery log through gw, for at most within, until its
// one delivery to endpoint is no longer pending, and returns it as it then is. The test fails
// if the log ever holds another number of deliveries to endpoint than one.
func settledDelivery(t *testing.T, gw *testenv.Saas, token, tenant, endpoint string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := gw.Do(t, http.MethodGet, "/tenants/"+tenant+"/webhook-deliveries?endpoint="+endpoint, token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("reading the delivery log: %s", r)
		}
		list, _ := r.Body["deliveries"].([]any)
		if len(list) != 1 {
			t.Fatalf("the delivery log holds %d deliveries to the endpoint, want 1: %s", len(list), r)
		}
		d, _ := list[0].(map[string]any)
		if d["status"] != "pending" || time.Now().After(deadline) {
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// received is one request the receiver got.
type received struct {
	id        string // webhook-id
	timestamp int64  // webhook-timestamp
	at        time.Time
}

// blockingReceiver is a webhook receiver on 127.0.0.1 whose first request waits until release
// is closed (a slow receiver the sender dies in front of); it answers every request 200.
type blockingReceiver struct {
	*httptest.Server
	arrived   chan received // every request, as it arrives
	release   chan struct{} // closed to let the first request answer
	firstGone chan bool     // whether the first request's client had gone when it was released

	mu   sync.Mutex
	n    int
	live int // 2xx answers written while the client was still connected
}

func newBlockingReceiver(t *testing.T) *blockingReceiver {
	rc := &blockingReceiver{arrived: make(chan received, 8), release: make(chan struct{}), firstGone: make(chan bool, 1)}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	// Runs before Close, which waits for the first request to return.
	t.Cleanup(func() {
		select {
		case <-rc.release:
		default:
			close(rc.release)
		}
	})
	return rc
}

func (rc *blockingReceiver) serve(w http.ResponseWriter, r *http.Request) {
	// Reading the body to its end lets the server notice the client hanging up (r.Context()).
	_, _ = io.Copy(io.Discard, r.Body)
	ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
	rc.mu.Lock()
	rc.n++
	n := rc.n
	rc.mu.Unlock()
	rc.arrived <- received{id: r.Header.Get("webhook-id"), timestamp: ts, at: time.Now()}
	if n == 1 {
		<-rc.release
		// The kill closed the sender's socket; the server sees it shortly after.
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
		rc.firstGone <- r.Context().Err() != nil
	}
	// A late 200 on the first request too: nobody is left to read it, let alone record it.
	w.WriteHeader(http.StatusOK)
	if r.Context().Err() == nil {
		rc.mu.Lock()
		rc.live++
		rc.mu.Unlock()
	}
}

func (rc *blockingReceiver) liveSuccesses() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.live
}
