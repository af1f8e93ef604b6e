package sync

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	gosync "sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
)

// RetryPolicy says how the engine retries. Its zero value is usable: every
// zero field takes the default given beside it.
//
// A call to a system (a read of changes, a batch write) that fails with a
// retryable class (transient, rate limited, or unclassified) is retried
// within the cycle with exponential backoff and full jitter: the n-th wait
// is uniformly random in [0, min(MaxBackoff, InitialBackoff·2ⁿ)], or the
// system's Retry-After if that is longer. Permanent, conflict and not-found
// errors are never retried as they are.
//
// A record whose write fails is retried in the next cycles; after
// MaxRecordAttempts transient failures, or at once for a permanent one, it
// is dead-lettered: kept with the reason, no longer retried until replayed.
type RetryPolicy struct {
	// MaxAttempts per call within one cycle, the first included.
	// Zero means 3.
	MaxAttempts int
	// InitialBackoff is the first backoff ceiling. Zero means 100ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the backoff ceiling. Zero means 10s.
	MaxBackoff time.Duration
	// MaxElapsed caps the time spent retrying one call within a cycle.
	// Zero means 30s.
	MaxElapsed time.Duration
	// MaxRetryAfter caps how long a system's Retry-After may park it.
	// A longer one ("come back tomorrow") is capped, counted in the
	// report (SystemReport.RetryAfterCapped) and audited: a connector is
	// never silently parked for long. Zero means 5 minutes.
	MaxRetryAfter time.Duration
	// MaxRecordAttempts is how many cycles a record's write may fail
	// transiently before it is dead-lettered. Zero means 10.
	MaxRecordAttempts int
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 3
	}
	if p.MaxRecordAttempts == 0 {
		p.MaxRecordAttempts = 10
	}
	def(&p.InitialBackoff, 100*time.Millisecond)
	def(&p.MaxBackoff, 10*time.Second)
	def(&p.MaxElapsed, 30*time.Second)
	def(&p.MaxRetryAfter, 5*time.Minute)
	return p
}

func (p RetryPolicy) validate() error {
	if p.MaxAttempts < 0 || p.MaxRecordAttempts < 0 || p.InitialBackoff < 0 || p.MaxBackoff < 0 || p.MaxElapsed < 0 || p.MaxRetryAfter < 0 {
		return fmt.Errorf("negative value in RetryPolicy %+v", p)
	}
	return nil
}

// Backoff returns the ceiling of the wait before retry number n (from 1):
// InitialBackoff·2ⁿ⁻¹, capped at MaxBackoff. The engine waits a uniformly
// random time up to it (full jitter).
func (p RetryPolicy) Backoff(n int) time.Duration {
	p = p.withDefaults()
	d := p.InitialBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

// budget is one system's rate budget, shared by every call the engine makes
// to it, and adaptive: a rate limit halves the rate (down to a sixteenth of
// the configured one) and keeps the system parked until its Retry-After;
// each success raises the rate back by a tenth.
type budget struct {
	mu        gosync.Mutex
	lim       *rate.Limiter // nil: no budget configured
	max       rate.Limit
	notBefore time.Time
}

func newBudget(r rate.Limit, burst int) *budget {
	b := &budget{}
	if r > 0 {
		b.lim, b.max = rate.NewLimiter(r, max(burst, 1)), r
	}
	return b
}

// wait blocks until the budget allows one call, or ctx ends.
func (b *budget) wait(ctx context.Context, now time.Time) error {
	b.mu.Lock()
	until := b.notBefore
	b.mu.Unlock()
	if d := until.Sub(now); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if b.lim == nil {
		return nil
	}
	return b.lim.Wait(ctx)
}

// parked reports until when the system asked not to be called.
func (b *budget) parked(now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notBefore, now.Before(b.notBefore)
}

func (b *budget) limited(now time.Time, after time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := now.Add(after); t.After(b.notBefore) {
		b.notBefore = t
	}
	if b.lim != nil {
		b.lim.SetLimit(max(b.lim.Limit()/2, b.max/16))
	}
}

func (b *budget) succeeded() {
	if b.lim == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if l := b.lim.Limit(); l < b.max {
		b.lim.SetLimit(min(l*1.1, b.max))
	}
}

// Limit returns the budget's current rate (rate.Inf without a budget).
func (b *budget) limit() rate.Limit {
	if b.lim == nil {
		return rate.Inf
	}
	return b.lim.Limit()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call runs op against system s under its budget and the retry policy.
// Waits are real time (time.Now and timers, so testing/synctest controls
// them), never Config.Now; the audit events the loop emits are stamped by
// Config.Now like every other.
func (c *cycle) call(ctx context.Context, s *system, op func(context.Context) error) error {
	p := c.e.retry
	start := time.Now()
	rep := c.report.Systems[s.id]
	for attempt := 1; ; attempt++ {
		if until, parked := s.budget.parked(time.Now()); parked && time.Until(until) > p.MaxElapsed-time.Since(start) {
			// The wait is real time; the text names none (audit events
			// carry Config.Now's time): RateLimited says how long is left.
			return connector.RateLimited(fmt.Errorf("%s asked not to be called yet", s.id), time.Until(until))
		}
		if err := s.budget.wait(ctx, time.Now()); err != nil {
			return err
		}
		err := op(ctx)
		if err == nil {
			s.budget.succeeded()
			return nil
		}
		if ctx.Err() != nil || !connector.Retryable(err) || errors.Is(err, ErrPanic) || errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrAbandoned) { // a panic is a bug, not a blip
			return err
		}
		wait := time.Duration(rand.Int64N(int64(p.Backoff(attempt)) + 1))
		if ra, ok := connector.RetryAfter(err); ok {
			if ra > p.MaxRetryAfter {
				rep.RetryAfterCapped++
				c.mu.Lock()
				c.events.add(audit.Event{Time: c.e.now(), Kind: audit.RetryAfterCapped, Cycle: c.report.Cycle,
					System: s.id, Error: err.Error(), ErrorClass: classOf(err).String(),
					Reason: fmt.Sprintf("%s asked to wait %s; capped at %s", s.id, ra, p.MaxRetryAfter)})
				c.mu.Unlock()
				ra = p.MaxRetryAfter
			}
			s.budget.limited(time.Now(), ra)
			wait = max(wait, ra)
		} else if connector.Classify(err) == connector.ErrRateLimited {
			s.budget.limited(time.Now(), 0)
		}
		rep.Retries++
		if attempt >= p.MaxAttempts || time.Since(start)+wait > p.MaxElapsed {
			return err
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}
