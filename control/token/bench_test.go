package token

import (
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/identity"
)

func BenchmarkVerify(b *testing.B) {
	k, _ := NewKeys(secret, "saasgate", time.Hour)
	raw, _ := k.Issue(identity.Principal{UserID: "usr_123456789012", TenantID: "acme-corp", Role: identity.RoleUser})
	b.Run("signature", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.Verify(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		c := NewVerifiedCache(k, 1000, func(p identity.Principal) *identity.Principal { return &p })
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Verify(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
