package account

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestHasher_HashVerifies(t *testing.T) {
	h := NewHasher(8)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("encoded hash %q does not carry argon2id with m=19 MiB, t=2, p=1", enc)
	}
	if ok, err := h.Verify(ctx, "correct horse", enc); err != nil || !ok {
		t.Fatalf("right password: %v, %v", ok, err)
	}
	if ok, _ := h.Verify(ctx, "correct horsE", enc); ok {
		t.Fatal("wrong password verified")
	}
	if ok, _ := h.Verify(ctx, "dummy password", ""); ok {
		t.Fatal("an unknown account (empty hash) must never verify, not even with the dummy's password")
	}
	enc2, _ := h.Hash(ctx, "correct horse")
	if enc == enc2 {
		t.Fatal("two hashes of one password share a salt")
	}
}

func TestHasher_FullQueueFailsFast(t *testing.T) {
	h := NewHasher(0)
	if _, err := h.Hash(context.Background(), "password1"); err != ErrBusy {
		t.Fatalf("with no room to wait, Hash = %v, want ErrBusy", err)
	}
}

func TestHasher_WaitingEndsWithContext(t *testing.T) {
	h := NewHasher(8)
	for i := 0; i < cap(h.slots); i++ {
		h.slots <- struct{}{} // every slot busy
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "password1"); err != context.DeadlineExceeded {
		t.Fatalf("Hash with all slots busy = %v, want the context's error", err)
	}
}

func TestLockDuration_GrowsAndCaps(t *testing.T) {
	tests := map[int]time.Duration{5: 5 * time.Second, 6: 10 * time.Second, 7: 20 * time.Second, 12: 640 * time.Second, 13: LockMax, 40: LockMax}
	for failures, want := range tests {
		if got := lockDuration(failures); got != want {
			t.Errorf("lockDuration(%d) = %v, want %v", failures, got, want)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{" Alice@Example.COM ": "alice@example.com", "bob@localhost": "bob@localhost", "a.b+c@x.io": "a.b+c@x.io"}
	for in, want := range good {
		if got, err := NormalizeEmail(in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "alice", "alice@", "@x.com", "Alice <a@x.com>", "a@x", "a b@x.com", strings.Repeat("a", 250) + "@x.com"} {
		if _, err := NormalizeEmail(bad); err == nil {
			t.Errorf("NormalizeEmail(%q) accepted", bad)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, ok := range []string{"12345678", strings.Repeat("x", 128), "pässwörd"} {
		if err := CheckPassword(ok); err != nil {
			t.Errorf("CheckPassword(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1234567", strings.Repeat("x", 129)} {
		if err := CheckPassword(bad); err == nil {
			t.Errorf("CheckPassword(%d chars) accepted", len(bad))
		}
	}
}
