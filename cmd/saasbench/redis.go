package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisMeter reads what the Redis server has done so far: the limiter scripts it ran (EVAL and
// EVALSHA calls) and its CPU seconds. The zero meter (no Redis) reads zeros.
type redisMeter struct{ rdb redis.UniversalClient }

func (m redisMeter) read() (scripts int64, cpu float64) {
	if m.rdb == nil {
		return 0, 0
	}
	info, err := m.rdb.Info(context.Background(), "commandstats", "cpu").Result()
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(info, "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		switch name {
		case "cmdstat_evalsha", "cmdstat_eval":
			calls, _, _ := strings.Cut(strings.TrimPrefix(value, "calls="), ",")
			n, _ := strconv.ParseInt(calls, 10, 64)
			scripts += n
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(value, 64)
			cpu += f
		}
	}
	return scripts, cpu
}

func cleanRedis(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}
