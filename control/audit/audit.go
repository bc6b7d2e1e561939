// Package audit records who did what to which tenant. Every control-plane change and every
// authentication event is appended to the tenant's own audit collection (t_<tenant>_audit),
// as one link of a hash chain per tenant (chain.go) that Verify checks.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/identity"
)

// Outcomes of an audited action.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Actions recorded by the control plane. Later steps add billing and notification actions.
const (
	ActionSignup         = "account.signup"
	ActionLogin          = "auth.login"
	ActionRefreshReuse   = "auth.refresh_reuse"
	ActionLogout         = "auth.logout"
	ActionTenantCreate   = "tenant.create"
	ActionTenantUpdate   = "tenant.update"
	ActionInvite         = "tenant.invite"
	ActionRoleChange     = "user.role_change"
	ActionAdminBootstrap = "admin.bootstrap"
	ActionMFAEnroll      = "auth.mfa_enroll"
	ActionMFAConfirm     = "auth.mfa_confirm"
	ActionMFADisable     = "auth.mfa_disable"
	ActionMFARecovery    = "auth.mfa_recovery_codes"
	ActionMFAVerify      = "auth.mfa_verify"
	ActionMFARecoveryUse = "auth.mfa_recovery_code_used"
)

// Entry is one audit record and one link of its tenant's chain: Hash covers every other field
// (see Canonical), PrevHash is the Hash of the entry whose Seq is one less.
type Entry struct {
	ID        string         `bson:"_id" json:"id"`
	Seq       int64          `bson:"seq" json:"seq"`
	Time      time.Time      `bson:"time" json:"time"`
	TenantID  string         `bson:"tenant_id" json:"tenant_id"`
	ActorID   string         `bson:"actor_id,omitempty" json:"actor_id,omitempty"`
	ActorRole string         `bson:"actor_role,omitempty" json:"actor_role,omitempty"`
	Action    string         `bson:"action" json:"action"`
	Target    string         `bson:"target,omitempty" json:"target,omitempty"`
	IP        string         `bson:"ip,omitempty" json:"ip,omitempty"`
	RequestID string         `bson:"request_id,omitempty" json:"request_id,omitempty"`
	Outcome   string         `bson:"outcome" json:"outcome"`
	Detail    map[string]any `bson:"detail,omitempty" json:"detail,omitempty"`
	PrevHash  string         `bson:"prev_hash" json:"prev_hash"`
	Hash      string         `bson:"hash" json:"hash"`
}

// Store keeps the chains. Seq is unique per tenant: Insert is how an appender claims the next
// link, so two replicas that read the same head cannot both extend it.
type Store interface {
	// Head is the last link of tenantID's chain: its newest entry, else its anchor, else
	// (0, "") for an empty chain.
	Head(ctx context.Context, tenantID string) (seq int64, hash string, err error)
	// Insert writes e; taken is true when another entry already holds e.Seq.
	Insert(ctx context.Context, e *Entry) (taken bool, err error)
	// Anchor is the link retention left in place of the entries it swept.
	Anchor(ctx context.Context, tenantID string) (Anchor, error)
	// Ascending calls fn with tenantID's entries whose seq is above after, oldest first.
	Ascending(ctx context.Context, tenantID string, after int64, fn func(*Entry) error) error
	// Newest calls fn with the entries f selects, newest first, at most f.Limit of them
	// (0: all).
	Newest(ctx context.Context, tenantID string, f Filter, fn func(*Entry) error) error
	// Sweep records the anchor, then deletes the entries up to and including it.
	Sweep(ctx context.Context, a Anchor) error
	// LastBefore is the newest entry older than t, nil when there is none.
	LastBefore(ctx context.Context, tenantID string, t time.Time) (*Entry, error)
}

// Anchor stands for a swept prefix of a chain: the next entry's PrevHash is Hash.
type Anchor struct {
	TenantID string    `bson:"_id" json:"tenant_id"`
	Seq      int64     `bson:"seq" json:"seq"`
	Hash     string    `bson:"hash" json:"hash"`
	SweptAt  time.Time `bson:"swept_at" json:"swept_at"`
}

// Log builds entries from an actor and appends them to the tenant's chain.
type Log struct {
	Store  Store
	Logger *zap.Logger
	Now    func() time.Time
	// Observer hears appends and failed verifications (metrics); may be nil.
	Observer Observer

	// heads holds the last link this Log wrote to each chain (see link).
	heads sync.Map
}

// Record appends an entry for tenantID. The change it records has already happened and
// cannot be undone without transactions, so a failure to write is logged at ERROR, with the
// entry, rather than returned.
func (l *Log) Record(ctx context.Context, tenantID string, actor identity.Actor, action, target, outcome string, detail map[string]any) {
	e := &Entry{
		ID:        newID(),
		Time:      l.now(),
		TenantID:  tenantID,
		ActorID:   actor.UserID,
		ActorRole: string(actor.Role),
		Action:    action,
		Target:    target,
		IP:        actor.IP,
		RequestID: actor.RequestID,
		Outcome:   outcome,
		Detail:    detail,
	}
	if err := l.append(context.WithoutCancel(ctx), e); err != nil && l.Logger != nil {
		l.Logger.Error("audit entry not written",
			zap.String("tenant", tenantID), zap.String("action", action), zap.String("target", target),
			zap.String("outcome", outcome), zap.String("actor", actor.UserID), zap.Error(err))
	}
}

// now is the clock at the precision the store keeps (BSON dates hold milliseconds), so the
// hash computed before the write matches the entry read back.
func (l *Log) now() time.Time {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	return now().UTC().Truncate(time.Millisecond)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "aud_" + hex.EncodeToString(b[:])
}
