package account

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// MFA is a user's TOTP state. The secrets are sealed (see sealSecret); recovery codes are kept
// as hashes only.
type MFA struct {
	Enabled bool `bson:"enabled"`
	// Secret is the confirmed secret, Pending the one an enrolment awaits a first code for.
	Secret  string `bson:"secret,omitempty"`
	Pending string `bson:"pending,omitempty"`
	// LastStep is the TOTP time step of the last accepted code: codes of that step and earlier
	// are refused, so a code seen over a shoulder or in a log is worth nothing.
	LastStep int64    `bson:"last_step"`
	Recovery []string `bson:"recovery,omitempty"`
}

// TOTP parameters (RFC 6238 defaults, what every authenticator app reads).
const (
	totpPeriod = 30
	totpSkew   = 1 // steps accepted either side of now
	totpDigits = otp.DigitsSix
	// RecoveryCodes is how many single-use recovery codes confirm and regenerate hand out.
	RecoveryCodes = 10
)

// mfaKeyInfo separates the MFA sealing key from every other use of the JWT secret: knowing
// one derived key tells nothing of the secret or of another.
const mfaKeyInfo = "saasgate mfa secret sealing v1"

var errSealed = errors.New("mfa: sealed secret does not open")

func (m *Manager) mfaAEAD() (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, m.Keys.Secret, nil, mfaKeyInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealSecret encrypts a TOTP secret with AES-GCM, bound to its account (the additional data),
// so a sealed secret copied onto another user's record does not open.
func (m *Manager) sealSecret(tenantID, userID, secret string) (string, error) {
	aead, err := m.mfaAEAD()
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, []byte(secret), []byte(tenantID+"\x00"+userID))
	return base64.RawStdEncoding.EncodeToString(out), nil
}

func (m *Manager) openSecret(tenantID, userID, sealed string) (string, error) {
	aead, err := m.mfaAEAD()
	if err != nil {
		return "", err
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", errSealed
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(tenantID+"\x00"+userID))
	if err != nil {
		return "", errSealed
	}
	return string(plain), nil
}

// matchStep returns the time step, within ±totpSkew of now, whose code is code; 0 when none.
// The latest matching step wins, so a code is never accepted for an earlier step than its own.
func matchStep(secret, code string, now time.Time) int64 {
	if len(code) != int(totpDigits) {
		return 0
	}
	step := now.Unix() / totpPeriod
	for s := step + totpSkew; s >= step-totpSkew; s-- {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err == nil && hmac.Equal([]byte(want), []byte(code)) {
			return s
		}
	}
	return 0
}

// newRecoveryCodes returns RecoveryCodes fresh codes and their hashes.
func newRecoveryCodes() (codes, hashes []string) {
	for range RecoveryCodes {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			panic("account: no randomness: " + err.Error())
		}
		c := hex.EncodeToString(b)
		c = c[:5] + "-" + c[5:10] + "-" + c[10:15] + "-" + c[15:]
		codes = append(codes, c)
		hashes = append(hashes, hashRecoveryCode(c))
	}
	return codes, hashes
}

// hashRecoveryCode is a plain SHA-256: the codes carry 80 random bits, so no slow hash is needed
// to keep them from being guessed back from a leaked hash.
func hashRecoveryCode(code string) string {
	code = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(code), "-", ""))
	sum := sha256.Sum256([]byte("recovery\x00" + code))
	return hex.EncodeToString(sum[:])
}
