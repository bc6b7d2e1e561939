package tenant

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Bus carries "tenant changed" between replicas over Redis pub/sub, so a suspension or a plan
// change made on one replica reaches every replica's cache within a round trip.
type Bus struct {
	Client  redis.UniversalClient
	Channel string
	Logger  *zap.Logger
}

// Publish announces that tenant id changed.
func (b *Bus) Publish(ctx context.Context, id string) error {
	return b.Client.Publish(ctx, b.Channel, id).Err()
}

// Run invalidates cache entries as announcements arrive, until ctx ends. Until the
// subscription is up, and whenever it is lost, the cache is not authoritative. Each
// (re)subscription flushes the whole cache and lists every tenant again: announcements sent
// while the connection was down are lost, so anything cached may be stale, and a tenant
// created meanwhile unknown.
func (b *Bus) Run(ctx context.Context, cache *Cache) {
	cache.Unsubscribed()
	var resyncs sync.WaitGroup
	defer resyncs.Wait()
	ps := b.Client.Subscribe(ctx, b.Channel)
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
			if m.Kind == "subscribe" {
				cache.Subscribed()
				// Listed beside the loop, so announcements keep arriving meanwhile.
				resyncs.Add(1)
				go func() {
					defer resyncs.Done()
					b.resync(ctx, cache)
				}()
			}
		case *redis.Message:
			if len(m.Payload) <= 63 {
				cache.Invalidate(m.Payload)
			}
		}
	}
}

func (b *Bus) resync(ctx context.Context, cache *Cache) {
	_, _, err := cache.Resync(ctx)
	if err != nil && ctx.Err() == nil && b.Logger != nil {
		b.Logger.Warn("relisting tenants after the invalidation channel came back; misses read the store meanwhile", zap.Error(err))
	}
}
