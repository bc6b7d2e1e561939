package notify_test

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/notify"
)

// internalHosts are the hosts the guard must refuse, each with the port of the test's
// receiver where it could reach it, so that a guard that let it through would be seen.
func internalHosts(port string) []string {
	return []string{
		"127.0.0.1:" + port,
		"[::1]:" + port,
		"10.0.0.1:" + port,
		"169.254.169.254:" + port,
		"100.64.0.1:" + port,
		"[::ffff:127.0.0.1]:" + port,
		"localhost:" + port,
	}
}

func TestSSRF_RefusedAtRegistration(t *testing.T) {
	f := newFixture(t, notify.Config{})
	strict := f.manager(t, notify.Config{AllowPrivate: []string{}})
	for _, host := range append(internalHosts("8080"), "[fe80::1]", "[fc00::1]", "224.0.0.1", "0.0.0.0", "192.168.1.1", "172.16.0.1") {
		_, _, err := strict.CreateEndpoint(context.Background(), admin, anon, "acme", notify.EndpointInput{URL: "http://" + host + "/hook"})
		if !errs.Is(err, "invalid_webhook_url") {
			t.Errorf("%s: %v, want invalid_webhook_url", host, err)
		}
	}
	for _, raw := range []string{"ftp://example.com/", "http:///nohost", "http://user:pw@example.com/", "example.com"} {
		if _, _, err := strict.CreateEndpoint(context.Background(), admin, anon, "acme", notify.EndpointInput{URL: raw}); !errs.Is(err, "invalid_webhook_url") {
			t.Errorf("%s: %v, want invalid_webhook_url", raw, err)
		}
	}
	// The allowed range lets the same addresses through.
	if _, _, err := f.m.CreateEndpoint(context.Background(), admin, anon, "acme", notify.EndpointInput{URL: "http://127.0.0.1:8080/hook"}); err != nil {
		t.Errorf("127.0.0.1 under allow_private 127.0.0.0/8: %v", err)
	}
	// A public address passes.
	if !strict.Guard().Allowed(mustAddr(t, "93.184.216.34")) || !strict.Guard().Allowed(mustAddr(t, "2606:2800:220:1::1")) {
		t.Error("a public address is refused")
	}
}

// TestSSRF_RefusedAtDial registers endpoints while every address is allowed (standing for a
// name whose DNS changed since), then delivers from a replica without allow_private: each
// attempt is refused by the dialer's guard, and the receiver gets nothing.
func TestSSRF_RefusedAtDial(t *testing.T) {
	f := newFixture(t, notify.Config{AllowPrivate: []string{"0.0.0.0/0", "::/0"}})
	rc := newReceiver(t, nil)
	u, _ := url.Parse(rc.URL)
	_, port, _ := net.SplitHostPort(u.Host)
	for _, host := range internalHosts(port) {
		f.endpoint(t, "acme", "http://"+host+"/hook")
	}
	strict := f.manager(t, notify.Config{AllowPrivate: []string{}})
	f.publish(t, "evt_1", "acme", notify.EventPaymentFailed)
	if n := f.deliver(t, strict); n != len(internalHosts(port)) {
		t.Fatalf("%d attempts, want %d", n, len(internalHosts(port)))
	}
	for _, d := range f.deliveries(t, "acme") {
		if len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "private or internal address") {
			t.Errorf("endpoint %s: attempts %+v", d.EndpointID, d.Attempts)
		}
	}
	if len(rc.requests()) != 0 {
		t.Errorf("the receiver got %d requests", len(rc.requests()))
	}

	// The same deliveries, resent from a replica that allows loopback, arrive: the refusals
	// above were the guard's.
	loopback := f.manager(t, notify.Config{})
	for _, d := range f.deliveries(t, "acme") {
		if _, err := loopback.Resend(context.Background(), admin, anon, "acme", d.ID); err != nil {
			t.Fatal(err)
		}
	}
	f.deliver(t, loopback)
	if len(rc.requests()) < 3 {
		t.Errorf("through loopback the receiver got %d requests, want 127.0.0.1, ::ffff:127.0.0.1 and localhost's", len(rc.requests()))
	}
}

func TestSSRF_GuardOnAPlainDialer(t *testing.T) {
	g, err := notify.NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Control: g.Control}).DialContext}}
	rc := newReceiver(t, nil)
	if _, err := client.Get(rc.URL); err == nil || !strings.Contains(err.Error(), "private or internal") {
		t.Errorf("dialling %s: %v", rc.URL, err)
	}
	if len(rc.requests()) != 0 {
		t.Error("the receiver was reached")
	}
	if _, err := notify.NewGuard([]string{"not-a-cidr"}); err == nil {
		t.Error("a bad allow_private range is accepted")
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
