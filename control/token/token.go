// Package token issues and verifies credentials: short-lived HS256 access tokens (JWTs the
// gateway verifies without a store read) and opaque, rotating refresh tokens kept hashed in
// MongoDB.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/store"
)

// The `typ` claim of each kind of signed token. Every verification names the one kind it
// accepts, so an MFA step token never stands in for an access token nor the other way round.
// Refresh and invitation tokens are opaque (not JWTs), looked up by hash: a JWT presented as
// one matches nothing, and one of them presented as a JWT does not parse.
const (
	TypeAccess = "access"
	TypeMFA    = "mfa"
)

// MFATTL is the lifetime of the MFA step token a login answers with when MFA is on.
const MFATTL = 5 * time.Minute

// Leeway tolerates clock skew between replicas when checking exp, nbf and iat.
const Leeway = 30 * time.Second

// MinSecretLen is the shortest accepted HS256 secret.
const MinSecretLen = 32

// Claims of an access token.
type Claims struct {
	TenantID string `json:"tid"`
	Role     string `json:"role"`
	Type     string `json:"typ"`
	jwt.RegisteredClaims
}

// Keys signs and verifies access tokens with one HS256 secret.
type Keys struct {
	Secret []byte
	Issuer string
	TTL    time.Duration
	Now    func() time.Time
}

// The defaults of NewKeys: the iss claim, and the lifetime of access tokens.
const (
	DefaultIssuer = "saasgate"
	DefaultTTL    = time.Hour
)

// NewKeys checks the secret and fills defaults.
func NewKeys(secret []byte, issuer string, ttl time.Duration) (*Keys, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("jwt secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	if issuer == "" {
		issuer = DefaultIssuer
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Keys{Secret: secret, Issuer: issuer, TTL: ttl}, nil
}

// Fingerprint names what k accepts: Keys of one fingerprint (the same secret and issuer)
// verify every access token alike, to the same principal, so what one has verified holds for
// the other. TTL is left out: it only matters when issuing; so is Now, which only tests set.
// It is a SHA-256 digest: it can key a map or a pool without the secret being that key.
func (k *Keys) Fingerprint() string {
	h := sha256.New()
	// The issuer length-prefixed, so no (issuer, secret) pair reads as another.
	fmt.Fprintf(h, "%d:%s:", len(k.Issuer), k.Issuer)
	h.Write(k.Secret)
	return hex.EncodeToString(h.Sum(nil))
}

// Derive is a key of its own for purpose, made from the secret (HMAC-SHA256 of purpose): the
// replicas that share the secret share it, and it tells nothing of the secret.
func (k *Keys) Derive(purpose string) []byte {
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func (k *Keys) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// Issue signs an access token for p.
func (k *Keys) Issue(p identity.Principal) (string, error) {
	return k.sign(p, TypeAccess, k.TTL)
}

// IssueMFA signs the MFA step token of a login whose password was right: it proves the first
// factor for MFATTL and is good for nothing but POST /auth/mfa/verify.
func (k *Keys) IssueMFA(p identity.Principal) (string, error) {
	return k.sign(p, TypeMFA, MFATTL)
}

func (k *Keys) sign(p identity.Principal, typ string, ttl time.Duration) (string, error) {
	now := k.now()
	claims := Claims{
		TenantID: p.TenantID,
		Role:     string(p.Role),
		Type:     typ,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    k.Issuer,
			Subject:   p.UserID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        RandomID(16),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(k.Secret)
}

// Verify checks an access token: HS256 only, no header parameter but alg and typ, exp
// required, issuer ours, typ access.
func (k *Keys) Verify(raw string) (identity.Principal, error) {
	p, _, err := k.verify(raw, TypeAccess)
	return p, err
}

// MFAToken is a verified MFA step token: who passed the first factor, and the token's id and
// expiry, which its single use is remembered by.
type MFAToken struct {
	Principal identity.Principal
	ID        string
	ExpiresAt time.Time
}

// ErrInvalidMFAToken answers an MFA step token that is malformed, expired, spent or of another kind.
var ErrInvalidMFAToken = errs.E(errs.KindUnauthorized, "invalid_mfa_token", "The MFA token is invalid, expired or already used; log in again.")

// VerifyMFA checks an MFA step token as Verify checks an access token, with typ mfa.
func (k *Keys) VerifyMFA(raw string) (*MFAToken, error) {
	p, c, err := k.verify(raw, TypeMFA)
	if err != nil || c.ID == "" {
		return nil, ErrInvalidMFAToken
	}
	return &MFAToken{Principal: p, ID: c.ID, ExpiresAt: c.ExpiresAt.Time}, nil
}

// verify checks a signed token of kind typ and returns its claims too.
func (k *Keys) verify(raw, typ string) (identity.Principal, *Claims, error) {
	if len(raw) > 4096 {
		return identity.Principal{}, nil, errs.ErrInvalidToken
	}
	var c Claims
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(k.Issuer),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(k.now),
	)
	_, err := parser.ParseWithClaims(raw, &c, k.secretFor)
	if err != nil {
		return identity.Principal{}, nil, &errs.Error{Kind: errs.KindUnauthorized, Code: "invalid_token",
			Message: errs.ErrInvalidToken.Message, Err: errors.Unwrap(err)}
	}
	role := identity.Role(c.Role)
	// A tenant id that is not a DNS label can only come from a token signed by someone holding
	// the secret but not this code; refuse it before it names a collection.
	if c.Type != typ || !role.Valid() || c.Subject == "" || len(c.Subject) > 64 || !store.ValidTenantID(c.TenantID) {
		return identity.Principal{}, nil, errs.ErrInvalidToken
	}
	return identity.Principal{UserID: c.Subject, TenantID: c.TenantID, Role: role}, &c, nil
}

// issuedHeaders are the only JOSE header parameters Issue writes. Any other (kid, jku, x5u,
// jwk, x5c, crit, ...) names a key or an extension this code never uses: a token carrying one
// was not made here, and refusing it outright means no header can ever make a verifier fetch
// or pick a key.
var issuedHeaders = map[string]bool{"alg": true, "typ": true}

var errForeignHeader = errors.New("token header carries a parameter this issuer never writes")

func (k *Keys) secretFor(t *jwt.Token) (any, error) {
	for name := range t.Header {
		if !issuedHeaders[name] {
			return nil, errForeignHeader
		}
	}
	return k.Secret, nil
}

// RandomID returns n random bytes, base64url-encoded.
func RandomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("token: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
