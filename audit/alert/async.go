package alert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// AsyncConfig configures an [Async] queue. The zero value is useful: the
// defaults are given with each field.
type AsyncConfig struct {
	// QueueSize is how many alerts may wait for delivery; when the queue
	// is full, Alert drops the alert. Zero means 100.
	QueueSize int
	// MaxAttempts is how many times one alert is tried in all, including
	// the first; 1 means no retry. Zero means 5.
	MaxAttempts int
	// InitialBackoff caps the wait before the first retry; the cap doubles
	// with each further retry up to MaxBackoff, and the wait is drawn
	// uniformly between zero and the cap ("full jitter"). Zero means one
	// second.
	InitialBackoff time.Duration
	// MaxBackoff is the largest cap. Zero means one minute.
	MaxBackoff time.Duration
	// DrainTimeout is how long Close waits for queued alerts to be
	// delivered. Zero means ten seconds.
	DrainTimeout time.Duration
	// Logger receives a line for each dropped alert, each failed attempt
	// and each alert given up on. Nil discards them.
	Logger *slog.Logger
}

// Async delivers alerts in the background so that alerting never blocks
// syncing. It is an [Alerter]: Alert only puts the alert in a bounded queue
// and returns at once. A worker takes alerts from the queue and hands them
// to the next Alerter, retrying a failed delivery with exponential backoff
// and full jitter up to AsyncConfig.MaxAttempts times (errors that say
// retrying cannot help, such as a notify.HTTPError with a 4xx status, are not
// retried).
//
// The host owns the worker's lifecycle: either it calls [Async.Run] in a
// goroutine of its own, or [Async.Start] starts one goroutine. Either way,
// [Async.Close] stops accepting alerts, lets the worker deliver what is
// queued within AsyncConfig.DrainTimeout, and waits for it to return.
// Cancelling Run's ctx instead stops the worker at once, leaving queued
// alerts undelivered (Close then reports them).
//
// A next Alerter that panics (or calls runtime.Goexit) does not end the
// worker: the delivery fails with a [*PanicError], which is not retried.
//
// Nothing is lost silently: a dropped alert is counted ([Async.Dropped]),
// logged, and reported to the caller as [ErrQueueFull]; an alert given up
// on is counted ([Async.Failed]) and logged.
//
// One Async per destination (Multi(NewAsync(slack), NewAsync(email)), not
// NewAsync(Multi(slack, email))) keeps a retry from repeating the alert to
// destinations that already have it. Async is safe for concurrent use.
type Async struct {
	next           Alerter
	maxAttempts    int
	initialBackoff time.Duration
	maxBackoff     time.Duration
	drainTimeout   time.Duration
	log            *slog.Logger

	queue    chan Alert
	closing  chan struct{}   // closed by Close: drain, then return
	done     chan struct{}   // closed when the worker has returned
	abortCtx context.Context // cancelled when the drain deadline passes
	abort    context.CancelFunc

	mu      sync.Mutex
	started bool // a worker ran or runs (or Close drained without one)
	closed  bool

	dropped, failed atomic.Uint64
}

// NewAsync returns a queue that delivers to next. It reports a nil next or a
// negative setting as an error matching [ErrInvalidConfig]. It starts no
// goroutine: see [Async.Run] and [Async.Start].
func NewAsync(next Alerter, cfg AsyncConfig) (*Async, error) {
	if next == nil {
		return nil, fmt.Errorf("alert: async: nil next Alerter: %w", ErrInvalidConfig)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"QueueSize", int64(cfg.QueueSize)}, {"MaxAttempts", int64(cfg.MaxAttempts)},
		{"InitialBackoff", int64(cfg.InitialBackoff)}, {"MaxBackoff", int64(cfg.MaxBackoff)},
		{"DrainTimeout", int64(cfg.DrainTimeout)},
	} {
		if f.v < 0 {
			return nil, fmt.Errorf("alert: async: negative %s: %w", f.name, ErrInvalidConfig)
		}
	}
	q := &Async{
		next:           next,
		maxAttempts:    cmp.Or(cfg.MaxAttempts, 5),
		initialBackoff: cmp.Or(cfg.InitialBackoff, time.Second),
		maxBackoff:     cmp.Or(cfg.MaxBackoff, time.Minute),
		drainTimeout:   cmp.Or(cfg.DrainTimeout, 10*time.Second),
		log:            cfg.Logger,
		queue:          make(chan Alert, cmp.Or(cfg.QueueSize, 100)),
		closing:        make(chan struct{}),
		done:           make(chan struct{}),
	}
	if q.maxBackoff < q.initialBackoff {
		return nil, fmt.Errorf("alert: async: MaxBackoff %s below InitialBackoff %s: %w",
			q.maxBackoff, q.initialBackoff, ErrInvalidConfig)
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	q.abortCtx, q.abort = context.WithCancel(context.Background())
	return q, nil
}

// Alert queues a for delivery and returns at once; ctx is not used (the
// worker's context bounds the delivery). If the queue is full, a is
// dropped: Alert counts it, logs it and returns an error matching
// [ErrQueueFull]. After Close it returns an error matching [ErrClosed].
// Async keeps its own copy of a.Keys.
func (q *Async) Alert(ctx context.Context, a Alert) error {
	a.Keys = slices.Clone(a.Keys)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("alert: system %s, group %q: %w", a.System, a.GroupKey, ErrClosed)
	}
	select {
	case q.queue <- a:
		q.mu.Unlock()
		return nil
	default:
	}
	q.mu.Unlock()
	n := q.dropped.Add(1)
	q.log.LogAttrs(ctx, slog.LevelError, "alert: queue full, alert dropped",
		slog.String("title", a.Title()), slog.String("group_key", a.GroupKey), slog.Uint64("dropped", n))
	return fmt.Errorf("alert: system %s, group %q: %w", a.System, a.GroupKey, ErrQueueFull)
}

// Dropped returns how many alerts Alert dropped because the queue was full.
func (q *Async) Dropped() uint64 { return q.dropped.Load() }

// Failed returns how many alerts the worker gave up on: their attempts ran
// out, their error was permanent, or the worker was stopped mid-delivery.
func (q *Async) Failed() uint64 { return q.failed.Load() }

// claim marks the worker as started, or says why it cannot start.
func (q *Async) claim() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return fmt.Errorf("alert: async: %w", ErrClosed)
	case q.started:
		return fmt.Errorf("alert: async: %w", ErrRunning)
	}
	q.started = true
	return nil
}

// Run is the worker: it delivers queued alerts until Close has been called
// and the queue is drained (then it returns nil) or until ctx is done (then
// it returns nil at once, leaving queued alerts). ctx bounds each delivery.
// Run runs in the caller's goroutine; it may be called once, and not
// together with Start: otherwise it returns an error matching [ErrRunning]
// or [ErrClosed].
func (q *Async) Run(ctx context.Context) error {
	if err := q.claim(); err != nil {
		return err
	}
	q.run(ctx)
	return nil
}

// Start starts Run in a new goroutine that Close waits for. It returns an
// error matching [ErrRunning] or [ErrClosed] if a worker was already
// started or the queue closed. Cancelling ctx stops the worker at once.
func (q *Async) Start(ctx context.Context) error {
	if err := q.claim(); err != nil {
		return err
	}
	go q.run(ctx)
	return nil
}

func (q *Async) run(ctx context.Context) {
	defer close(q.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(q.abortCtx, cancel)
	defer stop()
	for ctx.Err() == nil { // checked first: a cancelled worker delivers nothing more
		select {
		case <-ctx.Done():
		case a := <-q.queue:
			q.deliver(ctx, a)
		case <-q.closing:
			q.drain(ctx)
			return
		}
	}
	if n := len(q.queue); n > 0 {
		q.log.LogAttrs(ctx, slog.LevelError, "alert: worker stopped, alerts left undelivered", slog.Int("queued", n))
	}
}

// drain delivers what is queued, until the queue is empty or ctx is done.
func (q *Async) drain(ctx context.Context) {
	for ctx.Err() == nil {
		select {
		case a := <-q.queue:
			q.deliver(ctx, a)
		default:
			return
		}
	}
}

// deliver hands a to next, retrying with backoff.
func (q *Async) deliver(ctx context.Context, a Alert) {
	attrs := func(extra ...slog.Attr) []slog.Attr {
		return append([]slog.Attr{slog.String("title", a.Title()), slog.String("group_key", a.GroupKey)}, extra...)
	}
	for attempt := 1; ; attempt++ {
		err := safeAlert(ctx, q.next, a)
		if err == nil {
			return
		}
		if attempt >= q.maxAttempts || permanent(err) || ctx.Err() != nil {
			q.failed.Add(1)
			extra := []slog.Attr{slog.Int("attempts", attempt), slog.Any("error", err)}
			if pe, ok := errors.AsType[*PanicError](err); ok {
				extra = append(extra, slog.String("stack", string(pe.Stack)))
			}
			q.log.LogAttrs(ctx, slog.LevelError, "alert: not delivered, giving up", attrs(extra...)...)
			return
		}
		wait := q.backoff(attempt)
		q.log.LogAttrs(ctx, slog.LevelWarn, "alert: delivery failed, will retry",
			attrs(slog.Int("attempt", attempt), slog.Duration("retry_in", wait), slog.Any("error", err))...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			q.failed.Add(1)
			q.log.LogAttrs(ctx, slog.LevelError, "alert: not delivered, worker stopped",
				attrs(slog.Int("attempts", attempt), slog.Any("error", err))...)
			return
		case <-t.C:
		}
	}
}

// backoff returns the wait before retry number attempt (1 for the first
// retry): uniform in [0, min(MaxBackoff, InitialBackoff * 2^(attempt-1))].
func (q *Async) backoff(attempt int) time.Duration {
	ceiling := q.initialBackoff
	for i := 1; i < attempt && ceiling < q.maxBackoff; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, q.maxBackoff)
	return rand.N(ceiling + 1)
}

// Close stops accepting alerts and lets the worker deliver what is queued,
// waiting at most AsyncConfig.DrainTimeout; at the deadline it cancels the
// delivery in progress. If no worker was ever started, Close delivers the
// queue itself under the same deadline. It returns after the worker has
// returned, with an error matching [ErrUndelivered] if any alert queued or
// in flight was not delivered. Calling Close again returns nil.
func (q *Async) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	started := q.started
	q.started = true
	// What failed before Close was called is not Close's to report (it
	// was logged and counted in Failed): taken before an Alert can see
	// the queue closed.
	failedBefore := q.failed.Load()
	q.mu.Unlock()
	defer q.abort()

	close(q.closing)
	if !started {
		ctx, cancel := context.WithTimeout(context.Background(), q.drainTimeout)
		q.drain(ctx)
		cancel()
		close(q.done)
	} else {
		t := time.NewTimer(q.drainTimeout)
		select {
		case <-q.done:
		case <-t.C:
			q.abort()
			<-q.done
		}
		t.Stop()
	}
	if lost := uint64(len(q.queue)) + q.failed.Load() - failedBefore; lost > 0 {
		return fmt.Errorf("alert: async: %d alerts: %w", lost, ErrUndelivered)
	}
	return nil
}
