package audit

import (
	"context"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
)

// Filter selects entries; zero fields select everything.
type Filter struct {
	Action  string
	Actor   string // actor_id
	Outcome string
	From    time.Time // inclusive
	To      time.Time // exclusive
	// Before is the cursor: only entries whose seq is lower; 0 for none. (Entries written
	// before the chain existed have negative seqs.)
	Before int64
	// Limit is the page size; 0 streams everything (Export).
	Limit int
}

// Page sizes of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Page is one page of entries, newest first. NextCursor is empty on the last page.
type Page struct {
	Entries    []*Entry `json:"entries"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// EncodeCursor and DecodeCursor make the position after an entry opaque to clients.
func EncodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(seq, 10)))
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) > 1 && b[0] == 's' {
		if seq, err := strconv.ParseInt(string(b[1:]), 10, 64); err == nil && seq != 0 {
			return seq, nil
		}
	}
	return 0, errs.E(errs.KindBadRequest, "bad_request", "The cursor is not one this API returned.")
}

// visible narrows f to what p may read of tenantID's log: an admin reads every tenant's, an
// owner their own tenant's, a user their own actions in their own tenant. none is true when
// the user asked for another actor's actions: the answer is empty.
func visible(p identity.Principal, tenantID string, f Filter) (_ Filter, none bool, _ error) {
	if !p.CanAccessTenant(tenantID, identity.RoleUser) {
		return f, false, errs.ErrForbidden
	}
	if !p.Role.AtLeast(identity.RoleOwner) {
		if f.Actor != "" && f.Actor != p.UserID {
			return f, true, nil
		}
		f.Actor = p.UserID
	}
	return f, false, nil
}

// List returns the page of tenantID's entries that f selects and p may see, newest first.
func (l *Log) List(ctx context.Context, p identity.Principal, tenantID string, f Filter) (*Page, error) {
	f, none, err := visible(p, tenantID, f)
	if err != nil {
		return nil, err
	}
	page := &Page{Entries: []*Entry{}}
	if none {
		return page, nil
	}
	switch {
	case f.Limit <= 0:
		f.Limit = DefaultPageSize
	case f.Limit > MaxPageSize:
		f.Limit = MaxPageSize
	}
	if err := l.Store.Newest(ctx, tenantID, f, func(e *Entry) error {
		page.Entries = append(page.Entries, e)
		return nil
	}); err != nil {
		return nil, errs.Internal(err, "Could not read the audit log.")
	}
	if len(page.Entries) == f.Limit {
		page.NextCursor = EncodeCursor(page.Entries[len(page.Entries)-1].Seq)
	}
	return page, nil
}

// Export streams every entry f selects and p may see to fn, newest first, without holding
// them: f.Limit is ignored. An error from fn stops the stream and is returned.
func (l *Log) Export(ctx context.Context, p identity.Principal, tenantID string, f Filter, fn func(*Entry) error) error {
	f, none, err := visible(p, tenantID, f)
	if err != nil || none {
		return err
	}
	f.Limit = 0
	if err := l.Store.Newest(ctx, tenantID, f, fn); err != nil {
		return errs.Internal(err, "Could not read the audit log.")
	}
	return nil
}

// VerifyFor is Verify for a caller: admins verify any tenant's chain, owners their own.
func (l *Log) VerifyFor(ctx context.Context, p identity.Principal, tenantID string) (*Verification, error) {
	if !p.CanAccessTenant(tenantID, identity.RoleOwner) {
		return nil, errs.ErrForbidden
	}
	v, err := l.Verify(ctx, tenantID)
	if err != nil {
		return nil, errs.Internal(err, "Could not read the audit log.")
	}
	return v, nil
}
