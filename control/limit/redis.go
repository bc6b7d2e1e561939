package limit

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeScript is GCRA plus a quota counter, atomic in Redis, for up to `want` requests at once:
// one for an exact decision, a block for a lease, none to peek. A lease also hands back what
// its previous block left unused, first: `back` requests to the bucket (the TAT moves back,
// never before now) and `back_quota` to the quota count. Both keys carry the tenant as a hash
// tag, so they live in one Cluster slot. Times are microseconds from the caller's clock
// (replicas keep their clocks in sync with NTP; a skew of d lets through about d/interval
// extra requests): Lua computes in doubles, exact for integers up to 2^53, which microseconds
// since the epoch stay well under and nanoseconds do not. TATs travel back as strings, since
// Redis would truncate a returned fraction.
//
// KEYS: rate key, quota key. ARGV: now, interval, burst, quota (0: none), quota key TTL in
// seconds, want, back, back_quota. Returns {granted, reason, tat, retry_after, used}; a
// rejection grants 0 and changes nothing but the hand-back.
var takeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local quota = tonumber(ARGV[4])
local want = tonumber(ARGV[6])
local back = tonumber(ARGV[7])
local back_quota = tonumber(ARGV[8])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if back > 0 and tat > now then
	tat = math.max(tat - back * interval, now)
	redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
local used = 0
if quota > 0 then
	used = tonumber(redis.call('GET', KEYS[2]) or '0')
	if back_quota > 0 and used > 0 then
		used = redis.call('DECRBY', KEYS[2], math.min(back_quota, used))
	end
end
if want == 0 then
	return {0, 0, string.format('%.0f', tat), 0, used}
end
if quota > 0 then
	if used >= quota then
		return {0, 2, string.format('%.0f', tat), 0, used}
	end
	if quota - used < want then want = quota - used end
end
local avail = math.floor((now - tat + burst * interval) / interval)
if avail < want then want = avail end
if want <= 0 then
	return {0, 1, string.format('%.0f', tat), string.format('%.0f', tat + interval - burst * interval - now), used}
end
local newtat = tat + want * interval
redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', math.ceil((newtat - now) / 1000) + 1000)
if quota > 0 then
	used = redis.call('INCRBY', KEYS[2], want)
	if used == want then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5])) end
end
return {want, 0, string.format('%.0f', newtat), 0, used}
`)

// Redis keeps limiter state in Redis: one EVALSHA per decision (with a fallback to EVAL when
// the script cache was flushed), exact across every instance sharing the server.
type Redis struct {
	Client redis.UniversalClient
	Prefix string // key prefix, e.g. "saasgate:"
}

// Keys returns the rate key of key under plan p and its quota key for period. The bucket is
// per plan, so a plan change starts from a full bucket of the new plan; the quota count
// carries over.
func (r *Redis) Keys(key string, p Policy, period Period) (rate, quota string) {
	base := r.Prefix + "{" + key + "}:"
	return base + "r:" + p.Name, base + "q:" + strconv.FormatInt(period.Start.Unix(), 10)
}

// micro is what the scripts compute with: now and the interval in whole microseconds (at
// least one), and the policy with its interval rounded the same way, for the Go side.
func micro(p Policy, now time.Time) (nowUS, intervalUS int64, rounded Policy) {
	intervalUS = max((int64(p.Interval)+500)/1000, 1)
	rounded = p
	rounded.Interval = time.Duration(intervalUS) * time.Microsecond
	return now.UnixMicro(), intervalUS, rounded
}

// reply decodes {x, reason, tat, retry_after, used} from a script; times come back in ns.
func reply(res []any) (x int64, v verdict, used int64, err error) {
	if len(res) != 5 {
		return 0, verdict{}, 0, errBadReply
	}
	x, _ = res[0].(int64)
	reason, _ := res[1].(int64)
	tat, err1 := toInt64(res[2])
	retry, err2 := toInt64(res[3])
	used, _ = res[4].(int64)
	if err1 != nil || err2 != nil {
		return 0, verdict{}, 0, errBadReply
	}
	return x, verdict{reason: Reason(reason), tat: tat * 1000, retryAfter: retry * 1000}, used, nil
}

// Take implements Store.
func (r *Redis) Take(ctx context.Context, key string, p Policy, period Period, now time.Time) (Decision, error) {
	return r.run(ctx, key, p, period, now, true)
}

// Peek implements Store.
func (r *Redis) Peek(ctx context.Context, key string, p Policy, period Period, now time.Time) (Decision, error) {
	return r.run(ctx, key, p, period, now, false)
}

func (r *Redis) run(ctx context.Context, key string, p Policy, period Period, now time.Time, take bool) (Decision, error) {
	want := int64(0)
	if take {
		want = 1
	}
	granted, v, used, p, err := r.take(ctx, key, p, period, now, want, 0, 0)
	if err != nil {
		return Decision{}, err
	}
	v.allowed = granted == 1 || !take
	return decision(p, period, now.UnixNano(), v.tat, v, used), nil
}

// take runs the script for want requests, handing back first what a previous lease left
// unused; it returns the policy with its interval as the script saw it.
func (r *Redis) take(ctx context.Context, key string, p Policy, period Period, now time.Time, want, back, backQuota int64) (int64, verdict, int64, Policy, error) {
	rateKey, quotaKey, args := r.scriptArgs(key, p, period, now, want, back, backQuota)
	res, err := takeScript.Run(ctx, r.Client, []string{rateKey, quotaKey}, args...).Slice()
	_, _, p = micro(p, now)
	if err != nil {
		return 0, verdict{}, 0, p, err
	}
	granted, v, used, err := reply(res)
	return granted, v, used, p, err
}

// scriptCall is one takeScript call of a pipeline and, once run, its reply.
type scriptCall struct {
	keys []string
	args []any
	cmd  *redis.Cmd
}

// call builds the takeScript call for key, like take.
func (r *Redis) call(key string, p Policy, period Period, now time.Time, want, back, backQuota int64) scriptCall {
	rateKey, quotaKey, args := r.scriptArgs(key, p, period, now, want, back, backQuota)
	return scriptCall{keys: []string{rateKey, quotaKey}, args: args}
}

// pipelineBatch is the most script calls sent in one round trip.
const pipelineBatch = 256

// pipelined runs the calls, pipelineBatch to a round trip, and reports each call's reply
// (granted, verdict, used) or error through result, in order. A call whose script the server
// no longer holds (its script cache flushed) is run again on its own.
func (r *Redis) pipelined(ctx context.Context, calls []scriptCall, result func(i int, granted int64, v verdict, used int64, err error)) {
	for start := 0; start < len(calls); start += pipelineBatch {
		batch := calls[start:min(start+pipelineBatch, len(calls))]
		pipe := r.Client.Pipeline()
		for i := range batch {
			batch[i].cmd = takeScript.EvalSha(ctx, pipe, batch[i].keys, batch[i].args...)
		}
		_, _ = pipe.Exec(ctx)
		for i, c := range batch {
			res, err := c.cmd.Slice()
			if redis.HasErrorPrefix(err, "NOSCRIPT") {
				res, err = takeScript.Run(ctx, r.Client, c.keys, c.args...).Slice()
			}
			var (
				granted, used int64
				v             verdict
			)
			if err == nil {
				granted, v, used, err = reply(res)
			}
			result(start+i, granted, v, used, err)
		}
	}
}

// scriptArgs are the keys and arguments of one takeScript call.
func (r *Redis) scriptArgs(key string, p Policy, period Period, now time.Time, want, back, backQuota int64) (rateKey, quotaKey string, args []any) {
	rateKey, quotaKey = r.Keys(key, p, period)
	nowUS, intervalUS, p := micro(p, now)
	ttl := int64(period.End.Sub(now)/time.Second) + 86400
	return rateKey, quotaKey, []any{nowUS, intervalUS, p.Burst, p.Quota, ttl, want, back, backQuota}
}

type replyError string

func (e replyError) Error() string { return string(e) }

const errBadReply = replyError("limit: unexpected reply from the Redis script")

func toInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, errBadReply
}
