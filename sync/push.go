package sync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/transform"
)

// write is one planned patch to one system.
type write struct {
	st     *state.Record
	sys    *system
	patch  connector.Patch
	native []fieldHash // hashes of patch.Set
	rt     []unitHash  // per unit: the hash the system will report back
	result connector.Result
	err    error // of the whole Apply call
	// sent lists the attempts noted in the target's view (state.View.Sent)
	// for this write.
	sent []state.Attempt
	// applied: the system applied the write (its outcome, as the cycle
	// took it: writeSucceeded and synced).
	applied bool
	// fields (sorted) and version (the record's context) of the write's
	// audit events: the attempt and its outcome share them.
	fields  []string
	version concord.Version
}

// planWrites plans a field-level patch for every system that does not hold
// a record's canonical values, per system, and notes each in the target's
// view as attempted (state.View.Sent) before anything is sent.
func (c *cycle) planWrites(ctx context.Context, states []*state.Record) [][]*write {
	per := make([][]*write, len(c.e.systems))
	for _, st := range states {
		for i, s := range c.e.systems {
			view := st.Systems[s.id]
			if !st.Stale(view) {
				if view.Attempts > 0 && !view.Parked && !st.Behind(view) {
					// In sync without a write (its own edit won):
					// failures are counted in a row.
					c.writeSucceeded(st, s)
					st.Touched = true
				}
				continue
			}
			if c.unguarded(st, s, view) {
				c.report.Systems[s.id].Deferred++
				continue // still pending: a later cycle that reads s writes it
			}
			st.Touched = true // planned, written or refused: the view changes
			w, err := c.plan(ctx, st, s)
			err = c.e.sens.redactErr(err, st.Fields)
			var scopeErr *ScopeError
			switch {
			case errors.As(err, &scopeErr):
				c.refuse(st, s, scopeErr)
			case err != nil:
				c.fail(s.id, st.Key, OpTransform, err)
				c.events.add(audit.Event{Time: c.e.now(), Kind: audit.WriteFailed, Cycle: c.report.Cycle,
					System: s.id, Key: st.Key, Error: err.Error(), ErrorClass: invalidClass(err).String()})
				if _, bug := err.(*outboundInvalid); bug {
					// A transform bug does not mend itself: keep the
					// record aside rather than retry it every cycle.
					c.park(st, s, concord.Record{Key: st.Key}, concord.Record{Key: st.Key, Fields: st.Fields}, err, invalidClass(err))
				}
			case w == nil:
				// The system already holds the canonical values.
			default:
				per[i] = append(per[i], w)
			}
		}
	}
	return per
}

// unguarded reports whether a write of st to s now could overwrite an edit
// the engine has not read, with nothing to make s refuse it. The engine has
// not read s's current state of the record when this step did not read s's
// changes to the end (its read failed or stopped with more waiting, or the
// step reads no change feed: Ingest, Replay), or when s's report of the
// record is in an inbound dead letter (quarantined: unknown to the engine
// until it is replayed or s reports it again in a usable form). A system
// with conditional writes refuses an update or a delete whose IfMatch tag
// is stale, and a create of a record that exists; without them (no version
// tag: Record.Tag empty), the write would silently replace what a person
// entered there since, and no later read could bring it back. Such a write
// waits, pending, for a cycle that reads s to the end: its window shrinks
// from the time since the last full read to that cycle's own read-to-write
// time. So does a write over a state the engine knows from a report that
// may have been part of the record (a webhook: View.Partial), and one to a
// system with tags whose tag of the record the engine does not know (after
// a write answered without one).
func (c *cycle) unguarded(st *state.Record, s *system, view *state.View) bool {
	if c.e.tagAwaited(s.id, st.Key) && view.Seen && !view.Deleted && view.Tag == "" {
		// The record's last write to s was answered without a version
		// tag (send), and s has not reported it since: the engine does
		// not know its tag there. Written with no IfMatch, the write
		// would replace what s holds now, whatever a person made of it
		// since. It waits one cycle, which reads the record again by key
		// (refetch, for a connector that can), as after a version
		// conflict; a connector that cannot leaves it to be written as
		// to a system without tags.
		c.e.refreshLater(s.id, st.Key, false)
		return true
	}
	if c.current[s.id] && !c.unread[sysKey{s.id, st.Key}] {
		return false
	}
	if view.Seen && !view.Deleted {
		// An update or a delete: IfMatch is the tag. A tag from a
		// report that may have been part of the record (view.Partial:
		// a webhook) guards nothing: the state it names may hold edits
		// of the fields the report left out, which a write over it
		// would replace unread.
		return view.Tag == "" || view.Partial
	}
	return !s.tagged.Load() // a create
}

// send sends the planned writes (systems in parallel, each in batches), and
// records in each state what each system now holds. Every write is audited
// (attempted, then succeeded or failed) in c.writeEvents.
func (c *cycle) send(ctx context.Context, per [][]*write) {
	for i, s := range c.e.systems {
		for _, w := range per[i] {
			if w.fields == nil { // planned as set's names already, sorted
				w.fields = sortedFields(w.patch.Set)
			}
			w.version = unitVersion(w.st) // sending changes neither
			c.writeEvents.add(audit.Event{Time: c.e.now(), Kind: audit.WriteAttempted, Cycle: c.report.Cycle,
				System: s.id, Key: w.st.Key, Fields: w.fields, To: w.patch.Set, Deleted: w.patch.Delete,
				Version: w.version})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range c.e.systems {
		ws := per[i]
		if len(ws) == 0 {
			continue
		}
		g.Go(func() error {
			for start := 0; start < len(ws); start += s.BatchSize {
				batch := ws[start:min(start+s.BatchSize, len(ws))]
				patches := make([]connector.Patch, len(batch))
				for j, w := range batch {
					patches[j] = w.patch
					// The connector's own copy: the cycle reads Set
					// again after the call (audit, redaction).
					patches[j].Set = concord.CloneFields(w.patch.Set)
				}
				var res []connector.Result
				err := c.lostLease()
				if err == nil && gctx.Err() != nil {
					err = fmt.Errorf("%w: %w", errCancelledBeforeSend, context.Cause(gctx))
				}
				if err == nil {
					err = c.call(gctx, s, func(ctx context.Context) (err error) {
						if err := c.holdLease(ctx); err != nil {
							return err
						}
						res, err = s.Connector.Apply(ctx, patches)
						return err
					})
				}
				if err == nil && len(res) != len(batch) {
					err = fmt.Errorf("connector %q returned %d results for %d patches", s.id, len(res), len(batch))
				}
				for j, w := range batch {
					if err != nil {
						w.err = err
					} else {
						w.result = res[j]
					}
				}
			}
			return nil
		})
	}
	_ = g.Wait() // every goroutine returns nil; failures are per write
	c.cancelled = ctx.Err()
	for i, s := range c.e.systems {
		for _, w := range per[i] {
			err := w.err
			if err == nil && w.result.Key != w.patch.Key {
				// Results out of order, or one missing: what the
				// system did with this patch is unknown.
				err = fmt.Errorf("connector %q answered for record %q instead of %q", s.id, w.result.Key, w.patch.Key)
			}
			if err == nil {
				err = w.result.Err
			}
			err = c.e.sens.redactErr(err, w.patch.Set, w.st.Fields)
			if err != nil {
				c.fail(s.id, w.st.Key, OpWrite, err)
				c.writeEvents.add(audit.Event{Time: c.e.now(), Kind: audit.WriteFailed, Cycle: c.report.Cycle,
					System: s.id, Key: w.st.Key, Fields: w.fields, Deleted: w.patch.Delete,
					Error: err.Error(), ErrorClass: classOf(err).String()})
				if w.refused() || notSent(w.err) {
					// The system answered for this patch: it was not
					// applied, so nothing it reports later is this
					// write (a failed call may have applied it, and so
					// may a patch answered for under another key); or
					// it was never sent.
					w.st.Systems[s.id].Unsend(w.sent)
				}
				c.writeFailed(w, err)
				continue
			}
			c.report.Systems[s.id].Writes++
			c.written = append(c.written, w)
			w.applied = true
			c.writeSucceeded(w.st, s)
			tagged := w.st.Systems[s.id].Tag != "" // the record's tag there, before
			c.synced(w.st, s, w.rt, w.native, w.result)
			if w.result.Tag == "" && tagged {
				// Applied, and the reply names no version (a PATCH
				// answered 204) where the record had one: the tag the
				// view had names the state before this write, which
				// the view no longer describes. Kept, a late webhook
				// or a lagging feed of that older state would read as
				// the state the engine wrote (same tag), and its old
				// values as the system's notation of the written ones
				// (learnNotation): the system's next edit of such a
				// field, back to that old value, would then read as
				// no change at all. Until the system is read again,
				// its tag is not known.
				w.st.Systems[s.id].Tag = ""
				c.e.awaitTag(s.id, w.st.Key)
			}
			c.writeEvents.add(audit.Event{Time: c.e.now(), Kind: audit.WriteSucceeded, Cycle: c.report.Cycle,
				System: s.id, Key: w.st.Key, Fields: w.fields, Deleted: w.patch.Delete, Version: w.version})
		}
	}
}

// refused reports whether the system answered that it did not apply w:
// the call succeeded and w's result, for w's key, is an error.
func (w *write) refused() bool {
	return w.err == nil && w.result.Key == w.patch.Key && w.result.Err != nil
}

// errCancelledBeforeSend is the error of a write not sent because the
// cycle's caller had cancelled it by the time the write's batch was due.
var errCancelledBeforeSend = errors.New("concord: the cycle was cancelled before the write was sent")

// notSent reports whether err is that of a write the cycle never sent: its
// lease was lost, or its caller cancelled it first.
func notSent(err error) bool {
	return errors.Is(err, ErrLeaseLost) || errors.Is(err, errCancelledBeforeSend)
}

// plan computes the patch that brings s up to date with st, or marks s in
// sync and returns nil if it needs none.
func (c *cycle) plan(ctx context.Context, st *state.Record, s *system) (*write, error) {
	view := st.Systems[s.id]
	if st.Deleted {
		if view.Seen && !view.Deleted {
			if err := s.checkScope(&connector.Patch{Key: st.Key, Delete: true}); err != nil {
				return nil, err
			}
			h := state.Copy{Hash: existHash(false), Version: st.Existence().Version}
			var sent []state.Attempt // see the end of plan: a pending equal attempt is not this write's
			if !view.Pending(resolve.RecordUnit, h) {
				view.AddSent(resolve.RecordUnit, h)
				sent = []state.Attempt{{Unit: resolve.RecordUnit, Copy: h}}
			}
			return &write{st: st, sys: s, patch: connector.Patch{Key: st.Key, Delete: true, IfMatch: view.Tag,
				IdempotencyKey: c.idempotencyKey(st.Key, s.id, view, st, nil, nil)}, sent: sent}, nil
		}
		c.synced(st, s, nil, nil, connector.Result{})
		return nil, nil
	}
	// Held units are not written anywhere until a person decides.
	input, copied := st.Fields, false
	for _, ux := range st.Units {
		name, u := ux.Name, ux.Value
		if u.Hold == nil || name == resolve.RecordUnit {
			continue
		}
		if !copied {
			input, copied = maps.Clone(st.Fields), true
		}
		for _, f := range c.e.layout.fieldsOf(name) {
			delete(input, f)
		}
	}
	desired := concord.Record{Key: st.Key, Fields: input}
	if !s.identityOut {
		var err error
		if desired, err = s.Outbound.Transform(ctx, desired); err != nil {
			return nil, &concord.RecordError{System: s.id, Key: st.Key, Err: fmt.Errorf("outbound transform: %w", err)}
		}
		if err := desired.Validate(); err != nil {
			return nil, withSystem(fmt.Errorf("after outbound transform: %w", err), s.id)
		}
	}
	create := !view.Seen || view.Deleted
	affected := c.affected(ctx, st, s, view, create)
	size := len(desired.Fields)
	if affected != nil {
		size = len(affected)
	}
	set := make(map[string]concord.Value, size)
	native := make([]fieldHash, 0, size)
	// A write to s whose outcome the engine never learned (view.Sent: its
	// reply was lost, or the engine crashed after committing it ahead)
	// may have been applied since s last reported its fields: view.Native
	// is then no proof of what s holds, and every field to bring up to
	// date is written. Trusting it would mark s in sync with a value it
	// may not hold, and confirm the attempt away (synced): s reporting
	// that write's value later would be taken for its own edit.
	unsure := len(view.Sent) > 0
	consider := func(f string, v concord.Value) error {
		if _, ok := slices.BinarySearch(affected, f); affected != nil && !ok {
			return nil // from units the system already holds: leave its notation alone
		}
		h, err := c.e.sens.hashValue(f, v)
		if err != nil {
			return &concord.RecordError{System: s.id, Key: st.Key, Field: f, Err: err}
		}
		if old, ok := view.Native.Get(f); create || unsure || !ok || old != h {
			set[f] = v
			native = append(native, fieldHash{field: f, hash: h})
		}
		return nil
	}
	// native sorted by field (for learnNative, and the names below): a
	// system's records mostly have the same fields, so desired's are
	// taken in the order of the last record planned for s, which is
	// sorted, when they are the same names; sorted otherwise.
	inOrder := false
	if order := c.outOrder[s]; len(order) > 0 && len(order) == len(desired.Fields) {
		inOrder = true
		for _, f := range order {
			v, ok := desired.Fields[f]
			if !ok {
				inOrder = false // other names (as many)
				break
			}
			if err := consider(f, v); err != nil {
				return nil, err
			}
		}
		if !inOrder {
			clear(set)
			native = native[:0]
		}
	}
	if !inOrder {
		for f, v := range desired.Fields {
			if err := consider(f, v); err != nil {
				return nil, err
			}
		}
		slices.SortFunc(native, func(a, b fieldHash) int { return strings.Compare(a.field, b.field) })
		if c.outOrder == nil {
			c.outOrder = map[*system][]string{}
		}
		order := c.outOrder[s][:0]
		for f := range desired.Fields {
			order = append(order, f)
		}
		slices.Sort(order)
		c.outOrder[s] = order
	}
	// The names of set, sorted: the write's audit events keep them.
	var names []string
	if len(native) > 0 {
		names = make([]string, len(native))
		for i, x := range native {
			names[i] = x.field
		}
	}
	// What the system will report back, in canonical shape, once it holds
	// desired: the hashes that recognise the echo.
	back := desired
	if !s.identityIn || !s.identityOut {
		var err error
		if back, err = s.Inbound.Transform(ctx, desired); err != nil {
			return nil, &concord.RecordError{System: s.id, Key: st.Key, Err: fmt.Errorf("inbound transform of the outbound record: %w", err)}
		}
	}
	if d := c.e.cfg.Dictionary; d != nil {
		if err := outboundViolations(d.Validate(back), back); err != nil {
			return nil, &outboundInvalid{&concord.RecordError{System: s.id, Key: st.Key,
				Err: fmt.Errorf("refusing to write what the dictionary rejects: %w", err)}}
		}
	}
	// rt: what synced records of s once it holds desired. A held unit
	// is neither written nor recorded (synced skips it). A unit s holds
	// already at the canonical version keeps its copy, made from what s
	// reported, when the write cannot change what s reports of it: none
	// of its fields is among those the inbound transform can make of the
	// fields written (transform.Lineage). Recording the round trip's
	// hash there would forget s's own notation of a value it holds
	// ("LEEDS" for "Leeds", learnNotation), which its next change of
	// another field would then make an edit
	// (TestSystemNotationIsNeverAPhantomEdit); and the fields not written
	// are not hashed again. Not for a create, nor while a write to s is
	// unconfirmed: then what s holds is not known. A held unit the write
	// can change keeps its copy too when the round trip gives its
	// canonical values back (the city packed with a new street into one
	// field of s, written again unchanged): s then reports its notation or
	// the canonical values, in sync either way
	// (TestAUnitPackedWithAWrittenOneKeepsItsNotation). Only a lossy round
	// trip records what it gives.
	//
	// An inbound transform that tells no lineage (a Func) is asked
	// instead, only for a held unit whose copy differs from the round
	// trip's hash (keeping and recording are the same otherwise) and from
	// its canonical values' (kept, above), what it
	// makes of desired without the fields written (apart): a unit whose
	// values come out the same with and without them does not depend on
	// them. If it fails on the part, every unit that needed its answer is
	// recorded as the round trip gives it, as before.
	var reach []string // the canonical fields the write can change, sorted
	keep, probe := false, false
	if !create && !unsure {
		if s.identityIn {
			reach, keep = names, true
		} else if reach, keep = transform.Lineage(s.lineageIn, names); !keep {
			// No lineage: probe the Func (below), unless nothing is
			// written, which changes nothing s holds.
			keep, probe = true, len(names) > 0
		}
	}
	n := len(st.Units)
	if keep && !probe {
		n = len(reach) + 1
	}
	rt := make([]unitHash, 0, n)
	var apart map[string]concord.Value
	failed := false // the Func failed on the part: what needs its answer is recorded
	for k, ux := range st.Units {
		name, u := ux.Name, ux.Value
		if name == resolve.RecordUnit || u.Hold != nil {
			continue
		}
		fields := c.e.layout.fieldsOf(name)
		held := keep && view.HoldsAt(k, name, u.Version)
		if held && !probe && !reaches(reach, fields) {
			continue
		}
		h, err := c.e.merger.hashUnit(fields, back.Fields)
		if err != nil {
			return nil, &concord.RecordError{System: s.id, Key: st.Key, Field: name, Err: err}
		}
		if held {
			if cp, _ := view.Units.At(k, name); cp.Hash == h {
				continue // the same copy either way
			}
			// Held in a notation of its own, and the write gives the
			// unit's canonical values back: s then reports either its
			// notation, as it held it, or the canonical values, which
			// are in sync whatever the copy. Keep the copy.
			if c0, err := c.e.merger.hashUnit(fields, st.Fields); err == nil && c0 == h {
				continue
			}
		}
		if held && probe && !failed {
			if apart == nil {
				apart, failed = c.inboundApart(ctx, s, desired, set)
			}
			if !failed {
				if h0, err := c.e.merger.hashUnit(fields, apart); err == nil && h0 == h {
					continue
				}
			}
		}
		rt = append(rt, unitHash{name, h, k})
	}
	if len(set) == 0 && !create {
		// It holds every canonical value already (its own edit won):
		// in sync without a write, which ends a run of failures.
		if view.Attempts > 0 && !view.Parked {
			c.writeSucceeded(st, s)
		}
		c.synced(st, s, rt, nil, connector.Result{})
		return nil, nil
	}
	p := connector.Patch{Key: st.Key, Set: set, Create: create}
	if err := s.checkScope(&p); err != nil {
		return nil, err
	}
	p.IdempotencyKey = c.idempotencyKey(st.Key, s.id, view, st, set, names)
	if !create {
		p.IfMatch = view.Tag
	}
	// Remember the attempt until the system confirms or supersedes it:
	// if the reply is lost, what the system reports later is this write.
	// The units written, those the system lacks, as indices in rt (-1:
	// the record's existence).
	attempt := func(i int) (state.Attempt, int) {
		if i < 0 {
			return state.Attempt{Unit: resolve.RecordUnit, Copy: state.Copy{Hash: existHash(true)}}, 0
		}
		return state.Attempt{Unit: rt[i].unit, Copy: state.Copy{Hash: rt[i].hash}}, rt[i].at
	}
	idx := c.sendIdx[:0]
	for i := -1; i < len(rt); i++ {
		a, at := attempt(i)
		name := a.Unit
		k, ok := st.Units.IndexAt(at, name)
		if !ok {
			continue
		}
		if u := st.Units[k].Value; u.Hold == nil && (create || !view.HoldsAt(k, name, u.Version)) {
			idx = append(idx, i)
		}
	}
	c.sendIdx = idx
	// sent lists only the attempts this write adds. One equal to an
	// attempt already pending (the same value at the same version: an
	// earlier write whose outcome the engine never learned, sent again
	// because s was not read since) stays that earlier write's: if s
	// refuses this one (a stale IfMatch, as when the earlier write was
	// applied and changed s's tag), that proves nothing about the earlier
	// write, which s may hold. Unsend must not forget it, or s reporting
	// its value later would be taken for s's own edit.
	sent := make([]state.Attempt, 0, len(idx))
	spare := make([]state.Copy, len(idx))
	for _, i := range idx {
		a, at := attempt(i)
		k, _ := st.Units.IndexAt(at, a.Unit) // found above
		a.Copy.Version = st.Units[k].Value.Version
		if view.Pending(a.Unit, a.Copy) {
			continue
		}
		view.AddSentFrom(a.Unit, a.Copy, &spare)
		sent = append(sent, a)
	}
	return &write{st: st, sys: s, patch: p, native: native, rt: rt, sent: sent, fields: names}, nil
}

// inboundApart returns s's inbound transform of desired without the fields
// of set, or failed if the transform fails: for an inbound transform whose
// lineage is not known, what the write of set can change is told by
// comparing this with the inbound transform of desired (plan).
func (c *cycle) inboundApart(ctx context.Context, s *system, desired concord.Record, set map[string]concord.Value) (apart map[string]concord.Value, failed bool) {
	rest := make(map[string]concord.Value, len(desired.Fields))
	for f, v := range desired.Fields {
		if _, ok := set[f]; !ok {
			rest[f] = v
		}
	}
	part := desired
	part.Fields = rest
	out, err := s.Inbound.Transform(ctx, part)
	if err != nil {
		return nil, true
	}
	if out.Fields == nil {
		out.Fields = map[string]concord.Value{} // not nil: plan takes nil for not asked yet
	}
	return out.Fields, false
}

// reaches reports whether one of fields is in sorted.
func reaches(sorted, fields []string) bool {
	for _, f := range fields {
		if _, ok := slices.BinarySearch(sorted, f); ok {
			return true
		}
	}
	return false
}

// affected returns the fields, in s's shape, that come from the units s
// does not hold yet: their lineage through the outbound transform when it
// knows it (transform.Lineage), else the outbound transform of just those
// units' canonical fields (with their values; only the names are read).
// Other fields are not written even if their notation in s differs from
// what the outbound transform makes of them ("(415) 555-0132" against
// "+14155550132"): s holds their value. Nil means every field (a record s
// does not have, or a transform that needs the whole record). The names
// are sorted; for a system without an outbound transform they are the
// cycle's scratch, valid until the next call.
func (c *cycle) affected(ctx context.Context, st *state.Record, s *system, view *state.View, create bool) []string {
	if create {
		return nil
	}
	if c.affectedBuf == nil {
		c.affectedBuf = make([]string, 0, 8) // never nil: nil means every field
	}
	names := c.affectedBuf[:0]
	for k, ux := range st.Units {
		name, u := ux.Name, ux.Value
		if name == resolve.RecordUnit || u.Hold != nil {
			continue
		}
		if view.HoldsAt(k, name, u.Version) {
			continue
		}
		for _, f := range c.e.layout.fieldsOf(name) {
			if _, ok := st.Fields[f]; ok {
				names = append(names, f)
			}
		}
	}
	slices.Sort(names) // in unit order: sorted but for groups
	c.affectedBuf = names
	if s.identityOut {
		return names // those units' fields, as they are
	}
	// A transformer that knows its lineage (a Mapping, a Chain of them)
	// tells the fields without transforming the part again.
	if lin, ok := transform.Lineage(s.lineageOut, names); ok {
		return lin
	}
	part := make(map[string]concord.Value, len(names))
	for _, f := range names {
		part[f] = st.Fields[f]
	}
	out, err := s.Outbound.Transform(ctx, concord.Record{Key: st.Key, Fields: part})
	if err != nil {
		return nil
	}
	if len(out.Fields) == 0 {
		return []string{} // none: not nil, which means every field
	}
	return sortedFields(out.Fields) // only its names are read
}

// unitHash is the hash of one unit's values; at is where the record's
// Units had the unit when the hash was made (a hint: see Table.IndexAt).
type unitHash struct {
	unit string
	hash uint64
	at   int
}

// synced records that s now holds the canonical value of every unit that
// is not held. rt has the hash of every unit of a record that is not
// deleted but its existence, as the system reports it back (plan).
func (c *cycle) synced(st *state.Record, s *system, rt []unitHash, native []fieldHash, res connector.Result) {
	view := st.Systems[s.id]
	if u := st.Existence(); u != nil && u.Hold == nil {
		view.Units.Set(resolve.RecordUnit, state.Copy{Hash: existHash(!st.Deleted), Version: u.Version})
		view.Confirm(resolve.RecordUnit, u.Version)
	}
	if !st.Deleted { // else the fields stay as they were
		for _, x := range rt {
			k, ok := st.Units.IndexAt(x.at, x.unit)
			if !ok || st.Units[k].Value.Hold != nil {
				continue
			}
			u := st.Units[k].Value
			view.Units.SetAt(k, x.unit, state.Copy{Hash: x.hash, Version: u.Version})
			if len(view.Sent) > 0 {
				view.Confirm(x.unit, u.Version)
			}
		}
	}
	learnNative(view, native)
	if st.Deleted {
		view.ForgetValues()
	}
	view.Seen = view.Seen || !st.Deleted
	view.Deleted = st.Deleted
	if res.Tag != "" {
		if !s.tagged.Load() {
			s.tagged.Store(true)
		}
		view.Tag = res.Tag
	}
	if !res.Modified.IsZero() {
		view.Modified = utc(res.Modified)
	}
}

func sortedFields(m map[string]concord.Value) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// unitVersion is the record's context: the join of every unit's version.
func unitVersion(st *state.Record) concord.Version {
	var v concord.Version
	for _, ux := range st.Units {
		u := ux.Value
		v = v.Join(u.Version)
	}
	return v
}

// writeFailed counts a failed write of the record and dead-letters it when
// the failure is permanent or has repeated too often. Conflicts and
// not-found are not counted: the next read of the system settles them.
func (c *cycle) writeFailed(w *write, err error) {
	if notSent(err) {
		return // not sent: the next cycle (that holds the lease) plans it again
	}
	if c.cancelled != nil && errors.Is(err, c.cancelled) {
		return // the caller cancelled the cycle (or its deadline passed) during the call: not the system's failure
	}
	view := w.st.Systems[w.sys.id]
	class := connector.Classify(err)
	if errors.Is(err, ErrPanic) {
		class = connector.ErrTransient // a bug, not a class: counted like a transient failure
	}
	if class == connector.ErrConflict || (class == connector.ErrNotFound && !w.patch.Create) {
		// The system changed since the engine last read it (or no
		// longer has the record): read it again next cycle, merge, and
		// write with its new tag. A record it no longer has is its
		// delete, not something to create again blindly.
		c.e.refreshLater(w.sys.id, w.st.Key, class == connector.ErrNotFound)
		return
	}
	if class == connector.ErrNotFound {
		return
	}
	if view.Attempts == 0 {
		view.FirstFailed = c.e.now()
	}
	view.Attempts++
	view.LastError = err.Error()
	if class != connector.ErrPermanent && view.Attempts < c.e.retry.MaxRecordAttempts {
		return
	}
	c.park(w.st, w.sys, concord.Record{Key: w.st.Key, Fields: w.patch.Set, Deleted: w.patch.Delete}, concord.Record{}, err, classOf(err))
}

// park dead-letters the writes of st to s: they are not retried until
// replayed.
func (c *cycle) park(st *state.Record, s *system, payload, canonical concord.Record, err error, class connector.Class) {
	view := st.Systems[s.id]
	if view.Attempts == 0 {
		view.FirstFailed = c.e.now()
		view.Attempts = 1
	}
	view.Parked, view.LastError = true, err.Error()
	c.report.Systems[s.id].DeadLettered++
	payload, _ = storable(payload)
	canonical, _ = storable(canonical)
	c.dead = append(c.dead, DeadLetter{System: s.id, Key: st.Key, Record: payload, Transformed: canonical,
		Reason: deadReason(err), Class: class.String(), Attempts: view.Attempts, FirstFailed: view.FirstFailed, When: c.e.now()})
	c.events.add(audit.Event{Time: c.e.now(), Kind: audit.WriteDeadLettered, Cycle: c.report.Cycle,
		System: s.id, Key: st.Key, Fields: sortedFields(payload.Fields), Deleted: payload.Deleted,
		Error: err.Error(), ErrorClass: class.String(), Reason: fmt.Sprintf("after %d attempts", view.Attempts)})
}

// ErrNotKept is wrapped by the error of a write that a system answered as
// applied without keeping some of the fields it set: the system's record,
// as the write left it (the version tag of the write's reply), lacks them.
// Such a field is one the system does not have, or ignores (a JSON API
// that drops properties it does not know). Written again, it would be lost
// again in every cycle, for ever: the record's writes to the system are
// dead-lettered at once (class permanent) and alerted, and the cycle fails
// the write (its [*CycleError] wraps this), the error naming the system,
// the record and the fields. Leave those fields out of the
// system's records with its outbound transform (or add them to the
// system), then replay the dead letter.
var ErrNotKept = errors.New("concord: the system did not keep fields it was written")

// unkeptWrite is a write whose echo lacks fields it set (notKept).
type unkeptWrite struct {
	fields []string                 // the system's names, sorted
	set    map[string]concord.Value // what the write set
	tag    string                   // of the state the write left
}

// parkUnkept dead-letters the writes of st to s after a write that s did
// not keep in full (ErrNotKept), with the fields it lost as the payload.
func (c *cycle) parkUnkept(st *state.Record, s *system, w unkeptWrite) {
	view := st.Systems[s.id]
	if view == nil || view.Parked {
		return
	}
	lost := make(map[string]concord.Value, len(w.fields))
	for _, f := range w.fields {
		lost[f] = w.set[f]
	}
	err := connector.Permanent(fmt.Errorf("%w: %s answered the write of record %q as applied, and its record as that write left it (version tag %q) has no %s: a field it does not have, or ignores; leave it out with the system's outbound transform (or add it to the system), then replay",
		ErrNotKept, s.id, st.Key, w.tag, strings.Join(w.fields, ", ")))
	c.fail(s.id, st.Key, OpWrite, err)
	c.park(st, s, concord.Record{Key: st.Key, Fields: lost}, concord.Record{}, err, connector.ErrPermanent)
	st.Touched = true
}

// outboundInvalid is a write the dictionary refused: a transform bug.
type outboundInvalid struct{ *concord.RecordError }

// outboundViolations keeps the violations that matter for what a system
// will hold: a required field the system does not carry at all is not its
// fault. It understands the documented violation types of package
// transform, whichever Validator returned them.
func outboundViolations(err error, back concord.Record) error {
	var vs *transform.Violations
	if err == nil {
		return nil
	}
	if !errors.As(err, &vs) {
		var v transform.Violation
		if !errors.As(err, &v) {
			return err
		}
		vs = &transform.Violations{Key: v.Key, List: []transform.Violation{v}}
	}
	kept := &transform.Violations{Key: vs.Key}
	for _, v := range vs.List {
		if _, has := back.Fields[v.Field]; errors.Is(v.Rule, transform.ErrRequired) && !has {
			continue
		}
		kept.List = append(kept.List, v)
	}
	if len(kept.List) == 0 {
		return nil
	}
	if len(kept.List) == len(vs.List) {
		return err // as the Validator said it
	}
	return kept
}

// writeSucceeded clears the record's failure count: s holds its canonical
// values.
func (c *cycle) writeSucceeded(st *state.Record, s *system) {
	view := st.Systems[s.id]
	if !view.FirstFailed.IsZero() {
		c.resolved = append(c.resolved, resolution{s.id, c.e.now().Sub(view.FirstFailed)})
	}
	view.Attempts, view.FirstFailed, view.LastError = 0, time.Time{}, ""
}

// idempotencyKey derives a write's key from the record, the target, the
// state of the record in the target the write is based on (its tag and
// time), the store's epoch, every unit's version and the values written:
// the same change retried gets the same key, and a counter reissued after a
// restore (a new epoch) or a different value never does. Nor does a write
// decided again after the target's record changed: a system that has seen
// the key would answer with the old result without applying it, although
// what it holds now differs (a write applied, then undone by a person).
//
// names are set's names, sorted (nil: idempotencyKey sorts them).
func (c *cycle) idempotencyKey(key string, s concord.SystemID, view *state.View, st *state.Record, set map[string]concord.Value, names []string) string {
	sens := c.e.sens
	b := append(c.keyBuf[:0], key...)
	b = append(b, 0)
	b = append(b, s...)
	b = binary.BigEndian.AppendUint64(b, c.e.epoch)
	b = append(b, 0)
	b = append(b, view.Tag...)
	b = binary.BigEndian.AppendUint64(b, uint64(view.Modified.UnixNano()))
	if names == nil {
		names = c.keyNames[:0]
		for f := range set {
			names = append(names, f)
		}
		slices.Sort(names)
		c.keyNames = names[:0]
	}
	for _, f := range names {
		b = append(b, 0)
		b = append(b, f...)
		if sens.is(f) {
			h, _ := sens.hashValue(f, set[f])
			b = binary.BigEndian.AppendUint64(b, h)
			continue
		}
		b, _ = concord.AppendCanonical(b, set[f])
	}
	for _, x := range st.Units { // sorted by name
		b = append(b, 0)
		b = append(b, x.Name...)
		b, _ = x.Value.Version.AppendBinary(b)
	}
	c.keyBuf = b
	return strconv.FormatUint(concord.HashBytes(b), 36)
}
