package sync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
)

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
	converged  []time.Duration        // records whose systems agree again, and after how long
	edited     map[*state.Record]bool // records with edits this cycle
	lease      *store.Lease
	leaseAt    time.Time    // when the lease was last confirmed (before the store was asked)
	leaseMu    gosync.Mutex // guards lease, leaseAt and leaseErr: writes to systems run in parallel
	leaseErr   error        // the lease was lost during the cycle: nothing more is sent
	report     *Report
	obs        map[string][]*observation
	cursors    map[concord.SystemID]connector.Cursor
	values     map[string][]byte // engine values to commit (scan progress)
	dry        bool              // Plan: nothing is written or committed
	dead       []DeadLetter
	removeDead []uint64 // dead letters this cycle settles
	events     eventLog
	// writeEvents audit the writes: emitted even if the cycle's commit
	// fails, since the writes happened.
	writeEvents eventLog
	written     []*write                  // the writes that succeeded
	planned     [][]*write                // every write planned, per system (outcomes.go)
	applied     int                       // the first applied of Engine.learned were applied to this cycle's states (outcomes.go)
	cancelled   error                     // ctx.Err() of the caller's context at the end of the cycle's writes
	unreadable  map[string]error          // the states load could not decode, by key: those records fail alone
	badLetters  map[uint64]bool           // the dead letters met that do not decode, reported (remerge.go)
	scanning    map[concord.SystemID]bool // systems in a first sync by scan not done
	filling     *backfill                 // the known systems and the backfills, as the store says (backfill.go)
	fills       []*fillPass               // what the cycle does of each backfill (backfill.go)
	sendIdx     []int                     // plan's scratch: the units a write carries
	keyBuf      []byte                    // idempotencyKey's scratch: the bytes hashed
	keyNames    []string                  // and the names it sorts
	affectedBuf []string                  // affected's scratch: the fields of the units a write carries
	outOrder    map[*system][]string      // plan's: the last desired record's field names per system, sorted
	orderOf     *system                   // the system whose field names order holds (prepare)
	order       []string                  // its last record's field names, sorted
	emitted     int                       // events already emitted (those committed before the writes)

	// remerging: by key, the merge dead letters merged again (remerge.go).
	remerging map[string][]DeadLetter
	// current: the systems whose changes this cycle read to the end (no
	// failure, no backlog); nil in a step that reads no change feed
	// (Ingest, Replay). See unguarded.
	current map[concord.SystemID]bool
	// unread: records whose report from a system is in an inbound dead
	// letter (this cycle's or an earlier one's, not settled): the
	// engine does not know what the system holds of them. See unguarded.
	unread map[sysKey]bool
	// likelyEchoes is, while pull (or Ingest) observes what it read, the
	// echo memory (echo.go) by which prepare defers a likely echo's
	// inbound transform (observation.deferred); nil when there is none,
	// or a dictionary must see every report.
	likelyEchoes map[echoKey]echoView
	// unkept lists, per record and system, the fields that the engine's
	// last write there set and that the system's report of the state the
	// write left lacks (notKept): its writes there are dead-lettered.
	unkept map[echoKey]unkeptWrite
}

// sysKey names a record in one system.
type sysKey struct {
	sys concord.SystemID
	key string
}

func (c *cycle) noteUnread(s concord.SystemID, key string) {
	if c.unread == nil {
		c.unread = map[sysKey]bool{}
	}
	c.unread[sysKey{s, key}] = true
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

// finishTimeout bounds how long a cycle whose caller cancelled it after it
// sent its writes takes to commit what they did (cycle.finish).
const finishTimeout = 10 * time.Second

// RunCycle runs one cycle: read the changes of every system since its
// cursor, merge them with the stored state, write the patches, and commit.
// It returns the report and, if anything failed, a [*CycleError] (what
// succeeded is committed all the same). Cancelling ctx stops the cycle; what
// was not committed is redone by the next one. Once the cycle has sent
// writes it finishes regardless, for at most 10 seconds more: it commits
// their outcomes (writes cut short by the cancellation fail, uncounted, and
// are sent again), for a write whose outcome is not stored reads as one of
// unknown outcome to the next process.
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
	at := time.Now()
	l, err := e.store.AcquireLease(ctx, e.cfg.Pipeline, e.cfg.Instance, e.cfg.LeaseTTL)
	if err != nil {
		return nil, nil, err
	}
	// Whether this cycle reuses the lease the last one kept, unchanged:
	// then its AcquireLease wrote nothing.
	reused := e.kept.Holder != "" && l.Same(e.kept)
	e.kept = store.Lease{}
	commits := e.store.commits.Load()
	c := e.newCycle()
	c.lease, c.leaseAt = &l, at
	if err := e.loadAudit(ctx); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = e.store.ReleaseLease(rctx, l)
		return nil, nil, err
	}
	c.deliver(ctx, nil) // what an earlier cycle committed and could not deliver
	if e.anomalies != nil {
		if err := e.anomalies.load(ctx, e); err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = e.store.ReleaseLease(rctx, l)
			return nil, nil, err
		}
	}
	release := func() {
		// Under Run, an idle cycle makes at most one write: acquiring
		// and releasing the lease are one each, so a cycle that
		// acquired the lease (one write) and attempted no commit keeps
		// it, and the next cycle reuses it: its AcquireLease writes
		// nothing while more than half of the ttl remains
		// (store.NextLease), and it releases at its end (one write).
		// Idle cycles so alternate between keeping and releasing, and
		// other instances get their turn at least every other cycle.
		// Run releases a kept lease when it returns; a direct RunCycle
		// (whose caller may never call again) always releases.
		//
		// Keeping is safe because exclusion never rests on an expiry
		// the engine believes in: every commit carries the lease, and
		// the store refuses it (ErrStale) unless its token and holder
		// are still the stored ones; an instance whose kept lease
		// lapsed and was taken over commits nothing, and its next
		// AcquireLease (every cycle calls it; the store decides by its
		// own clock) fails with ErrLeaseHeld.
		if e.looping && !reused && e.store.commits.Load() == commits {
			e.kept = l
			return
		}
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

// ErrLeaseLost is the error of a write the engine did not send because the
// cycle's lease had lapsed (or could not be confirmed) by then: another
// instance may have run meanwhile, and a write planned from this cycle's
// reads could land over its newer writes. The write is planned again by the
// next cycle that holds the lease.
var ErrLeaseLost = errors.New("concord: the cycle's lease was lost before the write")

// holdLease reports whether the cycle still holds its lease, for a write
// about to be sent. Exclusion rests on the store's fencing for commits, but
// a system takes a write from anyone: a cycle that outlives its lease (a
// long rate-limited push, a paused process) must not send what it planned
// once another instance may have run. When a quarter of the TTL has passed
// since the lease was last confirmed, it is confirmed again
// (store.AcquireLease renews it in its second half, and otherwise writes
// nothing): the store guarantees at least half the TTL from the moment it
// was asked, measured here on the local monotonic clock, so a write is
// sent only with at least a quarter of the TTL left for it. A lease the
// store gives back with another token lapsed in between: it is released
// again and the cycle sends nothing more (its commit then fails).
func (c *cycle) holdLease(ctx context.Context) error {
	c.leaseMu.Lock()
	defer c.leaseMu.Unlock()
	if c.leaseErr != nil || time.Since(c.leaseAt) < c.e.cfg.LeaseTTL/4 {
		return c.leaseErr
	}
	at := time.Now()
	var l store.Lease
	var err error
	// On a writer's goroutine: a store that panics fails the write, and
	// never crashes the host.
	if perr := isolate("store.AcquireLease", func() { l, err = c.e.store.AcquireLease(ctx, c.lease.Name, c.lease.Holder, c.e.cfg.LeaseTTL) }); perr != nil {
		err = perr
	}
	switch {
	case err != nil:
		c.leaseErr = fmt.Errorf("%w: confirming lease %q: %w", ErrLeaseLost, c.lease.Name, err)
	case l.Token != c.lease.Token:
		c.leaseErr = fmt.Errorf("%w: lease %q lapsed (token %d, now %d)", ErrLeaseLost, c.lease.Name, c.lease.Token, l.Token)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = isolate("store.ReleaseLease", func() { _ = c.e.store.ReleaseLease(rctx, l) })
	default:
		*c.lease, c.leaseAt = l, at
	}
	return c.leaseErr
}

// lostLease returns the error that ended the cycle's lease, if it ended:
// the writes still to send fail with it at once, without waiting for a
// system's rate budget first.
func (c *cycle) lostLease() error {
	c.leaseMu.Lock()
	defer c.leaseMu.Unlock()
	return c.leaseErr
}

// Ingest merges records that a system pushed (a webhook, a message) as if
// they had been read from it: they are transformed, merged and written to
// the other systems in one step. It does not move the system's cursor, so
// the next cycle may read the same changes again; that is harmless. A
// pushed record may carry some of its fields only: those it carries are
// merged, and a field it lacks is neither deleted nor taken as unchanged.
// The change feed's report of the same state is compared field by field,
// and the engine writes nothing to the system over that state before a
// cycle has read the system to the end (its tag guards no write: the
// fields left out may hold edits not read yet). Ingest
// reads no change feed, so a system without conditional writes (no version
// tags) gets its writes at the next cycle instead ([SystemReport].Deferred):
// written now, they could replace an edit made there that no read has seen.
// A pushed state no newer than what the engine knows of that system is left
// to the change feed, and so is one of a record whose earlier report from
// that system waits in a merge dead letter (it may be older than that
// report, delivered late), and one that creates again a record deleted
// everywhere (a record may be pushed in part, a report never deletes by
// omission, and a record created again does not keep the deleted one's
// values for the fields it lacks: only the whole record says which those
// are).
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
	done := c.expectEchoes() // a webhook may deliver the engine's own write
	err = c.observe(ctx, s, records, false)
	done()
	if err != nil {
		return c.report, err
	}
	for _, obs := range c.obs {
		for _, o := range obs {
			o.pushed = true
		}
	}
	return c.finish(ctx)
}

// pull reads every system's changes concurrently and turns them into
// observations.
func (c *cycle) pull(ctx context.Context) error {
	results := make([]pullResult, len(c.e.systems))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range c.e.systems {
		g.Go(func() error {
			var cur connector.Cursor
			var err error
			// On a reader's goroutine: a store that panics fails the
			// cycle, and never crashes the host.
			if perr := isolate("store.Cursor", func() { cur, err = c.e.store.Cursor(gctx, s.id) }); perr != nil {
				err = perr
			}
			if err != nil {
				return fmt.Errorf("concord: loading cursor of %q: %w", s.id, err)
			}
			r := &results[i]
			r.stored = cur
			if !c.readScan(gctx, s, cur, r) {
				c.readFeed(gctx, s, cur, r)
			}
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
	defer c.expectEchoes()()
	for i, s := range c.e.systems {
		r := results[i]
		if r.err != nil {
			c.fail(s.id, "", OpRead, r.err)
			c.events.add(audit.Event{Time: c.e.now(), Kind: audit.ReadFailed, Cycle: c.report.Cycle, System: s.id,
				Error: r.err.Error(), ErrorClass: classOf(r.err).String()})
		}
		if r.back != nil {
			c.report.Failures = append(c.report.Failures, Failure{System: s.id, Op: OpCursor, Err: r.back})
			c.events.add(audit.Event{Time: c.e.now(), Kind: audit.CursorWentBack, Cycle: c.report.Cycle, System: s.id,
				Error: r.back.Error(), ErrorClass: ClassCursor.String()})
		}
		if r.read && r.next != r.stored {
			c.cursors[s.id] = r.next
		}
		c.noteScan(s, &r)
		c.report.Systems[s.id].Backlog = r.backlog
		if c.current == nil {
			c.current = make(map[concord.SystemID]bool, len(c.e.systems))
		}
		c.current[s.id] = r.err == nil && r.back == nil && !r.backlog
		if r.scan != nil && !r.scan.Done {
			if c.scanning == nil {
				c.scanning = map[concord.SystemID]bool{}
			}
			c.scanning[s.id] = true
		}
		if err := c.observe(ctx, s, r.recs, true); err != nil {
			return err
		}
	}
	return nil
}

// expectEchoes lets prepare defer the canonical form of reports that match
// the echo memory (c.likelyEchoes) until the returned func is called: for
// what pull and Ingest observe, not for replays or re-merges. Not with a
// dictionary: its cleansing is part of what isEcho reads.
func (c *cycle) expectEchoes() (done func()) {
	if c.e.cfg.Dictionary == nil {
		c.likelyEchoes = c.e.echoes.peek(c.e.out.head)
	}
	return func() { c.likelyEchoes = nil }
}

// pullResult is what pull read from one system.
type pullResult struct {
	recs   []concord.Record
	stored connector.Cursor // the cursor stored before the cycle
	next   connector.Cursor
	read   bool  // next is to be stored
	err    error // the read failed (what was read before is kept)
	back   error // the connector's cursor went back
	// backlog: more was waiting when the cycle stopped reading
	backlog bool
	// scan: the system's first sync by scan, if it is in one;
	// scanStarted: it began this cycle.
	scan        *scan
	scanStarted bool
}

// readFeed reads up to MaxBatches pages of s's change feed from cur into r.
func (c *cycle) readFeed(ctx context.Context, s *system, cur connector.Cursor, r *pullResult) {
	for range c.e.cfg.MaxBatches {
		var b connector.Batch
		c.report.Systems[s.id].ReadCalls++
		err := c.call(ctx, s, func(ctx context.Context) (err error) {
			b, err = s.Connector.Changes(ctx, cur, s.BatchSize)
			return err
		})
		if err != nil {
			r.err, r.backlog = err, false
			break
		}
		r.recs = append(r.recs, b.Records...)
		if b.More && b.Next == cur {
			// The same page again and again: each cycle would read it
			// MaxBatches times, and report a backlog that makes Run
			// cycle again at once, for ever.
			r.err, r.backlog = fmt.Errorf("%w: %s answered cursor %q with More and the same cursor", ErrFeedStuck, s.id, cur), false
			r.next, r.read = cur, cur != r.stored
			return
		}
		if cur != "" && b.Next == "" {
			// A cursor going back to the start would re-read
			// everything every cycle: keep the stored one.
			r.back = fmt.Errorf("%w: %s answered cursor %q with an empty cursor", ErrCursorWentBack, s.id, cur)
			break
		}
		cur, r.read = b.Next, true
		r.backlog = b.More
		if !b.More {
			break
		}
	}
	r.next = cur
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

// awaitTag notes that key's last write to system was answered without a
// version tag: the engine does not know the record's tag there.
func (e *Engine) awaitTag(system concord.SystemID, key string) {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	if e.awaitingTag == nil {
		e.awaitingTag = map[sysKey]bool{}
	}
	e.awaitingTag[sysKey{system, key}] = true
}

// tagAwaited reports whether awaitTag noted key in system, and forgets it.
func (e *Engine) tagAwaited(system concord.SystemID, key string) bool {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	k := sysKey{system, key}
	if !e.awaitingTag[k] {
		return false
	}
	delete(e.awaitingTag, k)
	return true
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
	if g := s.getter; g != nil {
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
	if c.dry {
		return nil // a dry run (Plan) leaves them for the next cycle
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
		if raw.Tag != "" && !s.tagged.Load() {
			s.tagged.Store(true)
		}
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
		// Read twice: both in canonical form, to compare and audit.
		if ok, err := c.canonicalOrQuarantine(ctx, list[i]); err != nil {
			return err
		} else if !ok {
			list[i] = o
			continue
		}
		if ok, err := c.canonicalOrQuarantine(ctx, o); err != nil {
			return err
		} else if !ok {
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
		c.events.add(audit.Event{Time: c.e.now(), Kind: audit.ReadSuperseded, Cycle: c.report.Cycle,
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
	o := &observation{sys: s, raw: raw}
	c.e.tagAwaited(s.id, raw.Key) // reported: its tag is known again
	if err := c.hashFields(s, raw, o); err != nil {
		return nil, err
	}
	if raw.Deleted {
		o.rec = concord.Record{Key: raw.Key, Deleted: true, Modified: utc(raw.Modified), Tag: raw.Tag}
		return o, nil
	}
	if v, ok := c.likelyEchoes[echoKey{raw.Key, s.id}]; ok && !s.identityIn && raw.Tag != "" && raw.Tag == v.tag && sameNative(o.native, v.native) {
		// Exactly what the engine's last write left there: most likely
		// its echo, which load recognises without the canonical form
		// (isEcho reads native, the tag and deleted). The inbound
		// transform and its validation wait until the record is merged
		// after all (load, canonical).
		o.rec = concord.Record{Key: raw.Key, Modified: utc(raw.Modified), Tag: raw.Tag}
		o.deferred = true
		return o, nil
	}
	if err := c.canonical(ctx, o); err != nil {
		return nil, err
	}
	return o, nil
}

// hashFields sets o.native: the hash of each of raw's fields, sorted by
// name. A system's records mostly have the same fields: when raw has those
// of the last record hashed from s, they are hashed in that record's
// order, which is sorted already, instead of sorted again.
func (c *cycle) hashFields(s *system, raw concord.Record, o *observation) error {
	o.native = make([]fieldHash, 0, len(raw.Fields))
	add := func(f string, v concord.Value) error {
		h, err := c.e.sens.hashValue(f, v)
		if err != nil {
			return &concord.RecordError{System: s.id, Key: raw.Key, Field: f, Err: err}
		}
		o.native = append(o.native, fieldHash{f, h, v})
		return nil
	}
	if c.orderOf == s && len(c.order) == len(raw.Fields) {
		same := true
		for _, f := range c.order {
			v, ok := raw.Fields[f]
			if !ok {
				same = false // another set of names (of the same size)
				break
			}
			if err := add(f, v); err != nil {
				return err
			}
		}
		if same {
			return nil
		}
		o.native = o.native[:0]
	}
	for f, v := range raw.Fields {
		if err := add(f, v); err != nil {
			return err
		}
	}
	slices.SortFunc(o.native, func(a, b fieldHash) int { return strings.Compare(a.field, b.field) })
	c.orderOf, c.order = s, c.order[:0]
	for _, x := range o.native {
		c.order = append(c.order, x.field)
	}
	return nil
}

// canonical makes o.rec, the canonical form of what o's system reported,
// unless it is made already: the inbound transform, validation, the
// dictionary and its cleansing (prepare, or load for a report prepare
// deferred).
func (c *cycle) canonical(ctx context.Context, o *observation) error {
	if o.rec.Key != "" && !o.deferred {
		return nil // made already (a delete's is made by prepare)
	}
	o.deferred = false
	s, raw := o.sys, o.raw
	rec := raw
	if !s.identityIn {
		var err error
		if rec, err = s.Inbound.Transform(ctx, raw); err != nil {
			return &concord.RecordError{System: s.id, Key: raw.Key, Err: fmt.Errorf("inbound transform: %w", err)}
		}
		if rec.Key != raw.Key {
			return &concord.RecordError{System: s.id, Key: raw.Key, Err: fmt.Errorf("inbound transform changed the key to %q", rec.Key)}
		}
		if err := rec.Validate(); err != nil {
			return withSystem(fmt.Errorf("after inbound transform: %w", err), s.id)
		}
	}
	if d := c.e.cfg.Dictionary; d != nil {
		if err := d.Validate(rec); err != nil {
			fixed, corrections, err := c.cleanse(s, rec, err)
			if err != nil {
				return &invalidError{rec: rec, err: &concord.RecordError{System: s.id, Key: raw.Key, Err: err}}
			}
			rec = fixed
			c.events.add(corrections...)
			for _, ev := range corrections {
				o.corrected = append(o.corrected, ev.Unit)
			}
		}
	}
	if _, ok := rec.Fields[resolve.RecordUnit]; ok {
		return &concord.RecordError{System: s.id, Key: raw.Key, Field: resolve.RecordUnit, Err: errors.New("reserved field name")}
	}
	if g, ok := c.e.layout.groupNamed(rec.Fields); ok {
		return &concord.RecordError{System: s.id, Key: raw.Key, Field: g,
			Err: fmt.Errorf("reserved field name: the name of the field group %q (Config.Groups); rename the group or the field (an inbound transform can)", g)}
	}
	rec.Tag, rec.Modified, rec.FieldModified = raw.Tag, utc(raw.Modified), nil
	if len(raw.FieldModified) > 0 {
		rec.FieldModified = make(map[string]time.Time, len(raw.FieldModified))
		for f, t := range raw.FieldModified {
			rec.FieldModified[f] = utc(t)
		}
	}
	o.rec = rec
	o.nativeIsRec = s.identityIn && len(o.corrected) == 0
	return nil
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
	err = c.e.sens.redactErr(err, raw.Fields, transformed.Fields)
	c.report.Failures = append(c.report.Failures, Failure{System: s.id, Key: raw.Key, Op: OpTransform, Err: err})
	payload, textual := storable(raw)
	transformed, _ = storable(transformed)
	c.dead = append(c.dead, DeadLetter{System: s.id, Key: raw.Key, Inbound: true, Record: payload, Transformed: transformed,
		Reason: deadReason(err), Class: invalidClass(err).String(), When: c.e.now(), Textual: textual})
	c.noteUnread(s.id, raw.Key)
	c.events.add(audit.Event{Time: c.e.now(), Kind: audit.RecordQuarantined, Cycle: c.report.Cycle,
		System: s.id, Key: raw.Key, Error: err.Error(), ErrorClass: invalidClass(err).String()})
}

// finish is the rest of a cycle once its records are read (pull, or the
// records an Ingest was given), as its steps, in order:
//
//	load → merge (detect, merge, gate) → plan → write ahead → push → commit (emit first) → done
//
// Each step is the method of that name; the merge rules are in merge.go.
func (c *cycle) finish(ctx context.Context) (*Report, error) {
	if err := c.remerge(ctx); err != nil { // failed merges, merged again
		return c.report, err
	}
	keys, states, err := c.load(ctx)
	if err != nil {
		return c.report, err
	}
	merged := c.merge(ctx, keys, states) // detect, merge, gate
	if err := c.settleQuarantined(ctx, merged); err != nil {
		return c.report, err
	}
	writes := c.planWrites(ctx, merged)
	c.planned = writes
	if err := c.writeAhead(ctx, merged, writes); err != nil {
		return c.report, err
	}
	c.send(ctx, writes) // push
	if slices.ContainsFunc(writes, func(ws []*write) bool { return len(ws) > 0 }) {
		// The writes happened (or may have): the cycle commits what
		// they did even if its caller cancels ctx now, a host shutting
		// down say. Left to the write-ahead commit, they would read as
		// writes of unknown outcome to the next process, which cannot
		// tell a person's set-back of a written value from the write
		// never having landed (see the README's "A lost reply never
		// loses an edit").
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		defer cancel()
	}
	c.trackDivergence(merged)
	if err := c.commit(ctx, merged); err != nil { // emit, then commit
		return c.report, err
	}
	return c.done(ctx)
}

// load returns the keys the cycle works on, sorted (those observed and up
// to ten batches of pending ones), and their stored states.
func (c *cycle) load(ctx context.Context) ([]string, map[string]*state.Record, error) {
	e := c.e
	echoes := e.echoes.take(e.out.head, !c.dry) // a dry run leaves the memory to the next cycle
	keys := make([]string, 0, len(c.obs))
	skipped := map[string]bool{}
	for k, obs := range c.obs {
		if c.remerging[k] == nil && isEcho(echoes, k, obs) {
			skipped[k] = true // see echo.go
			continue
		}
		for _, o := range obs {
			ek := echoKey{k, o.sys.id}
			v, ok := echoes[ek]
			if !ok || !leftBy(v, o) {
				continue
			}
			if fields := notKept(v, o); len(fields) > 0 {
				if c.unkept == nil {
					c.unkept = map[echoKey]unkeptWrite{}
				}
				c.unkept[ek] = unkeptWrite{fields: fields, set: v.set, tag: o.rec.Tag}
			}
		}
		keys = append(keys, k)
	}
	pending, err := e.store.Pending(ctx, 10*maxBatch(e.systems))
	if err != nil {
		return nil, nil, fmt.Errorf("concord: listing pending records: %w", err)
	}
	for _, k := range pending {
		if _, ok := c.obs[k]; !ok || skipped[k] {
			keys = append(keys, k)
			delete(skipped, k)
		}
	}
	c.report.Echoes = len(skipped)
	n := len(keys)
	if !c.dry {
		for _, u := range e.learned { // loaded to apply them (outcomes.go)
			keys = append(keys, u.key)
		}
		if err := c.loadBackfill(ctx); err != nil {
			return nil, nil, err
		}
		more, err := c.backfillKeys(ctx, 10*maxBatch(e.systems))
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, more...)
	}
	slices.Sort(keys)
	if len(keys) > n {
		keys = slices.Compact(keys) // a learned write's key may be there already
	}
	// The records merged after all get the canonical form of the reports
	// prepare deferred (in key order: a report that fails now is
	// quarantined as prepare would have, and the audit log's order must
	// not depend on a map's).
	for _, k := range keys {
		if err := c.canonicalOf(ctx, k); err != nil {
			return nil, nil, err
		}
	}
	// One state that does not decode (damaged, of a newer format, sealed
	// under a key the ring no longer has) fails that record alone (merge),
	// never the cycle: its observations wait in merge dead letters, and
	// nothing is committed over it.
	states, bad, err := e.store.LoadEach(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("concord: loading state: %w", err)
	}
	c.unreadable = bad
	if !c.dry {
		c.applyLearned(ctx, states)
	}
	return keys, states, nil
}

// canonicalOf makes the canonical form of every deferred report of key
// (observation.deferred); one that fails is quarantined and dropped.
func (c *cycle) canonicalOf(ctx context.Context, key string) error {
	obs := c.obs[key]
	for i := 0; i < len(obs); {
		if !obs[i].deferred {
			i++
			continue
		}
		ok, err := c.canonicalOrQuarantine(ctx, obs[i])
		if err != nil {
			return err
		}
		if !ok {
			obs = slices.Delete(obs, i, i+1)
			c.obs[key] = obs
			continue
		}
		i++
	}
	return nil
}

// canonicalOrQuarantine is canonical for a report already observed: one
// that fails is quarantined as prepare's failures are (ok false); err is
// only ctx's end.
func (c *cycle) canonicalOrQuarantine(ctx context.Context, o *observation) (ok bool, err error) {
	if err := c.canonical(ctx, o); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		c.quarantine(o.sys, o.raw, err)
		return false, nil
	}
	return true, nil
}

// merge applies each record's observations to its state: detect each
// system's edits, merge them unit by unit (the rules in merge.go) and pass
// every change through the gates. A record whose merge fails is
// dead-lettered (ClassMerge) and merged again later; the others are
// returned.
func (c *cycle) merge(ctx context.Context, keys []string, states map[string]*state.Record) []*state.Record {
	m := c.e.merger
	m.cycle = c.report.Cycle
	var merged []*state.Record
	for _, k := range keys {
		if err := c.unreadable[k]; err != nil {
			c.failMerge(k, fmt.Errorf("concord: loading the state of record %q: %w", k, err))
			continue
		}
		st := states[k]
		if st == nil {
			n := 0 // its fields: what the maps will hold
			for _, o := range c.obs[k] {
				n = max(n, len(o.rec.Fields))
			}
			st = &state.Record{Key: k, Fields: make(map[string]concord.Value, n), Units: make(state.Table[*state.Unit], 0, n+1),
				Systems: make(map[concord.SystemID]*state.View, len(c.e.systems))}
			st.Touched = true
		}
		m.events = c.events.open() // the record's events, built in the log's space
		if err := m.mergeRecord(ctx, st, c.obs[k]); err != nil {
			m.events = m.events[:0]
			c.failMerge(k, err)
			c.events.add(m.events...)
			continue
		}
		for _, o := range c.obs[k] {
			for _, u := range o.corrected {
				// The system holds the refused value, not the
				// correction: it is written the canonical one.
				st.Systems[o.sys.id].Units.Delete(u)
				st.Touched = true
			}
		}
		c.count(m.events)
		if slices.ContainsFunc(m.events, func(ev audit.Event) bool { return ev.Kind == audit.EditObserved }) {
			if c.edited == nil {
				c.edited = map[*state.Record]bool{}
			}
			c.edited[st] = true
		}
		if len(m.events) > 0 {
			st.Touched = true
		}
		c.events.add(m.events...)
		for _, o := range c.obs[k] {
			if w, ok := c.unkept[echoKey{k, o.sys.id}]; ok {
				c.parkUnkept(st, o.sys, w)
			}
		}
		merged = append(merged, st)
	}
	m.events = nil // the log's space: the next user starts afresh
	c.events.close()
	c.report.Records = len(merged)
	return merged
}

// writeAhead commits the merged states, with every write about to be
// attempted, before anything is sent. A crash or a failed commit after the
// writes cannot make the engine mistake its own writes for the systems'
// edits, and an instance that lost its lease writes nothing. The events go
// to the sink first: a crash between the two repeats them in the next
// cycle rather than losing them (at least once).
func (c *cycle) writeAhead(ctx context.Context, merged []*state.Record, writes [][]*write) error {
	if c.e.noWriteAhead || !slices.ContainsFunc(writes, func(ws []*write) bool { return len(ws) > 0 }) {
		return nil
	}
	token := newCommitToken()
	b := &batch{Lease: c.lease, States: touched(merged), Values: map[string][]byte{writeAheadValue: token}}
	for _, st := range b.States {
		// Until the commit after the writes, which encodes it again,
		// only its views (and its Diverged time) change: that encoding
		// copies the rest from this one.
		st.KeepEncoding()
	}
	if err := c.e.stageLog(b, &c.events, 0); err != nil {
		return err
	}
	if err := c.e.store.Commit(ctx, b); err != nil {
		if !errors.Is(err, store.ErrStale) {
			// Perhaps stored, its reply lost: the attempts it noted must
			// be forgotten if so, which the token tells. A commit
			// refused as stale stored nothing.
			c.noteOutcomes(writes, token)
		}
		return fmt.Errorf("concord: committing cycle %d before its writes: %w", c.report.Cycle, err)
	}
	c.e.committed(b)
	c.learnedCommitted(b.States)
	c.emitted = c.events.len()
	c.deliver(ctx, b.entries)
	return nil
}

// touched returns the states a cycle changed: the others are neither
// encoded nor committed again.
func touched(states []*state.Record) []*state.Record {
	out := make([]*state.Record, 0, len(states))
	for _, st := range states {
		if st.Touched {
			out = append(out, st)
		}
	}
	return out
}

// commit emits every event not emitted yet (the writes happened, whatever
// becomes of the commit: at least once), then commits the states, the
// cursors and the dead letters in one atomic commit.
func (c *cycle) commit(ctx context.Context, merged []*state.Record) error {
	for _, p := range c.writeEvents.parts(0) {
		c.events.add(p...)
	}
	if c.e.anomalies != nil {
		c.values = c.e.anomalies.values(c.values)
	}
	if !c.dry {
		c.backfillValues()
	}
	b := &batch{Lease: c.lease, Cursors: c.cursors, Values: c.values, States: touched(merged), DeadLetters: c.dead, RemoveDeadLetters: c.removeDead}
	if err := c.e.stageLog(b, &c.events, c.emitted); err != nil {
		return err
	}
	if len(b.States)+len(b.Cursors)+len(b.Values)+len(b.DeadLetters)+len(b.RemoveDeadLetters)+len(b.Audit) == 0 {
		return nil // an idle cycle: nothing to commit, no write transaction
	}
	if err := c.e.store.Commit(ctx, b); err != nil {
		c.noteOutcomes(c.planned, nil)
		c.keepWriteEvents(ctx)
		return fmt.Errorf("concord: committing cycle %d: %w", c.report.Cycle, err)
	}
	c.e.committed(b)
	c.learnedCommitted(b.States)
	if !c.dry {
		c.e.echoes.remember(c.written, c.e.out.head)
		c.backfillCommitted()
	}
	c.deliver(ctx, b.entries)
	return nil
}

// keepWriteEvents commits the audit events of the cycle's writes alone
// when the cycle's commit failed: the writes happened. If that fails too
// they go to the sink directly, outside the audit log, rather than be lost.
func (c *cycle) keepWriteEvents(ctx context.Context) {
	if c.writeEvents.len() == 0 {
		return
	}
	b := &batch{Lease: c.lease}
	if err := c.e.stageLog(b, &c.writeEvents, 0); err == nil {
		if err = c.e.store.Commit(ctx, b); err == nil {
			c.e.committed(b)
			c.deliver(ctx, b.entries)
			return
		}
	}
	if err := c.e.audit.Emit(ctx, c.writeEvents.all(0)); err != nil {
		c.report.Failures = append(c.report.Failures, Failure{Op: OpAudit, Err: err})
	}
}

// done records the committed cycle's metrics, raises its alerts and
// returns its report, with a [*CycleError] if anything failed.
func (c *cycle) done(ctx context.Context) (*Report, error) {
	e := c.e
	for _, r := range c.resolved {
		e.metrics.resolved(ctx, r.system, r.after)
	}
	for _, d := range c.converged {
		e.metrics.convergedAfter(ctx, d)
	}
	c.report.Finished = e.now()
	e.metrics.observe(ctx, c.report, e.systems)
	e.alerts(ctx, c.report, &c.events)
	if len(c.report.Failures) > 0 {
		return c.report, &CycleError{Failures: c.report.Failures}
	}
	return c.report, nil
}

// deliver hands the sink every committed audit entry not delivered yet
// (fresh: those just committed); a failure is the cycle's, and the
// entries wait in the store's audit log for the next delivery.
func (c *cycle) deliver(ctx context.Context, fresh [][]audit.Entry) {
	if err := c.e.deliver(ctx, fresh); err != nil {
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
		if st.Diverged.IsZero() && c.edited[st] {
			st.Diverged = c.report.Started
			st.Touched = true
		}
		apart := st.DisagreeAmong(c.e.store.codec.Systems)
		switch {
		case apart && st.Diverged.IsZero():
			st.Diverged = now
			st.Touched = true
		case !apart && !st.Diverged.IsZero():
			c.converged = append(c.converged, now.Sub(st.Diverged))
			st.Diverged = time.Time{}
			st.Touched = true
		}
	}
}

// settleQuarantined removes the inbound dead letters of records that a
// system has now delivered whole in a usable form (someone fixed them
// there): they are settled, not lost. The others it notes as unread there
// (see unguarded). It reads the dead letters of the merged records alone,
// by the store's index by key.
func (c *cycle) settleQuarantined(ctx context.Context, merged []*state.Record) error {
	if len(merged) == 0 {
		return nil
	}
	keys := make([]string, len(merged))
	for i, st := range merged {
		keys[i] = st.Key
	}
	dead, bad, err := c.e.store.DeadLettersOf(ctx, keys)
	if err != nil {
		return fmt.Errorf("concord: listing the dead letters of %d merged records: %w", len(keys), err)
	}
	c.unreadableLetters(bad)
	for _, d := range dead {
		if !d.Inbound || slices.Contains(c.removeDead, d.ID) {
			continue
		}
		settled := false
		for _, o := range c.obs[d.Key] {
			// A whole report settles a letter whose time no clock
			// has reached (a clock that ran ahead): that time says
			// nothing of which came first, and the read is the
			// system's current state. A report whose own time no
			// clock has reached settles a letter only as such a
			// read: not as the record of a merge dead letter
			// (remerge), an earlier report, which would otherwise
			// settle a later one quarantined since (seed 69,039:
			// the later report's edit then written over, unread).
			//
			// A merge dead letter whose own record this cycle merged
			// again is settled by that merge, whatever its time: the
			// report is learned (a merge that failed again has replaced
			// the letter already, keepForRemerge). Kept, it would be
			// merged again at every later engine step that reads
			// nothing fresher of the record there, an ever older report
			// taken for the system's whole current state. Its time,
			// equal to itself, settled it until the rule for a report
			// stamped beyond the clock; then it no longer did (seed
			// 95,748: the kept report, stamped "2110", merged again
			// once a read of the system failed, after the engine had
			// written another system's edit there, read as that system
			// setting the field back: the edit was lost everywhere).
			//
			// A report that may be part of the record (a webhook,
			// or the record of a letter kept from one) settles
			// none, however new: the fields it leaves out may hold
			// the quarantined report's edits, which the engine has
			// then still not read, and a cycle that reads the
			// system to the end does not bring them back (the
			// feed's cursor is past that change). Settled, the
			// record would count as read there (unguarded), and a
			// write to a system without tags would replace those
			// edits unread (seed 85,242: a late webhook of the
			// quarantined state itself, its owned field left
			// out). The letter waits for a whole report: a later
			// change read from the feed, a replay. (Its own record,
			// merged again, settles it all the same: below.)
			if o.sys.id != d.System {
				continue
			}
			own := o.letter && o.letterID == d.ID
			if !own && !o.full {
				continue
			}
			m := c.e.merger
			current := o.full && !o.letter // a whole read of the system, this cycle
			newer := !o.rec.Modified.Before(d.Record.Modified) && (current || !m.aheadOfClock(o.rec.Modified))
			if own || newer || (current && m.aheadOfClock(d.Record.Modified)) {
				settled = true
				c.removeDead = append(c.removeDead, d.ID)
				c.events.add(audit.Event{Time: c.e.now(), Kind: audit.WriteReplayed, Cycle: c.report.Cycle,
					System: d.System, Key: d.Key, Reason: fmt.Sprintf("dead letter %d settled: %s delivered the record in a usable form", d.ID, d.System)})
			}
		}
		if !settled {
			c.noteUnread(d.System, d.Key)
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
	if c.e.sens != nil {
		var ms []map[string]concord.Value
		for _, o := range c.obs[key] {
			ms = append(ms, o.raw.Fields, o.rec.Fields)
		}
		err = c.e.sens.redactErr(err, ms...)
	}
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
			c.report.Systems[ev.System].Edits += max(len(ev.Units), 1)
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
