package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/identity"
)

// Run delivers until ctx is done: Workers goroutines take due deliveries, each under a lease.
// Every replica runs it.
func (m *Manager) Run(ctx context.Context) {
	workers := m.Workers
	if workers <= 0 {
		workers = 4
	}
	poll := m.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.sweepEvery(ctx, time.Hour)
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(poll)
			defer t.Stop()
			for {
				if _, err := m.DeliverDue(ctx); err != nil && ctx.Err() == nil {
					m.logError("delivering webhooks", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				case <-m.nudge:
				}
			}
		}()
	}
	wg.Wait()
}

// DeliverDue attempts every delivery due now that no other worker holds, and returns how many
// it attempted.
func (m *Manager) DeliverDue(ctx context.Context) (int, error) {
	if m.Observer != nil {
		if pending, err := m.Store.Pending(ctx); err == nil {
			m.Observer.OutboxDepth(pending)
		}
	}
	n := 0
	for ctx.Err() == nil {
		due, err := m.Store.Due(ctx, m.now(), 16)
		if err != nil {
			return n, err
		}
		took := 0
		for _, d := range due {
			until := m.now().Add(m.lease()).Truncate(time.Millisecond)
			won, err := m.Store.Lease(ctx, d, m.owner, until)
			if err != nil {
				return n, err
			}
			if !won {
				continue
			}
			took++
			if err := m.attempt(ctx, d, until); err != nil {
				return n, err
			}
			n++
		}
		if took == 0 {
			return n, nil
		}
	}
	return n, ctx.Err()
}

func (m *Manager) lease() time.Duration {
	if m.Lease > 0 {
		return m.Lease
	}
	return m.cfg.Timeout + 5*time.Second
}

// outcome is what one POST came to.
type outcome struct {
	status     int
	err        error
	retryAfter time.Duration
}

// attempt makes one attempt of d, which this worker leases until leaseUntil, and records it.
func (m *Manager) attempt(ctx context.Context, d *Delivery, leaseUntil time.Time) error {
	e, err := m.Store.GetEndpoint(ctx, d.EndpointTenant, d.EndpointID)
	if err != nil && err != ErrEndpointNotFound {
		return err
	}
	start := m.now()
	if e == nil || !e.Enabled {
		reason := "endpoint deleted"
		if e != nil {
			reason = "endpoint disabled: " + e.DisabledReason
		}
		_, err := m.Store.Finish(ctx, d.ID, m.owner, leaseUntil, Attempt{At: start, Error: reason}, StatusFailed, start)
		return err
	}
	timer := time.Now()
	out := m.post(ctx, e, d, start)
	latency := time.Since(timer)
	a := Attempt{At: start, StatusCode: out.status, LatencyMS: latency.Milliseconds()}
	if out.err != nil {
		a.Error = out.err.Error()
	}
	now := m.now()
	result, status, next := ResultFailure, StatusPending, now
	switch {
	case out.err == nil && out.status >= 200 && out.status < 300:
		result, status = ResultSuccess, StatusSucceeded
	case out.status == http.StatusGone:
		result, status = ResultDisabled, StatusFailed
	default:
		step := len(d.Attempts) + 1
		if step >= len(m.cfg.RetrySchedule) {
			status = StatusFailed
			break
		}
		wait := jitter(m.cfg.RetrySchedule[step])
		if out.retryAfter > 0 && out.retryAfter < wait {
			wait = out.retryAfter
		}
		next = now.Add(wait)
	}
	if ctx.Err() != nil {
		// Stopping: the lease lapses and another worker makes this attempt again.
		return ctx.Err()
	}
	kept, err := m.Store.Finish(ctx, d.ID, m.owner, leaseUntil, a, status, next)
	if err != nil || !kept {
		// Taken over while we were sending: the other worker's attempt is the one recorded.
		return err
	}
	if m.Observer != nil {
		m.Observer.Attempted(result, latency)
	}
	return m.judgeEndpoint(ctx, e, result, start)
}

// judgeEndpoint keeps the endpoint's run of failures: a 410 disables it at once, five days
// of nothing but failures disable it too, and a success ends the run.
func (m *Manager) judgeEndpoint(ctx context.Context, e *Endpoint, result string, at time.Time) error {
	switch result {
	case ResultSuccess:
		if e.FailingSince != nil {
			return m.Store.ClearFailing(ctx, e.TenantID, e.ID)
		}
		return nil
	case ResultDisabled:
		return m.disable(ctx, e, "the endpoint answered 410 Gone", at)
	}
	since, err := m.Store.MarkFailing(ctx, e.TenantID, e.ID, at)
	if err != nil {
		return err
	}
	if at.Sub(since) >= disableAfter {
		return m.disable(ctx, e, "every attempt failed since "+since.Format(time.RFC3339), at)
	}
	return nil
}

func (m *Manager) disable(ctx context.Context, e *Endpoint, reason string, at time.Time) error {
	if err := m.Store.Disable(ctx, e.TenantID, e.ID, reason, at); err != nil {
		return err
	}
	m.record(ctx, e.TenantID, identity.Actor{}, ActionEndpointDisable, e.ID, map[string]any{"reason": reason})
	return nil
}

// post sends d to e, signed at ts with every secret still valid.
func (m *Manager) post(ctx context.Context, e *Endpoint, d *Delivery, ts time.Time) outcome {
	body := []byte(d.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "saasgate-webhooks")
	req.Header.Set("webhook-id", d.EventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", signature(e.signingSecrets(ts), d.EventID, ts, body))
	resp, err := m.client.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	// Read a little so a small answer's connection can be reused; a big one is cut here.
	_, readErr := io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	out := outcome{status: resp.StatusCode}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		out.err = fmt.Errorf("HTTP %d", resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			out.retryAfter = retryAfter(resp.Header.Get("Retry-After"), ts)
		}
	} else if readErr != nil {
		out.err = fmt.Errorf("reading the answer: %w", readErr)
	}
	return out
}

// sweepEvery deletes, every period, what Sweep deletes; every replica may, as deleting twice
// is harmless.
func (m *Manager) sweepEvery(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
				m.logError("sweeping the webhook outbox", err)
			}
		}
	}
}

// Sweep deletes the deliveries finished (succeeded or failed) and the events recorded more
// than Retention ago (FerretDB has no TTL indexes), and counts the deliveries deleted.
func (m *Manager) Sweep(ctx context.Context) (int64, error) {
	retention := m.Retention
	if retention <= 0 {
		retention = 30 * 24 * time.Hour
	}
	return m.Store.DeleteBefore(ctx, m.now().Add(-retention))
}

// jitter spreads d by ±10 %, so that deliveries failed together do not retry together.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

func (m *Manager) logError(msg string, err error) {
	if m.Logger != nil {
		m.Logger.Error(msg, zap.Error(err))
	}
}
