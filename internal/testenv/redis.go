package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisURL is the Redis the tests use when REDIS_URL is not set.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

var (
	redisOnce sync.Once
	redisURL  string
	redisErr  error
)

// RedisURL returns the URL of the test Redis: REDIS_URL, or DefaultRedisURL. The first call in
// a test process checks that it answers; if it does not, every caller fails with instructions
// for starting one. Tests never skip for want of Redis.
func RedisURL(t testing.TB) string {
	t.Helper()
	redisOnce.Do(checkRedis)
	if redisErr != nil {
		t.Fatalf("testenv: %v", redisErr)
	}
	return redisURL
}

func checkRedis() {
	redisURL = os.Getenv("REDIS_URL")
	if redisURL == "" {
		redisURL = DefaultRedisURL
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		redisErr = fmt.Errorf("REDIS_URL %q: %w", redisURL, err)
		return
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		redisErr = fmt.Errorf("the Redis at %s does not answer (%v). The tests need a real Redis: "+
			"start one with `redis-server --daemonize yes --port 6379 --save \"\"`, or run "+
			"`bash .ci/run`, which starts it and runs the tests; set REDIS_URL to use another",
			opts.Addr, err)
	}
}

// RedisClient returns a client for the test Redis, closed when the test ends.
func RedisClient(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("testenv: %v", err) // unreachable: RedisURL parsed it
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// KeyPrefix returns a key prefix unique to this call ("test:<random hex>:"). Code under test that
// takes a key prefix keeps its keys apart from other tests' this way; the keys under the prefix
// are deleted when the test ends.
func KeyPrefix(t testing.TB) string {
	t.Helper()
	prefix := "test:" + randomHex(8) + ":"
	c := RedisClient(t)
	// Registered after RedisClient's cleanup, so it runs before the client is closed.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deleteKeys(ctx, c, prefix); err != nil {
			t.Errorf("testenv: deleting Redis keys %s*: %v", prefix, err)
		}
	})
	return prefix
}

// deleteKeys deletes every key under prefix. The prefix is random hex and colons, so it holds no
// glob metacharacters to escape.
func deleteKeys(ctx context.Context, c *redis.Client, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 500).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
