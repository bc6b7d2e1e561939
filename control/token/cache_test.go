package token

import (
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/identity"
)

// A token is checked once: later Verify calls answer from memory, and Checks counts only the
// checks made. A token that fails is checked every time (failures are not remembered).
func TestVerifiedCache_ChecksEachTokenOnce(t *testing.T) {
	k := testKeys(t, time.Unix(1_800_000_000, 0))
	cache := NewVerifiedCache(k, 16, func(p identity.Principal) identity.Principal { return p })
	want := identity.Principal{UserID: "usr_1", TenantID: "acme", Role: identity.RoleUser}
	access, err := k.Issue(want)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		got, err := cache.Verify(access)
		if err != nil || got != want {
			t.Fatalf("Verify #%d = %+v, %v; want %+v", i+1, got, err, want)
		}
	}
	if n := cache.Checks(); n != 1 {
		t.Errorf("5 verifications of one token made %d checks, want 1", n)
	}
	for range 2 {
		if _, err := cache.Verify(access + "x"); err == nil {
			t.Fatal("a token with a broken signature verified")
		}
	}
	if n, l := cache.Checks(), cache.Len(); n != 3 || l != 1 {
		t.Errorf("after 2 refusals: %d checks, %d cached; want 3 checks (refusals are not remembered), 1 cached", n, l)
	}
}

// Keys that verify alike share a fingerprint, whatever their TTL; another secret or issuer
// gives another one, and the fingerprint does not show the secret.
func TestKeys_FingerprintFollowsWhatVerifies(t *testing.T) {
	keys := func(secret, issuer string, ttl time.Duration) *Keys {
		k, err := NewKeys([]byte(secret), issuer, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	const a, b = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	base := keys(a, "saasgate", time.Hour).Fingerprint()
	if fp := keys(a, "", 10*time.Minute).Fingerprint(); fp != base {
		t.Errorf("the same secret and (default) issuer with another TTL: fingerprint %s, want %s", fp, base)
	}
	for name, k := range map[string]*Keys{
		"another secret": keys(b, "saasgate", time.Hour),
		"another issuer": keys(a, "saasgate-2", time.Hour),
		// The issuer's last byte moved to the secret's front: the same bytes, split otherwise.
		"shifted boundary": {Secret: []byte("e" + a), Issuer: "saasgat"},
	} {
		if fp := k.Fingerprint(); fp == base {
			t.Errorf("%s: the fingerprint did not change", name)
		}
	}
	if len(base) != 64 || base == a {
		t.Errorf("fingerprint %q is not a hex SHA-256 digest", base)
	}
}
