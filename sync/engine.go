package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/transform"
)

// Engine keeps the configured systems in agreement. Create it with [New].
// Its methods are safe for concurrent use; cycles run one at a time.
type Engine struct {
	cfg     Config
	systems []*system
	byID    map[concord.SystemID]*system
	layout  *layout
	gates   []resolve.Gate
	// anomalies is the gate of Config.Anomalies (nil without rules); it
	// comes first in the merger's gates.
	anomalies *anomalyGate
	out       outbox       // the audit log in the store (outbox.go)
	sens      *sensitivity // Config.Sensitive; nil: none
	store     stateStore
	looping   bool        // Run is running: an idle cycle may keep the lease (begin)
	kept      store.Lease // the lease kept by the last cycle; zero if released
	retry     RetryPolicy
	metrics   *metrics
	alerting  alerting
	audit     audit.Sink
	echoes    echoes         // the last cycle's writes, to recognise their echoes (echo.go)
	learned   []learnedWrite // write outcomes a failed commit did not store (outcomes.go)
	sinkless  bool           // no Config.Audit: the audit log is kept, nothing is delivered
	log       *slog.Logger
	now       func() time.Time

	names atomic.Pointer[actorNames] // what the actors of versions stand for (names.go)

	mu gosync.Mutex // serialises cycles
	// refresh holds, per system, the keys whose writes failed on a
	// version conflict: the next cycle reads them again (refetch).
	refreshMu gosync.Mutex
	refresh   map[concord.SystemID]map[string]bool
	// awaitingTag (under refreshMu) holds the records whose last write to
	// a system was answered without a version tag (send), until the
	// system reports them or a write of them there is planned.
	awaitingTag map[sysKey]bool
	merger      *merger
	engine      concord.Actor
	epoch       uint64
	ready       bool
	cycle       uint64
	// noWriteAhead skips the commit before a cycle's writes: only for
	// BenchmarkEditCycle to measure what it costs (export_test.go).
	noWriteAhead bool
}

type system struct {
	System
	id     concord.SystemID
	actor  concord.Actor
	budget *budget
	scope  *compiledScope // nil: no restriction
	// identityIn: no inbound transform is configured, so a record read
	// is its canonical record (validated once, not again after it).
	identityIn bool
	// identityOut: no outbound transform is configured, so the record
	// written is the canonical one: its values were checked when they
	// entered the engine, and the fields a unit affects are its own.
	identityOut bool
	// lineageIn and lineageOut are the configured transformers, before
	// the engine guards them, for transform.Lineage: which fields of the
	// other shape a set of fields can change (plan, affected). Asking
	// runs none of the user's code.
	lineageIn, lineageOut transform.Transformer
	// The connector's optional abilities (nil if it has not got them),
	// guarded like the connector (guardConnector).
	getter  connector.Getter
	scanner connector.Scanner
	starter connector.ScanStarter
	// tagged: the system has reported a version tag (a record read, a
	// write's reply), so it has conditional writes: a create there fails
	// on a record created meanwhile instead of overwriting it (see
	// cycle.unguarded).
	tagged atomic.Bool
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
	gates := e.gates
	if e.anomalies != nil {
		gates = append([]resolve.Gate{e.anomalies}, gates...)
	}
	e.merger = &merger{layout: e.layout, systems: e.systems, resolver: e.cfg.Resolver, gates: gates, engine: a, now: e.now,
		anomalies: e.anomalies, sens: e.sens}
	e.nameActors()
	e.ready = true
	return nil
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
// system from the start: by scan, for a connector that can, unless its
// System.FirstSync says otherwise), as decided by person for reason (both audited):
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
	// A first sync by scan in progress stops; with the empty cursor a new
	// one begins (FirstSyncScan).
	b := &batch{Lease: c.lease, Cursors: map[concord.SystemID]connector.Cursor{system: cursor},
		Values: map[string][]byte{scanValueName(system): nil}}
	err = e.commitAudited(ctx, b, []audit.Event{{Time: e.now(), Kind: audit.CursorReset, System: system,
		Reason: fmt.Sprintf("cursor of %s reset from %q to %q by %s: %s", system, old, cursor, person, reason)}})
	if _, delivery := errors.AsType[*AuditError](err); err != nil && !delivery {
		return fmt.Errorf("concord: resetting cursor of %q: %w", system, err)
	}
	return err
}

// Run runs a cycle every interval until ctx is cancelled, and returns
// ctx's error (a cycle that had sent writes when ctx was cancelled first
// commits their outcomes: see [Engine.RunCycle]). A cycle's failures are
// logged and retried by the next cycle; they do not stop Run. While Run runs, a cycle that commits nothing and
// acquired the lease keeps it for the next cycle, which renews it without
// a write (store.NextLease) and releases it unless it commits: an idle
// cycle makes at most one write to the store, and other instances get the
// lease at least every other cycle. Run releases a kept lease when it
// returns; a process killed meanwhile delays the others by at most
// Config.LeaseTTL, as one killed during a cycle does. A cycle that succeeded with a backlog (a system had
// more changes waiting: [Report.Backlog]) is followed at once by the next.
func (e *Engine) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("concord: Run: %w: %v, must be positive", ErrInvalidInterval, interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	e.mu.Lock()
	e.looping = true
	e.mu.Unlock()
	defer e.stopLooping(ctx)
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
		if _, failures := errors.AsType[*CycleError](err); rep != nil && rep.Backlog() && (err == nil || failures) {
			continue // more is waiting: no need to wait for the interval
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// stopLooping ends Run's keeping of the lease between cycles, and releases
// a lease the last cycle kept (best effort, detached from a cancelled ctx:
// an unreleased lease only delays the next holder until it expires).
func (e *Engine) stopLooping(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.looping = false
	if e.kept.Holder == "" {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := e.store.ReleaseLease(rctx, e.kept); err != nil {
		e.log.Warn("concord: releasing the lease", "lease", e.kept.Name, "error", err)
	}
	e.kept = store.Lease{}
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
