package tenant

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/saasgate/saasgate/control/plan"
	"github.com/saasgate/saasgate/control/store"
)

// MaxAnnouncement bounds an encoded announcement. The largest one a valid tenant makes (a
// 63-byte id, two 64-byte plan ids, the longest statuses and revision, both times) is 338 bytes; a
// receiver ignores anything longer, and a sender announces a tenant whose state would not fit
// by its id only (an invalidation).
const MaxAnnouncement = 512

// announcementVersion is the encoding's version. A receiver that meets a newer one cannot
// trust its reading of the state, so it takes the message as an invalidation of the id.
const announcementVersion = 1

// Announcement is what the bus says of a tenant: its new state (Tenant set) or its removal.
// It carries only what the gateway's cache needs (NewSnapshot's inputs and the revision): no
// name, no billing identifiers.
type Announcement struct {
	ID string
	// Tenant is the announced state; nil for a removal, or for a message this version reads
	// only as "id changed".
	Tenant  *Tenant
	Removed bool
}

// wireAnnouncement is the JSON of an announcement: short keys, zero values left out, times as
// Unix milliseconds (the store's precision).
type wireAnnouncement struct {
	V       int          `json:"v"`
	Op      string       `json:"op"` // "put" or "del"
	ID      string       `json:"id"`
	Rev     int64        `json:"rev,omitempty"`
	Status  Status       `json:"st,omitempty"`
	Plan    string       `json:"pl,omitempty"`
	Over    string       `json:"po,omitempty"`
	Billing *wireBilling `json:"b,omitempty"`
}

type wireBilling struct {
	Status      BillingStatus `json:"st,omitempty"`
	PeriodStart int64         `json:"ps,omitempty"`
	GraceUntil  int64         `json:"gu,omitempty"`
}

const (
	opPut    = "put"
	opRemove = "del"
)

// EncodeState encodes t's announcement; false when it would exceed MaxAnnouncement (t is then
// announced by its id alone).
func EncodeState(t *Tenant) ([]byte, bool) {
	w := wireAnnouncement{V: announcementVersion, Op: opPut, ID: t.ID, Rev: t.Rev, Status: t.Status, Plan: t.Plan, Over: t.PlanOverride}
	if b := t.Billing; b != nil {
		w.Billing = &wireBilling{Status: b.Status, PeriodStart: unixMilli(b.PeriodStart), GraceUntil: unixMilli(b.GraceUntil)}
	}
	return encode(w)
}

// EncodeRemoval encodes the announcement that tenant id was removed.
func EncodeRemoval(id string) ([]byte, bool) {
	return encode(wireAnnouncement{V: announcementVersion, Op: opRemove, ID: id})
}

func encode(w wireAnnouncement) ([]byte, bool) {
	b, err := json.Marshal(w)
	if err != nil || len(b) > MaxAnnouncement {
		return nil, false
	}
	return b, true
}

var errAnnouncementSize = fmt.Errorf("announcement larger than %d bytes", MaxAnnouncement)

// DecodeAnnouncement reads an announcement, refusing anything malformed: too long, not the
// encoding, an id that is no tenant id, a field out of its set. A message whose id is valid but
// whose state this version cannot trust (a newer encoding, an unknown operation, a field out of
// its set) is returned without a state, as an invalidation of the id: the store says the rest.
func DecodeAnnouncement(b []byte) (Announcement, error) {
	if len(b) > MaxAnnouncement {
		return Announcement{}, errAnnouncementSize
	}
	var w wireAnnouncement
	if err := json.Unmarshal(b, &w); err != nil {
		return Announcement{}, err
	}
	if !store.ValidTenantID(w.ID) {
		return Announcement{}, errors.New("announcement without a valid tenant id")
	}
	a := Announcement{ID: w.ID}
	switch {
	case w.V != announcementVersion:
	case w.Op == opRemove:
		a.Removed = true
	case w.Op == opPut:
		a.Tenant = w.tenant()
	}
	return a, nil
}

// tenant is the state w announces; nil when a field is out of its set.
func (w *wireAnnouncement) tenant() *Tenant {
	if !w.Status.Valid() || w.Rev < 0 || !plan.ValidID(w.Plan) || (w.Over != "" && !plan.ValidID(w.Over)) {
		return nil
	}
	t := &Tenant{ID: w.ID, Rev: w.Rev, Status: w.Status, Plan: w.Plan, PlanOverride: w.Over}
	if wb := w.Billing; wb != nil {
		if !wb.Status.known() {
			return nil
		}
		t.Billing = &Billing{Status: wb.Status, PeriodStart: fromUnixMilli(wb.PeriodStart), GraceUntil: fromUnixMilli(wb.GraceUntil)}
	}
	return t
}

// known reports whether s is one of the billing statuses.
func (s BillingStatus) known() bool {
	switch s {
	case BillingNone, BillingActive, BillingTrialing, BillingPastDue, BillingSuspended, BillingCanceled:
		return true
	}
	return false
}

// unixMilli is t in Unix milliseconds, 0 for the zero time (which has none that fits).
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
