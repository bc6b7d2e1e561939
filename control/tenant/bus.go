package tenant

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/store"
)

// Bus carries tenant changes between replicas over Redis pub/sub, so that a tenant created,
// suspended or moved to another plan on one replica is served so on every replica within a
// round trip, without a store read.
//
// It uses two channels. Channel carries bare tenant ids, "this tenant changed": the message of
// the previous versions, which read it as an invalidation (the next lookup reads the store).
// Channel+":state" carries the tenant's new state (an Announcement), which a cache takes as it
// is. Each change is published on both, the id first, in one script so that every subscriber
// receives them in that order (the id marks the entry, the state makes it valid again): a
// replica of the previous version, during a rolling upgrade, hears the id, and this version
// hears both, or only the id from a replica of the previous version.
//
// A state is taken as it is, so it is signed: whoever can publish on Redis must not be able to
// lift a suspension or change a plan in every replica's cache. SetKey gives the key (the
// replicas share it: control derives it from jwt_secret); a state whose signature does not
// match is dropped, and the bare id sent with it has already sent the next lookup to the
// store. Until it has a key a bus publishes states unsigned and takes none.
type Bus struct {
	Client  redis.UniversalClient
	Channel string
	Logger  *zap.Logger

	key atomic.Pointer[[]byte]
}

// SetKey sets the key states are signed and checked with; a reload may change it.
func (b *Bus) SetKey(key []byte) { b.key.Store(&key) }

// sigLen is the length of a state's signature: base64url of HMAC-SHA256, before the JSON.
const sigLen = 43

// sign prefixes msg with its signature under the bus's key, if it has one.
func (b *Bus) sign(msg []byte) []byte {
	k := b.key.Load()
	if k == nil {
		return msg
	}
	m := hmac.New(sha256.New, *k)
	m.Write(msg)
	out := base64.RawURLEncoding.AppendEncode(make([]byte, 0, sigLen+len(msg)), m.Sum(nil))
	return append(out, msg...)
}

// verify returns the announcement of a signed payload, or false when the signature does not
// match (or is missing) under the bus's key.
func (b *Bus) verify(payload string) (string, bool) {
	k := b.key.Load()
	if k == nil || len(payload) < sigLen {
		return "", false
	}
	sig, err := base64.RawURLEncoding.DecodeString(payload[:sigLen])
	if err != nil {
		return "", false
	}
	m := hmac.New(sha256.New, *k)
	m.Write([]byte(payload[sigLen:]))
	return payload[sigLen:], hmac.Equal(sig, m.Sum(nil))
}

// StateChannel is the channel the tenants' states are announced on.
func (b *Bus) StateChannel() string { return b.Channel + ":state" }

// publishBoth publishes the bare id on KEYS[1] and the announcement (ARGV[3]) on ARGV[2].
// The ids channel is passed as the key only so that Redis Cluster routes the script somewhere;
// one node runs both PUBLISHes and broadcasts them in order.
var publishBoth = redis.NewScript(`
redis.call('PUBLISH', KEYS[1], ARGV[1])
return redis.call('PUBLISH', ARGV[2], ARGV[3])
`)

// Publish announces t's new state (and its id, for replicas of the previous version).
func (b *Bus) Publish(ctx context.Context, t *Tenant) error {
	msg, ok := EncodeState(t)
	return b.publish(ctx, t.ID, msg, ok)
}

// PublishRemoval announces that tenant id was removed.
func (b *Bus) PublishRemoval(ctx context.Context, id string) error {
	msg, ok := EncodeRemoval(id)
	return b.publish(ctx, id, msg, ok)
}

func (b *Bus) publish(ctx context.Context, id string, msg []byte, ok bool) error {
	if !ok { // too large to announce: the id alone makes every replica read the store
		return b.Client.Publish(ctx, b.Channel, id).Err()
	}
	return publishBoth.Run(ctx, b.Client, []string{b.Channel}, id, b.StateChannel(), b.sign(msg)).Err()
}

// Run applies announcements to the cache as they arrive, until ctx ends. Until the
// subscription is up, and whenever it is lost, the cache is not authoritative. Each
// (re)subscription flushes the whole cache and lists every tenant again: announcements sent
// while the connection was down are lost, so anything cached may be stale, and a tenant
// created meanwhile unknown.
func (b *Bus) Run(ctx context.Context, cache *Cache) {
	cache.Unsubscribed()
	var resyncs sync.WaitGroup
	defer resyncs.Wait()
	ps := b.Client.Subscribe(ctx, b.Channel, b.StateChannel())
	// Receive blocks in a read that ignores ctx; closing the subscription is what ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	backoff := 100 * time.Millisecond
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			cache.Unsubscribed()
			if b.Logger != nil {
				b.Logger.Warn("tenant invalidation channel lost; retrying", zap.Error(err))
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			// Both channels are subscribed by one command, whose confirmations arrive
			// together; the last one says the subscription is whole.
			if m.Kind == "subscribe" && m.Channel == b.StateChannel() {
				cache.Subscribed()
				// Listed beside the loop, so announcements keep arriving meanwhile.
				resyncs.Add(1)
				go func() {
					defer resyncs.Done()
					b.resync(ctx, cache)
				}()
			}
		case *redis.Message:
			switch m.Channel {
			case b.Channel:
				if store.ValidTenantID(m.Payload) { // each taken leaves an entry in the cache
					cache.Invalidate(m.Payload)
				}
			case b.StateChannel():
				b.apply(cache, m.Payload)
			}
		}
	}
}

// apply hands an announcement to the cache. A malformed one is dropped: the bare id published
// with it has already marked the entry.
func (b *Bus) apply(cache *Cache, payload string) {
	payload, signed := b.verify(payload)
	if !signed {
		if b.Logger != nil {
			b.Logger.Warn("ignoring a tenant announcement whose signature does not match: a replica with another jwt_secret, or someone else publishing on Redis",
				zap.Int("bytes", len(payload)))
		}
		return
	}
	a, err := DecodeAnnouncement([]byte(payload))
	switch {
	case err != nil:
		if b.Logger != nil {
			b.Logger.Debug("ignoring a malformed tenant announcement", zap.Int("bytes", len(payload)), zap.Error(err))
		}
	case a.Removed:
		cache.Removed(a.ID)
	case a.Tenant != nil:
		cache.Put(a.Tenant)
	default:
		cache.Invalidate(a.ID)
	}
}

func (b *Bus) resync(ctx context.Context, cache *Cache) {
	_, _, err := cache.Resync(ctx)
	if err != nil && ctx.Err() == nil && b.Logger != nil {
		b.Logger.Warn("relisting tenants after the invalidation channel came back; misses read the store meanwhile", zap.Error(err))
	}
}
