package alert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// DefaultWindow is the grouping window of a [Grouper] unless configured
// otherwise.
const DefaultWindow = 5 * time.Minute

// GrouperConfig configures a [Grouper]. The zero value is useful: a five
// minute window, [DefaultMaxKeys] keys, groups by [DefaultGroupKey], real
// time, no logging.
type GrouperConfig struct {
	// Window is how long after sending an alert of a group the Grouper
	// folds further alerts of the group into one summary. Zero means
	// DefaultWindow.
	Window time.Duration
	// MaxKeys caps the record keys one alert carries. Zero means
	// DefaultMaxKeys.
	MaxKeys int
	// GroupBy returns the group of an alert. Nil means DefaultGroupKey.
	GroupBy func(Alert) string
	// Now is the clock. Nil means time.Now. [Grouper.Run] waits with real
	// timers for the durations this clock gives.
	Now func() time.Time
	// Logger receives the delivery errors of [Grouper.Run], which has no
	// caller to return them to. Nil discards them.
	Logger *slog.Logger
}

// DefaultGroupKey is the default group of an alert: its GroupKey if set,
// else its system and error class, "portal/permanent", so that one outage
// of one system is one group.
func DefaultGroupKey(a Alert) string {
	if a.GroupKey != "" {
		return a.GroupKey
	}
	return string(a.System) + "/" + a.ErrorClass
}

// Grouper folds alerts so that one outage is one alert with a count. It is an
// [Alerter] that forwards to the next one:
//
//   - The first alert of a group is sent at once, and opens a window
//     (GrouperConfig.Window).
//   - Alerts of the group within the window are not sent: they add to a
//     count and to the keys (up to MaxKeys, without duplicates).
//   - When the window ends with such alerts, one summary alert is sent: its
//     Count is the number of occurrences folded into it, its Keys theirs,
//     its Message, System and ErrorClass those of the latest, its Severity
//     the highest seen (Critical over Warning), its Time the end of the
//     window. A new window opens then, so a lasting outage gives one alert
//     per window. A window that ends without alerts closes; the next
//     alert of the group is sent at once again.
//   - [Grouper.Resolve] (or an Alert with Resolved set) ends the outage:
//     if the group has sent an alert, the pending summary if any, then one
//     alert with Resolved set and Severity SeverityResolved, are sent and
//     the group is forgotten. Resolving a group that sent nothing is a
//     no-op.
//
// Summed over the alerts it sends, the Counts equal the occurrences it was
// given (the resolved alert's Count is the outage's total instead).
//
// Windows end by the clock, but something must look at it: [Grouper.Run]
// sends each summary when its window ends; without Run, a summary is sent
// by [Grouper.Flush] or by the next alert of its group.
//
// A Grouper is safe for concurrent use. It calls the next Alerter with its
// lock held, so that the alerts of a group arrive in order; put an [Async]
// after it so that slow deliveries do not hold up callers. An error from
// the next Alerter is returned (by Alert, Resolve and Flush) but does not
// change the grouping: the occurrence counts as sent. Retrying is Async's
// job. A panic (or runtime.Goexit) in the next Alerter is such an error, a
// [*PanicError]: neither the caller's goroutine nor Run's ends. A Grouper
// remembers each group from its first alert until it is resolved, so group
// keys should name failures (systems and classes), not records.
type Grouper struct {
	next    Alerter
	window  time.Duration
	maxKeys int
	groupBy func(Alert) string
	now     func() time.Time
	log     *slog.Logger
	wake    chan struct{} // tells Run that a window opened

	mu     sync.Mutex
	groups map[string]*group
}

// group is the state of one group that has sent an alert.
type group struct {
	total     int       // occurrences since the first alert
	windowEnd time.Time // end of the open window; zero when none is open
	pending   Alert     // folded occurrences not yet sent; Count 0 if none
	last      Alert     // the latest alert, for the resolved notice
}

// NewGrouper returns a Grouper that sends to next. It reports a nil next or
// a negative Window or MaxKeys as an error matching [ErrInvalidConfig]. It
// starts no goroutine.
func NewGrouper(next Alerter, cfg GrouperConfig) (*Grouper, error) {
	switch {
	case next == nil:
		return nil, fmt.Errorf("alert: grouper: nil next Alerter: %w", ErrInvalidConfig)
	case cfg.Window < 0:
		return nil, fmt.Errorf("alert: grouper: negative Window %s: %w", cfg.Window, ErrInvalidConfig)
	case cfg.MaxKeys < 0:
		return nil, fmt.Errorf("alert: grouper: negative MaxKeys %d: %w", cfg.MaxKeys, ErrInvalidConfig)
	}
	g := &Grouper{
		next: next, window: cmp.Or(cfg.Window, DefaultWindow), maxKeys: cmp.Or(cfg.MaxKeys, DefaultMaxKeys),
		groupBy: cfg.GroupBy, now: cfg.Now, log: cfg.Logger,
		wake: make(chan struct{}, 1), groups: map[string]*group{},
	}
	if g.groupBy == nil {
		g.groupBy = DefaultGroupKey
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g, nil
}

// Alert sends a at once if it is the first of its group or its group has no
// open window, and otherwise folds it into the group's next summary. An
// alert with Resolved set resolves its group (see [Grouper.Resolve]), with
// its Message, if any, as the notice's message.
func (g *Grouper) Alert(ctx context.Context, a Alert) error {
	key := g.groupBy(a)
	if a.Resolved {
		return g.resolve(ctx, key, a.Message)
	}
	a.GroupKey = key
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	gr := g.groups[key]
	var errs []error
	if gr != nil && !gr.windowEnd.IsZero() && !now.Before(gr.windowEnd) {
		errs = append(errs, g.closeWindow(ctx, gr, now))
	}
	if gr == nil {
		gr = &group{}
		g.groups[key] = gr
	}
	gr.total += a.occurrences()
	gr.last = a
	if !gr.windowEnd.IsZero() {
		g.fold(&gr.pending, a)
		return errors.Join(errs...)
	}
	gr.windowEnd = now.Add(g.window)
	select {
	case g.wake <- struct{}{}:
	default:
	}
	out := a
	out.Count, out.Keys = a.occurrences(), nil
	g.addKeys(&out, a.Keys)
	if out.Time.IsZero() {
		out.Time = now
	}
	errs = append(errs, safeAlert(ctx, g.next, out))
	return errors.Join(errs...)
}

// fold adds a to the pending summary p.
func (g *Grouper) fold(p *Alert, a Alert) {
	if p.Count == 0 || rank(a.Severity) > rank(p.Severity) {
		p.Severity = a.Severity
	}
	p.System, p.ErrorClass, p.Message, p.GroupKey = a.System, a.ErrorClass, a.Message, a.GroupKey
	p.Count += a.occurrences()
	g.addKeys(p, a.Keys)
}

// addKeys appends to a.Keys those of keys it lacks, up to the cap. a.Keys
// must be owned by the Grouper.
func (g *Grouper) addKeys(a *Alert, keys []string) {
	for _, k := range keys {
		if len(a.Keys) >= g.maxKeys {
			return
		}
		if !slices.Contains(a.Keys, k) {
			a.Keys = append(a.Keys, k)
		}
	}
}

func rank(s Severity) int {
	switch s {
	case Critical:
		return 2
	case Warning:
		return 1
	}
	return 0
}

// closeWindow ends gr's window at now: it sends the pending summary, if
// any, and opens a new window; otherwise it leaves no window open.
func (g *Grouper) closeWindow(ctx context.Context, gr *group, now time.Time) error {
	if gr.pending.Count == 0 {
		gr.windowEnd = time.Time{}
		return nil
	}
	summary := gr.pending
	summary.Time = now
	gr.pending = Alert{}
	gr.windowEnd = now.Add(g.window)
	return safeAlert(ctx, g.next, summary)
}

// Resolve ends the outage of the group named groupKey: if the group has sent
// an alert, Resolve sends its pending summary, if any, and then one resolved
// alert (Resolved set, Severity SeverityResolved, Count the outage's
// occurrences, Message "resolved"), and forgets the group. Otherwise it does
// nothing.
func (g *Grouper) Resolve(ctx context.Context, groupKey string) error {
	return g.resolve(ctx, groupKey, "")
}

func (g *Grouper) resolve(ctx context.Context, key, msg string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr := g.groups[key]
	if gr == nil {
		return nil
	}
	delete(g.groups, key)
	now := g.now()
	var errs []error
	if gr.pending.Count > 0 {
		errs = append(errs, g.closeWindow(ctx, gr, now))
	}
	errs = append(errs, safeAlert(ctx, g.next, Alert{
		Time: now, Severity: SeverityResolved, Resolved: true,
		System: gr.last.System, ErrorClass: gr.last.ErrorClass, GroupKey: key,
		Count: gr.total, Message: cmp.Or(msg, "resolved"),
	}))
	return errors.Join(errs...)
}

// Flush ends every window that has ended by the clock, sending the pending
// summaries, in group key order. [Grouper.Run] calls it; a host without Run
// calls it periodically.
func (g *Grouper) Flush(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(g.groups)) {
		gr := g.groups[key]
		if !gr.windowEnd.IsZero() && !now.Before(gr.windowEnd) {
			errs = append(errs, g.closeWindow(ctx, gr, now))
		}
	}
	return errors.Join(errs...)
}

// nextWindowEnd returns the earliest end of an open window.
func (g *Grouper) nextWindowEnd() (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var next time.Time
	for _, gr := range g.groups {
		if !gr.windowEnd.IsZero() && (next.IsZero() || gr.windowEnd.Before(next)) {
			next = gr.windowEnd
		}
	}
	return next, !next.IsZero()
}

// Run sends each summary when its window ends, until ctx is done; then it
// returns nil. It runs in the caller's goroutine: the host starts it (once)
// and stops it by cancelling ctx. Delivery errors are logged to
// GrouperConfig.Logger. ctx is also passed to the next Alerter.
func (g *Grouper) Run(ctx context.Context) error {
	t := time.NewTimer(g.window)
	defer t.Stop()
	for {
		if err := g.Flush(ctx); err != nil && ctx.Err() == nil {
			g.log.LogAttrs(ctx, slog.LevelError, "alert: summary not delivered", slog.Any("error", err))
		}
		if end, ok := g.nextWindowEnd(); ok {
			t.Reset(end.Sub(g.now()))
		} else {
			t.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-g.wake:
		}
	}
}
