package sync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/transform"
)

// System configures one system of a pipeline.
type System struct {
	// ID names the system; it must be unique and stable.
	ID concord.SystemID
	// Connector reads from and writes to the system. Required.
	Connector connector.Connector
	// Inbound maps the system's records to the canonical shape; nil
	// means they already have it.
	Inbound transform.Transformer
	// Outbound maps canonical records to the system's shape; nil means
	// the system uses the canonical shape.
	Outbound transform.Transformer
	// BatchSize is the most records asked for per read and sent per
	// write. Zero means 100.
	BatchSize int
	// Rate is the system's budget of calls per second, shared by every
	// call the engine makes to it; Burst how many may go at once. Zero
	// Rate means no budget. The budget adapts to rate limiting: a 429
	// halves it and honours Retry-After; successes restore it.
	Rate  rate.Limit
	Burst int
}

// Config configures an [Engine]. The zero values of the optional fields are
// documented and usable.
type Config struct {
	// Systems to keep in agreement: at least two.
	Systems []System
	// Groups declares field groups: canonical fields that only make sense
	// together (an address). A group is versioned and merged as one unit,
	// so a merge never combines the street of one edit with the postal
	// code of another. Keys are group names, values their fields.
	Groups map[string][]string
	// Resolver settles conflicts. If it also implements resolve.Gate it
	// is consulted as a gate too (resolve.SystemOfRecord does, so that
	// non-owner edits are reverted). Nil holds every conflict for a
	// person.
	Resolver resolve.Resolver
	// Gates see every change before it becomes canonical.
	Gates []resolve.Gate
	// Dictionary, when set, validates every record at the boundary, in
	// canonical shape: each record read, after the inbound transforms and
	// before the merge (an invalid one is dead-lettered with its raw and
	// transformed payloads and every violation; its batch goes on), and
	// each write, on what the target system will report back (so that a
	// transform bug cannot write garbage). A *dict.Dictionary is one; see
	// [Validator] for writing another.
	Dictionary Validator
	// Audit receives every event. Nil means audit.Discard.
	Audit audit.Sink
	// Store holds the engine's state: store.NewMemory() for tests and
	// hosts that rebuild their state on start, a durable store
	// (sync/store/boltstore, sync/store/pgstore) otherwise. Required: a
	// nil Store is an error, so that no host forgets its state on restart
	// by accident.
	Store store.Store
	// Logger for operational messages. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for audit timestamps and holds (never for
	// ordering edits). Nil means time.Now.
	Now func() time.Time
	// MaxBatches is the most batches read from one system in one cycle.
	// Zero means 10.
	MaxBatches int
	// Retry is the retry policy for calls and records; see RetryPolicy
	// for the defaults of its zero value.
	Retry RetryPolicy
	// Alerter is told about failures people must know of: systems that
	// cannot be read, writes that fail or are dead-lettered, Retry-After
	// answers that were capped; and, once per failure group, when the
	// system works again (Alert.Resolved). The engine calls it after each
	// cycle and never waits on it for long; wrap it in alert.NewGrouper
	// (one outage, one alert) and alert.NewAsync (retried delivery that
	// never blocks). Nil: no alerts (failures are still audited).
	Alerter alert.Alerter
	// MeterProvider receives the engine's metrics through OpenTelemetry's
	// metric API (the host owns the SDK and exporters). Nil: only
	// [Engine.Stats].
	MeterProvider metric.MeterProvider
	// Instance names this engine among the instances that share a Store
	// (a host name, a pod name). Cycles take the store's lease Pipeline
	// as Instance, so that two instances never run a cycle of the same
	// pipeline at once. Empty means a random name.
	Instance string
	// Pipeline names the lease; instances syncing the same systems share
	// it. Empty means "default".
	Pipeline string
	// LeaseTTL bounds how long a cycle may hold the lease before another
	// instance may take it over (its commit is then refused). Zero means
	// one minute.
	LeaseTTL time.Duration
}

// Validator checks a canonical record; the error names every field at
// fault and why.
//
// The documented form of that error is a [*transform.Violations] (or a
// single [transform.Violation]), which package dict returns: the engine
// reads it field by field. When it validates a write, a violation whose
// Rule is [transform.ErrRequired] for a field the target system does not
// carry at all is ignored (the system is not at fault for lacking it); any
// other violation, and any error of another type, refuses the write. On the
// way in, any error quarantines the record with the error as the reason.
// Validate may be called concurrently for different records and must not
// modify rec; a panic is recovered and counts as the record's failure.
type Validator interface {
	Validate(rec concord.Record) error
}

// Engine keeps the configured systems in agreement. Create it with [New].
// Its methods are safe for concurrent use; cycles run one at a time.
type Engine struct {
	cfg      Config
	systems  []*system
	byID     map[concord.SystemID]*system
	layout   *layout
	gates    []resolve.Gate
	store    stateStore
	retry    RetryPolicy
	metrics  *metrics
	alerting alerting
	audit    audit.Sink
	log      *slog.Logger
	now      func() time.Time

	names atomic.Pointer[actorNames] // what the actors of versions stand for (names.go)

	mu gosync.Mutex // serialises cycles
	// refresh holds, per system, the keys whose writes failed on a
	// version conflict: the next cycle reads them again (refetch).
	refreshMu gosync.Mutex
	refresh   map[concord.SystemID]map[string]bool
	merger    *merger
	engine    concord.Actor
	epoch     uint64
	ready     bool
	cycle     uint64
	// noWriteAhead skips the commit before a cycle's writes: only for
	// BenchmarkEditCycle to measure what it costs (export_test.go).
	noWriteAhead bool
}

type system struct {
	System
	id     concord.SystemID
	actor  concord.Actor
	budget *budget
}

// ErrConfig is wrapped by every error [New] returns.
var ErrConfig = errors.New("concord: invalid config")

// configErr wraps ErrConfig; an error among args that format wraps with %w
// stays inspectable with errors.Is and errors.As.
func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// New validates cfg and returns an Engine. It does no I/O and starts no
// goroutine.
func New(cfg Config) (*Engine, error) {
	if len(cfg.Systems) < 2 {
		return nil, configErr("need at least two systems, got %d", len(cfg.Systems))
	}
	e := &Engine{cfg: cfg, byID: map[concord.SystemID]*system{}}
	for i, s := range cfg.Systems {
		switch {
		case s.ID == "":
			return nil, configErr("system %d has no ID", i)
		case s.Connector == nil:
			return nil, configErr("system %q has a nil Connector", s.ID)
		case s.BatchSize < 0:
			return nil, configErr("system %q: negative BatchSize %d", s.ID, s.BatchSize)
		case s.Rate < 0 || s.Burst < 0:
			return nil, configErr("system %q: negative Rate or Burst", s.ID)
		}
		if _, dup := e.byID[s.ID]; dup {
			return nil, configErr("system %q is configured twice", s.ID)
		}
		if s.Inbound == nil {
			s.Inbound = transform.Identity
		}
		if s.Outbound == nil {
			s.Outbound = transform.Identity
		}
		if s.BatchSize == 0 {
			s.BatchSize = 100
		}
		sys := &system{System: s, id: s.ID, budget: newBudget(s.Rate, s.Burst)}
		e.systems = append(e.systems, sys)
		e.byID[s.ID] = sys
	}
	// A deterministic order: by ID.
	slices.SortFunc(e.systems, func(a, b *system) int { return strings.Compare(string(a.id), string(b.id)) })
	l, err := newLayout(cfg.Groups)
	if err != nil {
		return nil, configErr("%w", err)
	}
	e.layout = l
	if cfg.MaxBatches < 0 {
		return nil, configErr("negative MaxBatches %d", cfg.MaxBatches)
	}
	if cfg.MaxBatches == 0 {
		e.cfg.MaxBatches = 10
	}
	if err := cfg.Retry.validate(); err != nil {
		return nil, configErr("%w", err)
	}
	e.retry = cfg.Retry.withDefaults()
	m, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, configErr("creating metric instruments: %w", err)
	}
	e.metrics = m
	e.alerting = alerting{to: cfg.Alerter, failing: map[string]alert.Alert{}}
	for i, g := range cfg.Gates {
		if g == nil {
			return nil, configErr("gate %d is nil", i)
		}
	}
	e.gates = slices.Clone(cfg.Gates)
	if g, ok := cfg.Resolver.(resolve.Gate); ok {
		e.gates = append([]resolve.Gate{g}, e.gates...)
	}
	if cfg.Store == nil {
		return nil, configErr("Store is nil (use store.NewMemory() for a state kept in memory)")
	}
	e.store = stateStore{cfg.Store}
	e.audit = cfg.Audit
	if e.audit == nil {
		e.audit = audit.Discard
	}
	e.log = cfg.Logger
	if e.log == nil {
		e.log = slog.Default()
	}
	e.now = cfg.Now
	if e.now == nil {
		e.now = time.Now
	}
	if cfg.LeaseTTL < 0 {
		return nil, configErr("negative LeaseTTL %v", cfg.LeaseTTL)
	}
	if e.cfg.LeaseTTL == 0 {
		e.cfg.LeaseTTL = time.Minute
	}
	if e.cfg.Instance == "" {
		e.cfg.Instance = fmt.Sprintf("instance-%016x", rand.Uint64())
	}
	if e.cfg.Pipeline == "" {
		e.cfg.Pipeline = "default"
	}
	e.guardComponents()
	e.audit = namingSink{next: e.audit, names: &e.names}
	return e, nil
}

// engineActorName is the prefix of the store's actor name for the engine
// itself (the actor that versions refusals of edits); the epoch follows it.
const engineActorName = "concord/engine@"

// init resolves actor numbers on first use, and the engine's own actor again
// whenever the store's epoch changed.
func (e *Engine) init(ctx context.Context) error {
	epoch, err := e.store.Epoch(ctx)
	if err != nil {
		return fmt.Errorf("concord: reading the store's epoch: %w", err)
	}
	if e.ready && epoch == e.epoch {
		return nil
	}
	if e.ready {
		a, err := e.store.Actor(ctx, engineActorName+strconv.FormatUint(epoch, 16))
		if err != nil {
			return fmt.Errorf("concord: assigning the engine's actor: %w", err)
		}
		e.engine, e.merger.engine, e.epoch = a, a, epoch
		e.nameActors()
		e.log.Info("concord: new store epoch; the engine takes a new identity", "epoch", epoch)
		return nil
	}
	for _, s := range e.systems {
		a, err := e.store.Actor(ctx, "system/"+string(s.id))
		if err != nil {
			return fmt.Errorf("concord: assigning actor to %q: %w", s.id, err)
		}
		s.actor = a
	}
	a, err := e.store.Actor(ctx, engineActorName+strconv.FormatUint(epoch, 16))
	if err != nil {
		return fmt.Errorf("concord: assigning the engine's actor: %w", err)
	}
	e.engine, e.epoch = a, epoch
	e.merger = &merger{layout: e.layout, systems: e.systems, resolver: e.cfg.Resolver, gates: e.gates, engine: a, now: e.now}
	e.nameActors()
	e.ready = true
	return nil
}

// Report says what one cycle (or one Ingest) did.
type Report struct {
	// Cycle number, counted from 1 by this Engine.
	Cycle uint64
	// Started and Finished by the engine's clock.
	Started, Finished time.Time
	// Systems has one entry per configured system.
	Systems map[concord.SystemID]*SystemReport
	// Records is the number of records merged.
	Records int
	// Failures lists what did not succeed, per record where it applies.
	Failures []Failure
}

// SystemReport counts what happened in one system during a cycle.
type SystemReport struct {
	Read             int // records read
	Edits            int // unit edits detected
	Conflicts        int // conflicts this system took part in
	Held             int // units held for a person
	Refused          int // edits refused by a gate
	Writes           int // patches applied
	Failed           int // patches or reads that failed
	Quarantined      int // records dead-lettered on the way in
	ReadCalls        int // batches asked for
	DeadLettered     int // writes dead-lettered (permanent, or too many attempts)
	Retries          int // calls retried within the cycle
	RetryAfterCapped int // Retry-After answers longer than the policy allows
}

// Failure is one thing that did not succeed in a cycle.
type Failure struct {
	System concord.SystemID
	Key    string // empty for a whole read
	Op     Op     // the step that failed
	Err    error
}

// Error formats the failure: system, step, record and cause.
func (f Failure) Error() string {
	s := string(f.Op)
	if f.System != "" {
		s = string(f.System) + " " + s
	}
	if f.Key != "" {
		s += fmt.Sprintf(" record %q", f.Key)
	}
	if f.Err == nil {
		return s + ": failed"
	}
	return s + ": " + f.Err.Error()
}

// Unwrap returns the cause.
func (f Failure) Unwrap() error { return f.Err }

// CycleError is returned by [Engine.RunCycle] and [Engine.Ingest] when some
// records or calls failed. Everything else in the cycle was committed; the
// failed work is retried in the next cycle (nothing is lost). errors.Is and
// errors.As see every failure's cause.
type CycleError struct {
	Failures []Failure
}

// MaxListedFailures is how many failures [CycleError.Error] spells out;
// it counts the rest ("and 7 more"). Failures has them all.
const MaxListedFailures = 10

// Error lists the failures, one after the other, the first
// [MaxListedFailures] of them in full.
func (e *CycleError) Error() string {
	switch len(e.Failures) {
	case 0:
		return "concord: cycle failed"
	case 1:
		return "concord: " + e.Failures[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "concord: %d failures: ", len(e.Failures))
	for i, f := range e.Failures[:min(len(e.Failures), MaxListedFailures)] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	if n := len(e.Failures) - MaxListedFailures; n > 0 {
		fmt.Fprintf(&b, "; and %d more", n)
	}
	return b.String()
}

// Unwrap returns the failures.
func (e *CycleError) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f
	}
	return out
}

// resolution is a record in sync with a system again after failures.
type resolution struct {
	system concord.SystemID
	after  time.Duration
}

// cycle is the work of one RunCycle or Ingest.
type cycle struct {
	e          *Engine
	mu         gosync.Mutex // guards events appended by parallel calls
	resolved   []resolution
	converged  []time.Duration // records whose systems agree again, and after how long
	edited     []*state.Record // records with edits this cycle
	lease      *store.Lease
	report     *Report
	obs        map[string][]*observation
	cursors    map[concord.SystemID]connector.Cursor
	dead       []DeadLetter
	removeDead []uint64 // dead letters this cycle settles
	events     []audit.Event
	// writeEvents audit the writes: emitted even if the cycle's commit
	// fails, since the writes happened.
	writeEvents []audit.Event
	emitted     int // events already emitted (those committed before the writes)

	// remerging: by key, the merge dead letters merged again (remerge.go).
	remerging map[string][]DeadLetter
}

func (e *Engine) newCycle() *cycle {
	e.cycle++
	r := &Report{Cycle: e.cycle, Started: e.now(), Systems: map[concord.SystemID]*SystemReport{}}
	for _, s := range e.systems {
		r.Systems[s.id] = &SystemReport{}
	}
	return &cycle{e: e, report: r, obs: map[string][]*observation{}, cursors: map[concord.SystemID]connector.Cursor{}}
}

func (c *cycle) fail(s concord.SystemID, key string, op Op, err error) {
	c.report.Failures = append(c.report.Failures, Failure{System: s, Key: key, Op: op, Err: err})
	c.report.Systems[s].Failed++
}

// RunCycle runs one cycle: read the changes of every system since its
// cursor, merge them with the stored state, write the patches, and commit.
// It returns the report and, if anything failed, a [*CycleError] (what
// succeeded is committed all the same). Cancelling ctx stops the cycle; what
// was not committed is redone by the next one.
func (e *Engine) RunCycle(ctx context.Context) (*Report, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, release, err := e.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := c.pull(ctx); err != nil {
		return c.report, err
	}
	return c.finish(ctx)
}

// begin takes the pipeline's lease and starts a cycle; release gives the
// lease back.
func (e *Engine) begin(ctx context.Context) (*cycle, func(), error) {
	if err := e.init(ctx); err != nil {
		return nil, nil, err
	}
	l, err := e.store.AcquireLease(ctx, e.cfg.Pipeline, e.cfg.Instance, e.cfg.LeaseTTL)
	if err != nil {
		return nil, nil, err
	}
	c := e.newCycle()
	c.lease = &l
	release := func() {
		// Best effort, detached from a cancelled ctx: an unreleased
		// lease only delays the next holder until it expires.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := e.store.ReleaseLease(rctx, l); err != nil {
			e.log.Warn("concord: releasing the lease", "lease", l.Name, "error", err)
		}
	}
	return c, release, nil
}

// Ingest merges records that a system pushed (a webhook, a message) as if
// they had been read from it: they are transformed, merged and written to
// the other systems in one step. It does not move the system's cursor, so
// the next cycle may read the same changes again; that is harmless.
func (e *Engine) Ingest(ctx context.Context, from concord.SystemID, records []concord.Record) (*Report, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.byID[from]
	if !ok {
		return nil, fmt.Errorf("%w: Ingest from %q", ErrUnknownSystem, from)
	}
	c, release, err := e.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := c.observe(ctx, s, records, false); err != nil {
		return c.report, err
	}
	return c.finish(ctx)
}

// ErrUnknownSystem is returned for a system ID that is not configured
// ([Engine.ResetCursor], or [Engine.Replay] of a dead letter from a system
// no longer configured).
var ErrUnknownSystem = errors.New("concord: unknown system")

// ErrInvalidInterval is returned by [Engine.Run] for an interval that is
// not positive.
var ErrInvalidInterval = errors.New("concord: invalid interval")

// ErrCursorWentBack is the cause of a cycle failure ([OpCursor]) when a
// connector answered a stored cursor with an empty one: a cursor going back
// would make every cycle read everything again. The stored cursor is kept
// and the records read are used; if the system really must be read from the
// start, an operator says so with [Engine.ResetCursor].
var ErrCursorWentBack = errors.New("concord: the connector's cursor went back")

// ResetCursor sets the stored cursor of system to cursor ("" reads the
// system from the start), as decided by person for reason (both audited):
// the way out of a cursor the connector no longer accepts. Records read
// again are recognised as already known; nothing is written twice.
func (e *Engine) ResetCursor(ctx context.Context, system concord.SystemID, cursor connector.Cursor, person, reason string) error {
	switch {
	case person == "":
		return fmt.Errorf("concord: ResetCursor of %q: %w", system, ErrNoPerson)
	case reason == "":
		return fmt.Errorf("concord: ResetCursor of %q: %w", system, ErrNoReason)
	}
	if _, ok := e.byID[system]; !ok {
		return fmt.Errorf("%w: ResetCursor of %q", ErrUnknownSystem, system)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, release, err := e.begin(ctx)
	if err != nil {
		return err
	}
	defer release()
	old, err := e.store.Cursor(ctx, system)
	if err != nil {
		return fmt.Errorf("concord: loading cursor of %q: %w", system, err)
	}
	if err := e.store.Commit(ctx, &batch{Lease: c.lease, Cursors: map[concord.SystemID]connector.Cursor{system: cursor}}); err != nil {
		return fmt.Errorf("concord: resetting cursor of %q: %w", system, err)
	}
	return e.audit.Emit(ctx, []audit.Event{{Time: e.now(), Kind: audit.CursorReset, System: system,
		Reason: fmt.Sprintf("cursor of %s reset from %q to %q by %s: %s", system, old, cursor, person, reason)}})
}

// Run runs a cycle every interval until ctx is cancelled, and returns
// ctx's error. A cycle's failures are logged and retried by the next cycle;
// they do not stop Run.
func (e *Engine) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("concord: Run: %w: %v, must be positive", ErrInvalidInterval, interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rep, err := e.RunCycle(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrLeaseHeld) {
			e.log.Debug("concord: another instance is running this pipeline", "error", err)
		} else if ce, ok := errors.AsType[*CycleError](err); ok && rep != nil {
			// Everything else committed: the error lists what failed.
			e.log.Warn("concord: cycle had failures", "cycle", rep.Cycle, "failures", len(ce.Failures), "error", err)
		} else if err != nil {
			e.log.Warn("concord: cycle failed", "error", err)
		} else if rep != nil {
			e.log.Debug("concord: cycle done", "cycle", rep.Cycle, "records", rep.Records)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pull reads every system's changes concurrently and turns them into
// observations.
func (c *cycle) pull(ctx context.Context) error {
	type result struct {
		recs []concord.Record
		next connector.Cursor
		read bool
		err  error
		back error // the connector's cursor went back
	}
	results := make([]result, len(c.e.systems))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range c.e.systems {
		g.Go(func() error {
			cur, err := c.e.store.Cursor(gctx, s.id)
			if err != nil {
				return fmt.Errorf("concord: loading cursor of %q: %w", s.id, err)
			}
			r := &results[i]
			for range c.e.cfg.MaxBatches {
				var b connector.Batch
				c.report.Systems[s.id].ReadCalls++
				err := c.call(gctx, s, func(ctx context.Context) (err error) {
					b, err = s.Connector.Changes(ctx, cur, s.BatchSize)
					return err
				})
				if err != nil {
					r.err = err
					break
				}
				r.recs = append(r.recs, b.Records...)
				if cur != "" && b.Next == "" {
					// A cursor going back to the start would re-read
					// everything every cycle: keep the stored one.
					r.back = fmt.Errorf("%w: %s answered cursor %q with an empty cursor", ErrCursorWentBack, s.id, cur)
					break
				}
				cur, r.read = b.Next, true
				if !b.More {
					break
				}
			}
			r.next = cur
			if r.err == nil {
				r.err = c.refetch(gctx, s, &r.recs)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, s := range c.e.systems {
		r := results[i]
		if r.err != nil {
			c.fail(s.id, "", OpRead, r.err)
			c.events = append(c.events, audit.Event{Time: c.e.now(), Kind: audit.ReadFailed, Cycle: c.report.Cycle, System: s.id,
				Error: r.err.Error(), ErrorClass: classOf(r.err).String()})
		}
		if r.back != nil {
			c.report.Failures = append(c.report.Failures, Failure{System: s.id, Op: OpCursor, Err: r.back})
			c.events = append(c.events, audit.Event{Time: c.e.now(), Kind: audit.CursorWentBack, Cycle: c.report.Cycle, System: s.id,
				Error: r.back.Error(), ErrorClass: ClassCursor.String()})
		}
		if r.read {
			c.cursors[s.id] = r.next
		}
		if err := c.observe(ctx, s, r.recs, true); err != nil {
			return err
		}
	}
	return nil
}

// refreshLater has the next cycle read key from system again by key
// (refetch); notFound says the system answered that it does not have it.
func (e *Engine) refreshLater(system concord.SystemID, key string, notFound bool) {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	if e.refresh == nil {
		e.refresh = map[concord.SystemID]map[string]bool{}
	}
	if e.refresh[system] == nil {
		e.refresh[system] = map[string]bool{}
	}
	e.refresh[system][key] = e.refresh[system][key] || notFound
}

// refetch reads again, by key, the records whose writes to s failed on a
// version conflict: the change feed may never bring them back (its cursor
// is past them), and the engine must learn their current state to merge and
// write again. It needs a connector.Getter; without one the conflict is
// settled when the feed brings the record. The records read are appended
// to recs, after the feed's, so that they supersede older reports.
//
// A record the system does not have (Get omits it, or a write was answered
// "not found") is reported as deleted there: the system's own statement
// that it does not exist, merged like any delete (a blind re-creation would
// undo a delete the feed has not brought yet).
func (c *cycle) refetch(ctx context.Context, s *system, recs *[]concord.Record) error {
	c.e.refreshMu.Lock()
	want := maps.Clone(c.e.refresh[s.id])
	c.e.refreshMu.Unlock()
	if len(want) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(want))
	missing := map[string]bool{}
	if g, ok := s.Connector.(connector.Getter); ok {
		for _, k := range keys {
			missing[k] = true
		}
		for start := 0; start < len(keys); start += s.BatchSize {
			batch := keys[start:min(start+s.BatchSize, len(keys))]
			var got []concord.Record
			c.report.Systems[s.id].ReadCalls++
			if err := c.call(ctx, s, func(ctx context.Context) (err error) {
				got, err = g.Get(ctx, batch)
				return err
			}); err != nil {
				return err
			}
			for _, r := range got {
				delete(missing, r.Key)
			}
			*recs = append(*recs, got...)
		}
	} else {
		for _, k := range keys {
			if want[k] { // answered "not found"
				missing[k] = true
			}
		}
	}
	for _, k := range keys {
		if missing[k] {
			*recs = append(*recs, concord.Record{Key: k, Deleted: true})
		}
	}
	c.e.refreshMu.Lock()
	for _, k := range keys {
		delete(c.e.refresh[s.id], k)
	}
	c.e.refreshMu.Unlock()
	return nil
}

// observe validates and transforms records read from s. A record that
// cannot be used becomes a dead letter with the reason: never dropped.
//
// full says the records are whole (read through Changes, which returns each
// record's current state): a field the system held and no longer reports
// is gone from it, and is written to it again.
func (c *cycle) observe(ctx context.Context, s *system, recs []concord.Record, full bool) error {
	rep := c.report.Systems[s.id]
	for _, raw := range recs {
		rep.Read++
		o, err := c.prepare(ctx, s, raw)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.quarantine(s, raw, err)
			continue
		}
		o.full = full
		list := c.obs[raw.Key]
		i := slices.IndexFunc(list, func(x *observation) bool { return x.sys == s })
		if i < 0 {
			c.obs[raw.Key] = append(list, o)
			continue
		}
		// The same record twice in one cycle: the later modification
		// wins (the later report when the times do not say), and the
		// other is audited, not silently dropped.
		kept, dropped := o, list[i]
		if !o.rec.Modified.IsZero() && o.rec.Modified.Before(list[i].rec.Modified) {
			kept, dropped = list[i], o
		}
		list[i] = kept
		c.events = append(c.events, audit.Event{Time: c.e.now(), Kind: audit.ReadSuperseded, Cycle: c.report.Cycle,
			System: s.id, Key: raw.Key, To: dropped.rec.Fields, Deleted: dropped.rec.Deleted,
			Reason: fmt.Sprintf("read twice in one cycle; the report modified at %s was kept, this one (modified at %s) was not",
				stamp(kept.rec.Modified), stamp(dropped.rec.Modified))})
	}
	return nil
}

func (c *cycle) prepare(ctx context.Context, s *system, raw concord.Record) (*observation, error) {
	if err := raw.Validate(); err != nil {
		return nil, withSystem(err, s.id)
	}
	o := &observation{sys: s, raw: raw, native: make(map[string]uint64, len(raw.Fields))}
	for f, v := range raw.Fields {
		h, err := concord.HashValue(v)
		if err != nil {
			return nil, &concord.RecordError{System: s.id, Key: raw.Key, Field: f, Err: err}
		}
		o.native[f] = h
	}
	if raw.Deleted {
		o.rec = concord.Record{Key: raw.Key, Deleted: true, Modified: utc(raw.Modified), Tag: raw.Tag}
		return o, nil
	}
	rec, err := s.Inbound.Transform(ctx, raw)
	if err != nil {
		return nil, &concord.RecordError{System: s.id, Key: raw.Key, Err: fmt.Errorf("inbound transform: %w", err)}
	}
	if rec.Key != raw.Key {
		return nil, &concord.RecordError{System: s.id, Key: raw.Key, Err: fmt.Errorf("inbound transform changed the key to %q", rec.Key)}
	}
	if err := rec.Validate(); err != nil {
		return nil, withSystem(fmt.Errorf("after inbound transform: %w", err), s.id)
	}
	if d := c.e.cfg.Dictionary; d != nil {
		if err := d.Validate(rec); err != nil {
			return nil, &invalidError{rec: rec, err: &concord.RecordError{System: s.id, Key: raw.Key, Err: err}}
		}
	}
	if _, ok := rec.Fields[resolve.RecordUnit]; ok {
		return nil, &concord.RecordError{System: s.id, Key: raw.Key, Field: resolve.RecordUnit, Err: errors.New("reserved field name")}
	}
	rec.Tag, rec.Modified, rec.FieldModified = raw.Tag, utc(raw.Modified), nil
	if len(raw.FieldModified) > 0 {
		rec.FieldModified = make(map[string]time.Time, len(raw.FieldModified))
		for f, t := range raw.FieldModified {
			rec.FieldModified[f] = utc(t)
		}
	}
	o.rec = rec
	return o, nil
}

func withSystem(err error, s concord.SystemID) error {
	var re *concord.RecordError
	if errors.As(err, &re) && re.System == "" {
		re.System = s
	}
	return err
}

// invalidError is a record the dictionary refused, with the transformed
// payload kept for the dead letter.
type invalidError struct {
	rec concord.Record
	err error
}

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

func (c *cycle) quarantine(s *system, raw concord.Record, err error) {
	c.report.Systems[s.id].Quarantined++
	var transformed concord.Record
	if ie, ok := err.(*invalidError); ok {
		transformed, err = ie.rec, ie.err
	}
	c.report.Failures = append(c.report.Failures, Failure{System: s.id, Key: raw.Key, Op: OpTransform, Err: err})
	payload, textual := storable(raw)
	transformed, _ = storable(transformed)
	c.dead = append(c.dead, DeadLetter{System: s.id, Key: raw.Key, Inbound: true, Record: payload, Transformed: transformed,
		Reason: deadReason(err), Class: invalidClass(err).String(), When: c.e.now(), Textual: textual})
	c.events = append(c.events, audit.Event{Time: c.e.now(), Kind: audit.RecordQuarantined, Cycle: c.report.Cycle,
		System: s.id, Key: raw.Key, Error: err.Error(), ErrorClass: invalidClass(err).String()})
}

// finish merges the observations with the stored state and the pending
// records, writes, commits and emits the audit events.
func (c *cycle) finish(ctx context.Context) (*Report, error) {
	e := c.e
	if err := c.remerge(ctx); err != nil {
		return c.report, err
	}
	keys := make([]string, 0, len(c.obs))
	for k := range c.obs {
		keys = append(keys, k)
	}
	pending, err := e.store.Pending(ctx, 10*maxBatch(e.systems))
	if err != nil {
		return c.report, fmt.Errorf("concord: listing pending records: %w", err)
	}
	for _, k := range pending {
		if _, ok := c.obs[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	states, err := e.store.Load(ctx, keys)
	if err != nil {
		return c.report, fmt.Errorf("concord: loading state: %w", err)
	}
	m := e.merger
	m.cycle = c.report.Cycle
	m.events = c.events
	var merged []*state.Record
	for _, k := range keys {
		st := states[k]
		if st == nil {
			st = &state.Record{Key: k, Fields: map[string]concord.Value{}, Units: map[string]*state.Unit{}, Systems: map[concord.SystemID]*state.View{}}
		}
		before := len(m.events)
		if err := m.mergeRecord(ctx, st, c.obs[k]); err != nil {
			m.events = m.events[:before]
			c.failMerge(k, err)
			continue
		}
		c.count(m.events[before:])
		if slices.ContainsFunc(m.events[before:], func(ev audit.Event) bool { return ev.Kind == audit.EditObserved }) {
			c.edited = append(c.edited, st)
		}
		merged = append(merged, st)
	}
	c.events = m.events
	m.events = nil
	c.report.Records = len(merged)
	if err := c.settleQuarantined(ctx, merged); err != nil {
		return c.report, err
	}

	writes := c.planWrites(ctx, merged)
	if !e.noWriteAhead && slices.ContainsFunc(writes, func(ws []*write) bool { return len(ws) > 0 }) {
		// Write ahead: the merged states, with every write about to be
		// attempted, are committed before anything is sent. A crash or
		// a failed commit after the writes cannot make the engine
		// mistake its own writes for the systems' edits, and an
		// instance that lost its lease writes nothing. The events go to
		// the sink first: a crash between the two repeats them in the
		// next cycle rather than losing them (at least once).
		c.emit(ctx, c.events)
		c.emitted = len(c.events)
		if err := e.store.Commit(ctx, &batch{Lease: c.lease, States: merged}); err != nil {
			return c.report, fmt.Errorf("concord: committing cycle %d before its writes: %w", c.report.Cycle, err)
		}
	}
	c.send(ctx, writes)
	c.trackDivergence(merged)

	// The writes happened, whatever becomes of the commit: every event,
	// theirs included, is emitted before it (at least once).
	c.events = append(c.events, c.writeEvents...)
	c.emit(ctx, c.events[c.emitted:])
	commit := &batch{Lease: c.lease, Cursors: c.cursors, States: merged, DeadLetters: c.dead, RemoveDeadLetters: c.removeDead}
	if err := e.store.Commit(ctx, commit); err != nil {
		return c.report, fmt.Errorf("concord: committing cycle %d: %w", c.report.Cycle, err)
	}
	for _, r := range c.resolved {
		e.metrics.resolved(ctx, r.system, r.after)
	}
	for _, d := range c.converged {
		e.metrics.convergedAfter(ctx, d)
	}
	c.report.Finished = e.now()
	e.metrics.observe(ctx, c.report, e.systems)
	e.alerts(ctx, c.report, c.events)
	if len(c.report.Failures) > 0 {
		return c.report, &CycleError{Failures: c.report.Failures}
	}
	return c.report, nil
}

// emit hands events to the audit sink; a failure is the cycle's.
func (c *cycle) emit(ctx context.Context, events []audit.Event) {
	if len(events) == 0 {
		return
	}
	if err := c.e.audit.Emit(ctx, events); err != nil {
		c.report.Failures = append(c.report.Failures, Failure{Op: OpAudit, Err: err})
	}
}

// trackDivergence notes when each record's systems started to disagree
// and, for those that agree again, how long it took.
// A record edited and delivered everywhere within one cycle counts from the
// cycle's start.
func (c *cycle) trackDivergence(states []*state.Record) {
	now := c.e.now()
	for _, st := range states {
		if st.Diverged.IsZero() && slices.Contains(c.edited, st) {
			st.Diverged = c.report.Started
		}
		apart := st.Disagree()
		switch {
		case apart && st.Diverged.IsZero():
			st.Diverged = now
		case !apart && !st.Diverged.IsZero():
			c.converged = append(c.converged, now.Sub(st.Diverged))
			st.Diverged = time.Time{}
		}
	}
}

// settleQuarantined removes the inbound dead letters of records that a
// system has now delivered in a usable form (someone fixed them there): they
// are settled, not lost.
func (c *cycle) settleQuarantined(ctx context.Context, merged []*state.Record) error {
	if len(c.obs) == 0 {
		return nil
	}
	dead, err := c.e.store.DeadLetters(ctx)
	if err != nil {
		return fmt.Errorf("concord: listing dead letters: %w", err)
	}
	ok := make(map[string]bool, len(merged))
	for _, st := range merged {
		ok[st.Key] = true
	}
	for _, d := range dead {
		if !d.Inbound || !ok[d.Key] || slices.Contains(c.removeDead, d.ID) {
			continue
		}
		for _, o := range c.obs[d.Key] {
			if o.sys.id == d.System && !o.rec.Modified.Before(d.Record.Modified) {
				c.removeDead = append(c.removeDead, d.ID)
				c.events = append(c.events, audit.Event{Time: c.e.now(), Kind: audit.WriteReplayed, Cycle: c.report.Cycle,
					System: d.System, Key: d.Key, Reason: fmt.Sprintf("dead letter %d settled: %s delivered the record in a usable form", d.ID, d.System)})
			}
		}
	}
	return nil
}

func maxBatch(ss []*system) int {
	n := 0
	for _, s := range ss {
		n = max(n, s.BatchSize)
	}
	return n
}

func (c *cycle) failMerge(key string, err error) {
	var s concord.SystemID
	var re *concord.RecordError
	if errors.As(err, &re) {
		s = re.System
	}
	f := Failure{System: s, Key: key, Op: OpMerge, Err: err}
	c.report.Failures = append(c.report.Failures, f)
	if r := c.report.Systems[s]; r != nil {
		r.Failed++
	}
	c.keepForRemerge(key, err)
}

// count adds a record's merge events to the report.
func (c *cycle) count(events []audit.Event) {
	for _, ev := range events {
		switch ev.Kind {
		case audit.EditObserved:
			c.report.Systems[ev.System].Edits++
		case audit.ConflictDetected, audit.ConflictHeld:
			for _, x := range ev.Candidates {
				if r := c.report.Systems[x.System]; r != nil && !x.Canonical {
					if ev.Kind == audit.ConflictDetected {
						r.Conflicts++
					} else {
						r.Held++
					}
				}
			}
		case audit.ChangeRefused:
			if r := c.report.Systems[ev.System]; r != nil {
				r.Refused++
			}
		}
	}
}

// utc returns t as an instant in UTC, without a monotonic reading: the
// engine compares and stores the systems' times as instants, whatever zone
// (even one with a sub-minute offset) a connector wrote them in.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

// stamp formats a system time for reasons; zero is "no time".
func stamp(t time.Time) string {
	if t.IsZero() {
		return "no time"
	}
	return t.Format(time.RFC3339Nano)
}

// classOf is the class of a failed call for audit and reports:
// [ClassPanic] if user code panicked, else the connector's class.
func classOf(err error) connector.Class {
	if errors.Is(err, ErrPanic) {
		return ClassPanic
	}
	return connector.Classify(err)
}

// idempotencyKey derives a write's key from the record, the target, the
// state of the record in the target the write is based on (its tag and
// time), the store's epoch, every unit's version and the values written:
// the same change retried gets the same key, and a counter reissued after a
// restore (a new epoch) or a different value never does. Nor does a write
// decided again after the target's record changed: a system that has seen
// the key would answer with the old result without applying it, although
// what it holds now differs (a write applied, then undone by a person).
func idempotencyKey(key string, s concord.SystemID, epoch uint64, view *state.View, st *state.Record, set map[string]concord.Value) string {
	b := []byte(key)
	b = append(b, 0)
	b = append(b, s...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = append(b, 0)
	b = append(b, view.Tag...)
	b = binary.BigEndian.AppendUint64(b, uint64(view.Modified.UnixNano()))
	for _, f := range sortedFields(set) {
		b = append(b, 0)
		b = append(b, f...)
		b, _ = concord.AppendCanonical(b, set[f])
	}
	names := make([]string, 0, len(st.Units))
	for n := range st.Units {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		b = append(b, 0)
		b = append(b, n...)
		b, _ = st.Units[n].Version.AppendBinary(b)
	}
	return strconv.FormatUint(concord.HashBytes(b), 36)
}
