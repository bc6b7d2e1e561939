package testenv

import (
	"crypto/rand"
	"encoding/hex"
)

// randomHex returns n random bytes hex-encoded: unique names for per-test databases and keys.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
