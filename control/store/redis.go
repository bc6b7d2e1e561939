package store

import (
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisKind is the deployment a redis_url describes.
type RedisKind string

const (
	RedisSingle   RedisKind = "single"   // redis://host:port/db
	RedisSentinel RedisKind = "sentinel" // redis://sentinel:26379?master_name=mymaster&addr=sentinel2:26379
	RedisCluster  RedisKind = "cluster"  // redis://node1:6379?addr=node2:6379&addr=node3:6379
)

// RedisOptions says how to reach Redis: the URL's kind and a per-call timeout.
type RedisOptions struct {
	URL string
	// Timeout bounds every call (dial, read, write, pool wait); 0 keeps go-redis' defaults.
	// Calls are not retried when it is set: a retry would double the worst case.
	Timeout time.Duration
}

// RedisKindOf tells which deployment url names: master_name → Sentinel, extra addr
// parameters → Cluster, else a single server.
func RedisKindOf(rawURL string) (RedisKind, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	switch {
	case q.Get("master_name") != "":
		return RedisSentinel, nil
	case q.Has("addr"):
		return RedisCluster, nil
	}
	return RedisSingle, nil
}

// OpenRedis builds a client for o.URL (it does not dial until first used).
func OpenRedis(o RedisOptions) (redis.UniversalClient, error) {
	kind, err := RedisKindOf(o.URL)
	if err != nil {
		return nil, err
	}
	retries := 0
	if o.Timeout > 0 {
		retries = -1 // go-redis: -1 disables retries, 0 means its default of 3
	}
	// bound sets every timeout to o.Timeout and turns retries off: a command is tried once
	// and a dial is attempted once (go-redis otherwise retries a failed dial five times, 100 ms
	// apart, so a dead server would cost half a second per call).
	bound := func(dial, read, write, pool *time.Duration, maxRetries, dialRetries, poolSize, minIdle *int) {
		if o.Timeout > 0 {
			*dial, *read, *write, *pool = o.Timeout, o.Timeout, o.Timeout, o.Timeout
			*maxRetries, *dialRetries = retries, 1
			// With calls this short, waiting for a pooled connection, or dialing one on a busy
			// machine, must be rare: a burst of concurrent requests would otherwise time out in
			// the queue, not in Redis.
			*poolSize = max(*poolSize, 64)
			*minIdle = max(*minIdle, 8)
		}
	}
	switch kind {
	case RedisSentinel:
		opts, err := redis.ParseFailoverURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("redis_url (sentinel): %w", err)
		}
		bound(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries, &opts.DialerRetries, &opts.PoolSize, &opts.MinIdleConns)
		return redis.NewFailoverClient(opts), nil
	case RedisCluster:
		opts, err := redis.ParseClusterURL(o.URL)
		if err != nil {
			return nil, fmt.Errorf("redis_url (cluster): %w", err)
		}
		bound(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries, &opts.DialerRetries, &opts.PoolSize, &opts.MinIdleConns)
		if o.Timeout > 0 {
			opts.MaxRedirects = 1
		}
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis_url: %w", err)
	}
	bound(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries, &opts.DialerRetries, &opts.PoolSize, &opts.MinIdleConns)
	return redis.NewClient(opts), nil
}
