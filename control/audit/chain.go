package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

// appendAttempts bounds the retries of an append that keeps losing the race for the next seq.
// Each round one contender wins, so it is sized for a burst of that many concurrent appends to
// one tenant, with the jittered back-off spreading them out.
const appendAttempts = 100

func (l *Log) append(ctx context.Context, e *Entry) error {
	e.Detail = normalizeDetail(e.Detail)
	seq, hash, cached := l.cachedHead(e.TenantID)
	for attempt := 0; attempt < appendAttempts; attempt++ {
		if !cached {
			var err error
			if seq, hash, err = l.Store.Head(ctx, e.TenantID); err != nil {
				return err
			}
		}
		e.Seq, e.PrevHash = seq+1, hash
		e.Hash = Hash(e)
		taken, err := l.Store.Insert(ctx, e)
		if err != nil {
			return err
		}
		if !taken {
			l.heads.Store(e.TenantID, link{e.Seq, e.Hash})
			if l.Observer != nil {
				l.Observer.Appended()
			}
			return nil
		}
		if cached {
			// Another replica appended since: read the head, at once.
			cached = false
			continue
		}
		backoff := time.Duration(1+min(attempt, 20)) * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rand.N(backoff)):
		}
	}
	return fmt.Errorf("seq still taken after %d attempts", appendAttempts)
}

// link is the last link this Log wrote to a chain. Appending after it first spares the read of
// the head, which the embedded FerretDB answers by scanning the collection; when another
// replica has appended since, the insert finds seq taken and the head is read.
type link struct {
	seq  int64
	hash string
}

func (l *Log) cachedHead(tenantID string) (int64, string, bool) {
	if v, ok := l.heads.Load(tenantID); ok {
		h := v.(link)
		return h.seq, h.hash, true
	}
	return 0, "", false
}

// canonical is the hashed form of an entry: a JSON object whose fields come in this fixed
// order, every one present, the time in UTC RFC 3339 with nanoseconds, and the detail with its
// keys sorted at every depth (encoding/json sorts map keys).
type canonical struct {
	Seq       int64          `json:"seq"`
	PrevHash  string         `json:"prev_hash"`
	ID        string         `json:"id"`
	Time      string         `json:"time"`
	TenantID  string         `json:"tenant_id"`
	ActorID   string         `json:"actor_id"`
	ActorRole string         `json:"actor_role"`
	Action    string         `json:"action"`
	Target    string         `json:"target"`
	IP        string         `json:"ip"`
	RequestID string         `json:"request_id"`
	Outcome   string         `json:"outcome"`
	Detail    map[string]any `json:"detail"`
}

// Canonical is the byte string an entry's hash covers (every field but Hash).
func Canonical(e *Entry) []byte {
	b, err := json.Marshal(canonical{
		Seq: e.Seq, PrevHash: e.PrevHash, ID: e.ID, Time: e.Time.UTC().Format(time.RFC3339Nano),
		TenantID: e.TenantID, ActorID: e.ActorID, ActorRole: e.ActorRole, Action: e.Action,
		Target: e.Target, IP: e.IP, RequestID: e.RequestID, Outcome: e.Outcome,
		Detail: normalizeDetail(e.Detail),
	})
	if err != nil {
		// normalizeDetail leaves only JSON values.
		panic(fmt.Sprintf("audit: canonical encoding: %v", err))
	}
	return b
}

// Hash is the hex SHA-256 of the entry's canonical encoding.
func Hash(e *Entry) string {
	sum := sha256.Sum256(Canonical(e))
	return hex.EncodeToString(sum[:])
}

// normalizeDetail turns a detail into the JSON values (string, float64, bool, nil, maps and
// slices of them) that it reads back as from the store, so the hash computed before the write
// is the hash of what is read: an int becomes a float64, a time its RFC 3339 string, and the
// store's document and array types plain maps and slices. An empty detail is nil.
func normalizeDetail(d map[string]any) map[string]any {
	if len(d) == 0 {
		return nil
	}
	b, err := json.Marshal(plain(d))
	if err != nil {
		return map[string]any{"unencodable": err.Error()}
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return map[string]any{"unencodable": err.Error()}
	}
	return out
}

// plain replaces the driver's ordered documents (which encode as arrays of pairs) by maps.
func plain(v any) any {
	switch v := v.(type) {
	case primitive.D:
		m := make(map[string]any, len(v))
		for _, e := range v {
			m[e.Key] = plain(e.Value)
		}
		return m
	case primitive.M:
		return plain(map[string]any(v))
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = plain(x)
		}
		return m
	case primitive.A:
		return plain([]any(v))
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = plain(x)
		}
		return out
	case primitive.DateTime:
		return v.Time().UTC()
	}
	return v
}

// Break is the first link of a chain that does not hold.
type Break struct {
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}

// Verification is the result of Verify.
type Verification struct {
	OK bool `json:"ok"`
	// AnchorSeq is where the check started: the anchor left by retention, 0 without one.
	AnchorSeq int64 `json:"anchor_seq"`
	// HeadSeq is the last link checked.
	HeadSeq int64 `json:"head_seq"`
	Checked int64 `json:"checked"`
	// Broken is the first broken or missing link, nil when OK.
	Broken *Break `json:"broken,omitempty"`
}

var errStop = errors.New("stop")

// Verify walks tenantID's chain from its anchor and reports the first link that is missing
// (a gap in seq), altered (its hash is not the hash of its content) or rewritten (its
// prev_hash is not its predecessor's hash).
func (l *Log) Verify(ctx context.Context, tenantID string) (*Verification, error) {
	a, err := l.Store.Anchor(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	v := &Verification{AnchorSeq: a.Seq, HeadSeq: a.Seq}
	prevSeq, prevHash := a.Seq, a.Hash
	err = l.Store.Ascending(ctx, tenantID, a.Seq, func(e *Entry) error {
		switch {
		case e.Seq == prevSeq:
			v.Broken = &Break{Seq: e.Seq, Reason: fmt.Sprintf("forked: seq %d appears twice", e.Seq)}
		case e.Seq != prevSeq+1:
			v.Broken = &Break{Seq: prevSeq + 1, Reason: fmt.Sprintf("missing: the entry after seq %d is seq %d", prevSeq, e.Seq)}
		case e.PrevHash != prevHash:
			v.Broken = &Break{Seq: e.Seq, Reason: "prev_hash is not the hash of the previous link"}
		case Hash(e) != e.Hash:
			v.Broken = &Break{Seq: e.Seq, Reason: "hash does not match the entry's content"}
		case e.TenantID != tenantID:
			v.Broken = &Break{Seq: e.Seq, Reason: "the entry names another tenant"}
		default:
			prevSeq, prevHash = e.Seq, e.Hash
			v.HeadSeq = e.Seq
			v.Checked++
			return nil
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	v.OK = v.Broken == nil
	if !v.OK && l.Observer != nil {
		l.Observer.VerifyFailed()
	}
	return v, nil
}
