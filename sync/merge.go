package sync

// This file is the merge: steps 2 to 4 of a cycle (detect, merge, gate) for
// one record. It is pure with respect to I/O: it reads and changes a
// state.Record, consults the resolver and gates, and collects audit events.
//
// The rules, per unit (a field, or a declared field group):
//
//  1. Detect. A system S reports the unit's fields. If S held the canonical
//     version (it is in sync), the report is an edit exactly when a value
//     differs from the canonical one. Otherwise it is an edit when its hash
//     differs from the hash S last reported: S still holding the older value
//     the engine has not yet overwritten is no edit. An edit's version is
//     the version S held, incremented at S. Fields of a group that S did not
//     report keep their canonical values: a report never deletes by
//     omission.
//  2. Merge. Among the canonical version and the edits, keep the maximal
//     ones (those no other descends from). One maximal version wins as is
//     (fast-forward). Several are pairwise concurrent: a real conflict. If
//     their values are all equal the first candidate in the deterministic
//     candidate order wins ("equal-values"); otherwise the Resolver decides,
//     or the unit is held for a person. The new canonical version is the
//     join of every candidate, so it supersedes all of them.
//  3. Gate. A change of canonical value passes every gate; a refusal keeps
//     the canonical value with the join of the versions incremented at the
//     engine's actor (so that it supersedes the refused edit and is written
//     back to its system); a hold keeps both for a person.
//
//  4. Echo. A value the engine attempted to write to S (state.View.Sent,
//     kept until confirmed or superseded, or until S refuses the write; a
//     refusal of a write that repeats an earlier one whose outcome is
//     unknown keeps the earlier one) that S reports is the engine's
//     write, never S's edit. S back at the value it held before such a
//     write is no edit either, unless S's field times say the field
//     changed since the engine last saw the record, after the value the
//     write brought was made and, for a write of the canonical value, not
//     before the engine decided that value (revertedWrite): then it was
//     set back after the write, an edit. A pushed state (a webhook) of a
//     record the engine does not know in S is not read while its create
//     there awaits confirmation: it may predate the create, and existence
//     names no value that would tell; the change feed's current state
//     decides.
//  5. Settle. A person's settlement (holds.go) is a merge decision with rule
//     "person": the chosen candidate wins with the join of every
//     candidate's version, so it supersedes them all and is written back to
//     every system, the one whose change was rejected included.
//  6. Push. A system is behind when the version it holds is not the
//     canonical one (state.Record.Behind); the patch carries only the
//     fields whose values differ in its own shape from those it last
//     reported, unless a write to it awaits confirmation (it may have been
//     applied since): then every field of the units it lacks (push.go).
//
// The record's existence is the unit resolve.RecordUnit. A delete is an edit
// of it, compared by record-level context (see merger.context): a delete
// that did not see every canonical edit, or every held one (a conflict or a
// change waiting for a person), or an edit in a system that did not see
// the delete, is a conflict on that unit; so is a delete in a system
// that lacked the canonical version of a unit it carries, whatever the
// context says (see merger.missedValue). A system reporting the delete
// of a record the engine never saw there deleted a copy the engine cannot
// name (its own create whose outcome it never learned, one it knew before
// a restore, one the system made alone): that delete saw no edit. A record
// created again in a system that holds it deleted is new: its edits descend
// from the delete the system holds (see addEdit), which had seen what it
// superseded (a decided delete holds the join of its competitors), so the
// deleted record's values, an edit the delete beat included, are nobody's
// to compete with; an edit the delete never saw still competes.

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
)

// Rules recorded by the merge itself, beside those of the resolvers and
// gates (package resolve).
const (
	RuleFastForward resolve.Rule = "fast-forward" // one edit descends from every other version
	RuleEqualValues resolve.Rule = "equal-values" // concurrent edits agreed on the value
	RuleUnresolved  resolve.Rule = "unresolved"   // no resolver decided: held for a person
	RulePerson      resolve.Rule = "person"       // a person settled a hold
	RuleRecreated   resolve.Rule = "re-created"   // a deleted record was created again without this unit
)

// observation is one record as one system reported it, in canonical shape.
type observation struct {
	sys    *system
	raw    concord.Record // as read, kept for a retry if the merge fails
	rec    concord.Record // canonical shape, after inbound transforms
	native []fieldHash    // hashes of the fields in the system's shape, as raw.Fields, sorted by field
	// nativeIsRec reports that native has exactly the fields of rec
	// (no inbound transform, no cleansing): rec's fields in name order.
	nativeIsRec bool
	full        bool // a whole record: see cycle.observe
	// pushed: the state came through Engine.Ingest (a webhook), which may
	// deliver it late (see remerge) and in part: never full.
	pushed bool
	// letter: the record came from a merge dead letter (remerge), not
	// from this cycle's reads: an earlier report, kept while its merge
	// failed. letterID is that dead letter's number.
	letter   bool
	letterID uint64
	// seenAt is the system's time of the state the engine knew before
	// this one (view.Modified before detect moved it on).
	seenAt time.Time
	// corrected lists the units whose values a cleansing suggestion
	// replaced: the system still holds the refused value, and is written
	// the correction (cycle.merge).
	corrected []string
	// deferred: rec is not made yet (it holds the key, tag and time
	// only). The report is most likely the echo of the engine's own
	// write (cycle.prepare), which load recognises from native alone;
	// cycle.canonical makes rec if the record is merged after all.
	deferred bool
}

// fieldHash is the hash of one field's value.
type fieldHash struct {
	field string
	hash  uint64
	// value is the field's value as the system reports it, where the
	// hash is an observation's (cycle.prepare): detect reads it there
	// instead of looking it up again.
	value concord.Value
}

// sameNative reports whether hs (sorted by field, as an observation's
// are) are exactly the hashes of t: the same fields, each with the same
// hash.
func sameNative(hs []fieldHash, t state.Table[uint64]) bool {
	if len(hs) != len(t) {
		return false
	}
	for i, x := range hs {
		if t[i].Name != x.field || t[i].Value != x.hash {
			return false
		}
	}
	return true
}

// learnNative stores the hashes hs (sorted by field) in view, and reports
// whether that changed it.
func learnNative(view *state.View, hs []fieldHash) bool {
	if len(view.Native) == 0 {
		if len(hs) == 0 {
			return false
		}
		t := make(state.Table[uint64], len(hs))
		for i, x := range hs {
			t[i] = state.Entry[uint64]{Name: x.field, Value: x.hash}
		}
		view.Native = t
		return true
	}
	changed := false
	j := 0 // both sorted: x's entry, if any, is at j or after it
	for _, x := range hs {
		t := view.Native
		for j < len(t) && t[j].Name < x.field {
			j++
		}
		if j < len(t) && t[j].Name == x.field {
			if t[j].Value != x.hash {
				t[j].Value = x.hash
				changed = true
			}
			j++
			continue
		}
		view.Native.Set(x.field, x.hash) // at j
		j++
		changed = true
	}
	return changed
}

// edit is one unit changed in one system.
type edit struct {
	unit    string
	obs     *observation
	deleted bool // an existence edit: the record is deleted in obs.sys
	version concord.Version
	// fromPrev: the system held the previous canonical value, so fields
	// of a group it did not report are taken from that, not from the
	// current canonical value.
	fromPrev bool
	vals     map[string]concord.Value // see editValues
	// heldBefore is the version the system held before the edit.
	heldBefore concord.Version
	// fresh: the system deleted the record and created it again; fields
	// of a group it does not report are empty, not taken from before.
	fresh bool
	// blind: a delete made in a system that lacked a canonical value
	// (see merger.missedValue); it never supersedes the canonical record.
	blind bool
}

// candidate is a competitor in a unit's merge: the canonical value or an
// edit.
type candidate struct {
	canonical bool
	e         *edit              // an edit of this cycle, or
	held      *resolve.Candidate // a competitor kept by an earlier hold
	system    concord.SystemID
	version   concord.Version
	blind     bool // see edit.blind
}

// by is who made the candidate's change, when its system said.
func (c candidate) by() string {
	switch {
	case c.e != nil:
		return c.e.obs.raw.By
	case c.held != nil:
		return c.held.By
	}
	return ""
}

// merger merges records. It is used by one goroutine at a time and keeps
// scratch space between records so that the common paths do not allocate.
type merger struct {
	layout   *layout
	systems  []*system
	resolver resolve.Resolver
	gates    []resolve.Gate
	// anomalies learns every change that becomes canonical (nil: none).
	anomalies *anomalyGate
	// sens hashes sensitive units with a key (nil: none is sensitive).
	sens   *sensitivity
	engine concord.Actor // the engine's own actor, for refusals
	now    func() time.Time
	cycle  uint64

	// events are the record's audit events from floor on (emit joins
	// alike ones as they are made); unitsLeft is how many units the
	// record's merge has yet to decide, a size hint for joined events.
	events    []audit.Event
	floor     int
	unitsLeft int
	edits     []edit
	cands     []candidate
	max       []candidate
	units     []string
	buf       []byte

	recordCtx   concord.Version            // see mergeRecord
	dots        map[*observation]obsDot    // each observation's dot; see editVersion
	unitSlab    []state.Unit               // the rest of newUnit's slab
	prevSlab    state.Table[concord.Value] // the rest of prevValues' slab
	prevStructs []state.Prev               // the rest of prevOf's slab
	obs         []*observation             // the record's observations being merged
	// current caches each unit's canonical values for the record being
	// merged: the audit events, the history and the conflicts share one
	// map (none modifies it) instead of building it again each time.
	current map[string]map[string]concord.Value
	// nullHashes caches, per unit, the hash of the unit with every field
	// null (heldNothing): a system that leaves nulls out reports them
	// missing in every read.
	nullHashes map[string]uint64
}

// currentValues returns the canonical values of unit u of st.
func (m *merger) currentValues(st *state.Record, u string) map[string]concord.Value {
	if v, ok := m.current[u]; ok {
		return v
	}
	v := unitValues(m.layout.fieldsOf(u), st.Fields)
	if m.current == nil {
		m.current = map[string]map[string]concord.Value{}
	}
	m.current[u] = v
	return v
}

// mergeRecord applies the observations (at most one per system) to st.
func (m *merger) mergeRecord(ctx context.Context, st *state.Record, obs []*observation) error {
	for _, s := range m.systems {
		if st.Systems[s.id] == nil {
			n := len(st.Units) // what the view will hold: a unit per field
			for _, o := range obs {
				n = max(n, len(o.rec.Fields)+1)
			}
			st.Systems[s.id] = &state.View{Units: make(state.Table[state.Copy], 0, n)} // Native: see learnNative
			st.Touched = true
		}
	}
	m.edits = m.edits[:0]
	m.obs = obs
	clear(m.current)
	clear(m.dots)
	m.floor = len(m.events)
	for _, o := range obs {
		if err := m.detect(st, o); err != nil {
			return err
		}
	}
	if len(m.edits) == 0 {
		return nil
	}
	st.Touched = true
	if err := m.claimExistence(st); err != nil {
		return err
	}
	m.observeEdits(st)
	// The record-level context of the canonical state, before this
	// cycle's edits: what a delete or an existence claim competes with.
	m.recordCtx = concord.Version{}
	if ex := st.Existence(); ex != nil {
		m.recordCtx = ex.Version
		if !st.Deleted {
			for _, ux := range st.Units {
				x := ux.Value
				m.recordCtx = m.recordCtx.Join(x.Version)
				if x.Hold != nil && ux.Name != resolve.RecordUnit {
					// A held edit is an edit of the record too: a
					// delete that did not see it competes with it,
					// as it would had the edit gone through, or come
					// in the delete's own cycle (claimExistence).
					// (The existence's own hold competes as its
					// candidates: see mergeUnit.)
					for i := range x.Hold.Candidates {
						m.recordCtx = m.recordCtx.Join(x.Hold.Candidates[i].Version)
					}
				}
			}
		}
	}
	// Merge unit by unit, in name order, the record's existence last: a
	// delete is judged against every field edit of the same cycle.
	slices.SortFunc(m.edits, func(a, b edit) int {
		if ar, br := a.unit == resolve.RecordUnit, b.unit == resolve.RecordUnit; ar != br {
			if ar {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(a.unit, b.unit); c != 0 {
			return c
		}
		return cmp.Compare(a.obs.sys.id, b.obs.sys.id)
	})
	units := 0
	for i := range m.edits {
		if i == 0 || m.edits[i].unit != m.edits[i-1].unit {
			units++
		}
	}
	for i := 0; i < len(m.edits); {
		j := i + 1
		for j < len(m.edits) && m.edits[j].unit == m.edits[i].unit {
			j++
		}
		units--
		m.unitsLeft = units
		if err := m.mergeUnit(ctx, st, m.edits[i:j]); err != nil {
			return err
		}
		i = j
	}
	m.clipJoined()
	return nil
}

// clipJoined clips the lists of the record's joined events (see emit):
// appending to one must not run into the other.
func (m *merger) clipJoined() {
	for i := m.floor; i < len(m.events); i++ {
		if ev := &m.events[i]; len(ev.Units) > 0 {
			ev.Units, ev.Fields = slices.Clip(ev.Units), slices.Clip(ev.Fields)
		}
	}
}

// observeEdits audits the record's edits, by system and then unit (they
// were observed in the order of the record's fields, a map), so that the
// same reads always give the same trail: a system's edits made with one
// version become one event (see emit).
func (m *merger) observeEdits(st *state.Record) {
	slices.SortFunc(m.edits, func(a, b edit) int {
		if c := cmp.Compare(a.obs.sys.id, b.obs.sys.id); c != 0 {
			return c
		}
		return cmp.Compare(a.unit, b.unit)
	})
	end := 0 // where the edits of the current one's system end
	for i := range m.edits {
		e := &m.edits[i]
		if i >= end {
			for end = i + 1; end < len(m.edits) && m.edits[end].obs == e.obs; end++ {
			}
		}
		ev := audit.Event{Kind: audit.EditObserved, Cycle: m.cycle, Key: st.Key, Unit: e.unit, System: e.obs.sys.id,
			Version: e.version, Deleted: e.deleted, By: e.obs.raw.By}
		ev.Modified, _ = m.editTime(e.obs, e.unit)
		if e.unit != resolve.RecordUnit {
			ev.Fields = m.layout.fieldsOf(e.unit)
			ev.From = m.currentValues(st, e.unit)
			m.emit(&ev, end-i-1, st, e)
			continue
		}
		m.emit(&ev, end-i-1, nil, nil)
	}
}

// emit adds ev (its time set now) to the record's events, or joins it to
// the last of them when the two say the same of different units (see
// alike): that event then lists every unit (audit.Event.Units), and its
// Fields, From and To cover them all. A record's first sync is a handful
// of events, not two per field, and no event is built only to be joined
// later. Events about the record's existence stay alone. more is how many
// more units may join: a size hint.
//
// If e is not nil, ev's To is the values of the edit e of st, taken from
// e only as far as needed: an event about a unit that is one field of its
// own name, which e reports, joins with that value alone, and the map of
// e's values (editValues) is built only if ev stays an event of its own.
// A first sync then builds no map per field.
func (m *merger) emit(ev *audit.Event, more int, st *state.Record, e *edit) {
	if n := len(m.events); n > m.floor && alike(&m.events[n-1], ev) {
		if e != nil {
			if to := oneValue(e, ev.Fields); to.ok {
				join(&m.events[n-1], ev, more, to)
				return
			}
			ev.To = m.editValues(st, e)
		}
		join(&m.events[n-1], ev, more, one{})
		return
	}
	if e != nil {
		ev.To = m.editValues(st, e)
	}
	ev.Time = m.now()
	m.events = append(m.events, *ev)
}

// one is a unit's values when they are one field's: To given without a
// map.
type one struct {
	field string
	value concord.Value
	ok    bool
}

// oneValue returns the values of the edit e of a unit whose fields are
// fields without a map, if they can be: the unit is one field of its own
// name, which e reports (editValues would hold just that), and e's map is
// not built yet (else that map is used).
func oneValue(e *edit, fields []string) one {
	if e.vals != nil || len(fields) != 1 || fields[0] != e.unit {
		return one{}
	}
	v, ok := e.obs.rec.Fields[e.unit]
	return one{e.unit, v, ok}
}

// join adds ev's unit, fields and values to the event into; ev's To is
// to's one value if to.ok. The first join gives into lists and maps of its
// own: a single event's may be shared with the merge (and a unit's
// previous values), and are never modified.
func join(into, ev *audit.Event, more int, to one) {
	nTo := len(ev.To)
	if to.ok {
		nTo = 1
	}
	if len(into.Units) == 0 {
		units := make([]string, 1, 2+more)
		units[0] = into.Unit
		fields := units
		if !fieldUnit(into) {
			fields = append(make([]string, 0, len(into.Fields)+len(ev.Fields)*(1+more)), into.Fields...)
		}
		into.Unit, into.Units, into.Fields = "", units, fields
		into.From = ownValues(into.From, len(ev.From), more)
		into.To = ownValues(into.To, nTo, more)
	}
	aliased := len(into.Fields) == len(into.Units) && &into.Fields[0] == &into.Units[0] // Fields is Units
	switch {
	case aliased && fieldUnit(ev):
		into.Units = append(into.Units, ev.Unit)
		into.Fields = into.Units
	case aliased:
		fields := make([]string, 0, len(into.Units)+len(ev.Fields)*(1+more))
		into.Fields = append(append(fields, into.Units...), ev.Fields...)
		into.Units = append(into.Units, ev.Unit)
	default:
		into.Units = append(into.Units, ev.Unit)
		into.Fields = append(into.Fields, ev.Fields...)
	}
	if len(ev.From) > 0 {
		if into.From == nil {
			into.From = make(map[string]concord.Value, len(ev.From)*(1+more))
		}
		maps.Copy(into.From, ev.From)
	}
	if nTo > 0 && into.To == nil {
		into.To = make(map[string]concord.Value, nTo*(1+more))
	}
	if to.ok {
		into.To[to.field] = to.value
	} else {
		maps.Copy(into.To, ev.To)
	}
}

// fieldUnit reports whether ev is about a unit that is one field of its
// own name.
func fieldUnit(ev *audit.Event) bool {
	return len(ev.Fields) == 1 && ev.Fields[0] == ev.Unit
}

// ownValues returns a copy of vals with room for n and more values like
// them, or nil if vals is empty: the values of a joined event are its own.
func ownValues(vals map[string]concord.Value, n, more int) map[string]concord.Value {
	if len(vals) == 0 {
		return nil
	}
	out := make(map[string]concord.Value, len(vals)+n+n*more)
	maps.Copy(out, vals)
	return out
}

// alike reports whether a and b can be one event: both edits or both
// decisions about one field or group of the same record, with everything
// but the unit and its values the same.
func alike(a, b *audit.Event) bool {
	if a.Kind != b.Kind || (a.Kind != audit.EditObserved && a.Kind != audit.MergeDecided) {
		return false
	}
	if a.Unit == resolve.RecordUnit || b.Unit == resolve.RecordUnit || a.Deleted || b.Deleted {
		return false
	}
	return a.Key == b.Key && a.System == b.System && a.Cycle == b.Cycle && a.Rule == b.Rule && a.Reason == b.Reason &&
		a.By == b.By && a.Modified.Equal(b.Modified) && a.Error == "" && b.Error == "" && a.ErrorClass == "" && b.ErrorClass == "" &&
		len(a.Candidates) == 0 && len(b.Candidates) == 0 && a.Version.Compare(b.Version) == concord.Equal
}

// detect records what o says about st: view metadata, and one edit per unit
// that changed in o's system.
func (m *merger) detect(st *state.Record, o *observation) error {
	view := st.Systems[o.sys.id]
	if !o.full && (o.rec.Tag != view.Tag || o.rec.Tag == "") && !o.rec.Modified.IsZero() && !view.Modified.IsZero() &&
		(!o.rec.Modified.After(view.Modified) || m.aheadOfClock(o.rec.Modified)) {
		// A pushed state (a webhook) no newer than the state the engine
		// knows, and not that state (or, from a system without tags,
		// not known to be): it cannot tell which came first, so it
		// leaves it to the change feed, which reads the current state.
		// So is one whose time no clock has reached yet (a clock that
		// ran ahead): newer by that time says nothing, and a late
		// webhook of it would set back what came since.
		return nil
	}
	if !o.full && !o.rec.Deleted && (!view.Seen || view.Deleted) && createPending(view) {
		// A pushed state of a record the engine does not know there,
		// while its own create of it awaits confirmation: a webhook may
		// carry a state from before that create (delivered late), which
		// says nothing of its outcome, and existence names no value to
		// tell the two apart. Taken as the create's echo, it would make
		// the engine believe the system holds every edit the create
		// carried, and a delete the system made before the create
		// would then win over edits it never saw. The change feed reads
		// the current state, made after the create if it was applied:
		// leave it to the feed.
		return nil
	}
	if o.pushed && !o.rec.Deleted && deleteDecided(st) && (!view.Seen || view.Deleted) {
		// A pushed state that creates again a record deleted
		// everywhere: a webhook may carry part of the record (Ingest
		// takes partial reports), and a record created again does not
		// keep the deleted record's values for the fields it lacks
		// (rule re-created). Taken from a part, that would erase the
		// fields the webhook left out, in the very system that has
		// them. The change feed reads the whole record: leave it to
		// the feed.
		return nil
	}
	if !o.rec.Modified.IsZero() && o.rec.Modified.Before(view.Modified) && (!o.full || !m.aheadOfClock(view.Modified)) {
		// An older state than the engine has already seen from this
		// system (a webhook redelivered late, a feed lagging behind
		// one): not an edit. Unless the time the engine knows is one
		// no clock has reached yet (a record modified "in 2106" by a
		// clock that ran ahead once): a whole report is then the
		// system's current state, whatever its time says. Before, every
		// later change of such a record was ignored until that time:
		// its edits never read, the writes to it refused for ever
		// (their IfMatch stale).
		return nil
	}
	if o.rec.Tag != "" && o.rec.Tag == view.Tag && view.Seen && o.rec.Deleted == view.Deleted && !view.Partial {
		// The same version of the record the engine last read or
		// wrote (an echo, or a feed repeating itself): nothing changed.
		// What the system reports of the canonical values it holds is
		// its own notation of them ("LEEDS" for "Leeds"): remember it,
		// so that it stays an echo when another field changes later.
		if o.full {
			m.forgetMissing(st, view, o)
		}
		return m.learnNotation(st, view, o)
	}
	o.seenAt = view.Modified
	// A report that may be part of the record (a webhook) tells the state
	// at its tag in part: the change feed's report of the same state is
	// compared field by field then, not taken for that state seen
	// already, or the fields it left out would never be read; and no
	// write goes over it before a cycle reads the system to the end
	// (cycle.unguarded). Its time is kept (an older pushed state is left
	// to the feed), unless it left out a unit written there and not yet
	// confirmed: a field set back after that write, at this time, must
	// still read as changed since the state the engine knew
	// (revertedWrite).
	partial := !o.full && !o.rec.Deleted
	modified := o.rec.Modified
	if partial && m.leavesOutSent(view, o) {
		modified = view.Modified
	}
	if view.Tag != o.rec.Tag || !view.Modified.Equal(modified) || view.Partial != partial {
		view.Tag, view.Modified, view.Partial = o.rec.Tag, modified, partial
		st.Touched = true
	}
	if learnNative(view, o.native) {
		st.Touched = true
	}
	if o.rec.Deleted {
		if len(view.Native) > 0 || !view.Seen || !view.Deleted {
			st.Touched = true // every branch below changes the view
		}
		view.Native = nil
		if view.Seen && !view.Deleted {
			if w, ok := view.Echo(resolve.RecordUnit, existHash(false)); ok {
				// The engine's own delete, whose reply was lost: as
				// if it had been confirmed (see cycle.synced).
				view.Deleted = true
				view.Units.Set(resolve.RecordUnit, w)
				view.ForgetValues()
				return nil
			}
		}
		if view.Deleted {
			// The system still reports the delete we know (or the
			// absence noted when the record, deleted, never reached
			// it).
			view.Seen = true
			return nil
		}
		// The record is gone from the system: whatever it reports
		// later is a new record, never an echo of an earlier write nor
		// a value it held before.
		//
		// That is so even if the engine never saw the record there: the
		// system had it, and the engine cannot tell which copy it
		// deleted: the engine's own create whose reply was lost, a copy
		// the engine knew before its store was restored from an older
		// backup, or one the system made alone. The delete is an edit
		// like any other, made (as far as the engine knows) without
		// seeing any of the record's edits: it competes with the
		// canonical record, now or once one is read (a conflict,
		// decided by policy), and is never dropped for the record to
		// be created there again.
		blind := m.missedValue(st, view) // before the view forgets what it was sent
		view.ForgetValues()
		if err := m.addEdit(st, o, resolve.RecordUnit, true); err != nil {
			return err
		}
		m.edits[len(m.edits)-1].blind = blind
		return nil
	}
	m.units = m.units[:0]
	if o.nativeIsRec {
		// The fields in name order, as st.Units has them: found by one
		// walk of it instead of a search each.
		k := 0
		for _, x := range o.native {
			f := x.field
			for k < len(st.Units) && st.Units[k].Name < f {
				k++
			}
			if err := m.detectField(st, view, o, f, x.value, k); err != nil {
				return err
			}
		}
	} else {
		for f, v := range o.rec.Fields {
			if err := m.detectField(st, view, o, f, v, -1); err != nil {
				return err
			}
		}
	}
	if o.full {
		m.forgetMissing(st, view, o)
	}
	// Existence: the system has the record. That is an edit if the engine
	// thought it absent there, unless the engine created it there itself
	// (a create whose reply was lost, or whose cycle did not commit).
	if st.Existence() == nil || !view.Seen || view.Deleted {
		if w, ok := view.Echo(resolve.RecordUnit, existHash(true)); ok {
			view.Seen, view.Deleted = true, false
			view.Units.Set(resolve.RecordUnit, w)
			st.Touched = true
			return nil
		}
		return m.addEdit(st, o, resolve.RecordUnit, false)
	}
	return nil
}

// forgetMissing notes what a whole record says the system no longer holds:
// a unit it held with a value and no longer reports any field of (a record
// deleted and created again between two reads, a column dropped) is written
// to it again. Absence is not an edit: a report never deletes by omission.
func (m *merger) forgetMissing(st *state.Record, view *state.View, o *observation) {
	k := 0 // o.native has every field of o.raw, sorted, as view.Native is
	view.Native.DeleteFunc(func(f string, _ uint64) bool {
		for k < len(o.native) && o.native[k].field < f {
			k++
		}
		if k < len(o.native) && o.native[k].field == f {
			return false
		}
		st.Touched = true
		return true
	})
	k = 0 // the same, for the single-field units (in name order) of rec's fields
	view.Units.DeleteFunc(func(name string, h state.Copy) bool {
		if name == resolve.RecordUnit || h.Hash == emptyUnitHash {
			return false
		}
		var reported bool
		if o.nativeIsRec && !m.layout.isGroup(name) { // a unit of one field, name
			for k < len(o.native) && o.native[k].field < name {
				k++
			}
			reported = k < len(o.native) && o.native[k].field == name
		} else {
			reported = slices.ContainsFunc(m.layout.fieldsOf(name), func(f string) bool { _, ok := o.rec.Fields[f]; return ok })
		}
		if !reported && m.heldNothing(name, h) {
			// A null not reported: the system holds no value of it,
			// which is what a null is (a system that stores a null as
			// no field reports every null so).
			reported = true
		}
		if !reported {
			st.Touched = true
		}
		return !reported
	})
}

// heldNothing reports whether h is a copy of unit u whose every field is
// null. A system that stores a null as no field at all (a document store,
// a JSON API that leaves nulls out) reports such a unit by not reporting
// it, and holds it still: taken for gone, the unit was written to it again
// in every cycle, for ever, and so was one to a system whose write replies
// carry no tag (nothing names the state a write left). A field the system
// does not report and a null are the same: no value.
func (m *merger) heldNothing(u string, h state.Copy) bool {
	nh, ok := m.nullHashes[u]
	if !ok {
		fields := m.layout.fieldsOf(u)
		nulls := make(map[string]concord.Value, len(fields))
		for _, f := range fields {
			nulls[f] = nil
		}
		var err error
		if nh, err = m.hashUnit(fields, nulls); err != nil {
			return false // a null always encodes: not reached
		}
		if m.nullHashes == nil {
			m.nullHashes = map[string]uint64{}
		}
		m.nullHashes[u] = nh
	}
	return nh == h.Hash
}

// emptyUnitHash is the hash of a unit none of whose fields is reported: a
// system that does not carry the unit at all holds it so.
var emptyUnitHash = concord.HashBytes(nil)

// learnNotation records, for each unit the system holds at the canonical
// version, the hash of the values as the system reports them.
func (m *merger) learnNotation(st *state.Record, view *state.View, o *observation) error {
	if learnNative(view, o.native) {
		st.Touched = true
	}
	for _, ux := range st.Units {
		name, cu := ux.Name, ux.Value
		held, ok := view.Units.Get(name)
		if name == resolve.RecordUnit || !ok || held.Version.Compare(cu.Version) != concord.Equal {
			continue
		}
		fields := m.layout.fieldsOf(name)
		if !slices.ContainsFunc(fields, func(f string) bool { _, ok := o.rec.Fields[f]; return ok }) {
			continue
		}
		h, err := m.hashUnit(fields, o.rec.Fields)
		if err != nil {
			return err
		}
		if held.Hash != h {
			held.Hash = h
			view.Units.Set(name, held)
			st.Touched = true
		}
	}
	return nil
}

// claimExistence adds, when the record is deleted, being deleted or has a
// delete held on its existence, a claim that it exists for every system
// that edited its fields without deleting it: an edit made without
// knowledge of a delete competes with the delete.
func (m *merger) claimExistence(st *state.Record) error {
	deleting := st.Deleted
	if ex := st.Existence(); ex != nil && ex.Hold != nil {
		// A delete held for a person: an edit made since, without
		// seeing it, joins the competition (the person then settles
		// what they see: the hold's revision changes).
		deleting = deleting || slices.ContainsFunc(ex.Hold.Candidates, func(c resolve.Candidate) bool { return c.Deleted })
	}
	for _, e := range m.edits {
		deleting = deleting || e.deleted
	}
	if !deleting {
		return nil
	}
	n := len(m.edits)
	for i := range n {
		o := m.edits[i].obs
		if o.rec.Deleted || slices.ContainsFunc(m.edits[:n], func(e edit) bool { return e.obs == o && e.unit == resolve.RecordUnit }) ||
			slices.ContainsFunc(m.edits[n:], func(e edit) bool { return e.obs == o }) {
			continue
		}
		if o.full {
			// The system's current state: the record lives there after
			// any delete the engine wrote to it whose outcome it never
			// learned. The claim supersedes that write, as an edit of a
			// field supersedes a write of that field (detectUnit): a
			// later delete there is the system's own, not an echo.
			st.Systems[o.sys.id].Sent.Delete(resolve.RecordUnit)
		}
		if err := m.addEdit(st, o, resolve.RecordUnit, false); err != nil {
			return err
		}
	}
	return nil
}

// detectField detects the edit of the unit of field f, which o reports
// with value v; k is where st.Units has f if it does (-1: unknown).
func (m *merger) detectField(st *state.Record, view *state.View, o *observation, f string, v concord.Value, k int) error {
	u := m.layout.unitOf(f)
	if u == f && m.inSyncAndEqual(st, view, f, v, k) {
		return nil // the common case, without the general machinery
	}
	if u != f {
		if slices.Contains(m.units, u) {
			return nil
		}
		m.units = append(m.units, u)
	}
	return m.detectUnit(st, view, o, u)
}

// inSyncAndEqual reports whether the system held the canonical version of
// the single-field unit f and still reports its canonical value. i is
// where st.Units has f if it does (-1: unknown).
func (m *merger) inSyncAndEqual(st *state.Record, view *state.View, f string, v concord.Value, i int) bool {
	if i < 0 || i >= len(st.Units) || st.Units[i].Name != f {
		var ok bool
		if i, ok = st.Units.Index(f); !ok {
			return false
		}
	}
	cu := st.Units[i].Value
	held, known := view.Units.At(i, f) // a view of every unit has f at i too
	if !known || held.Hash == noValue || held.Version.Compare(cu.Version) != concord.Equal {
		return false
	}
	c, ok := st.Fields[f]
	return ok && equalReported(v, c)
}

// equalReported is [concord.EqualValues] for a value r that a system
// reported (its record passed Validate, so a string in it is valid UTF-8):
// a string equal to it is valid too, and is not checked again.
func equalReported(r, c concord.Value) bool {
	if x, ok := r.(string); ok {
		if y, ok := c.(string); ok {
			return x == y
		}
	}
	return concord.EqualValues(r, c)
}

// detectUnit compares the unit u as o reports it with what the engine knows
// and adds an edit if it changed.
func (m *merger) detectUnit(st *state.Record, view *state.View, o *observation, u string) error {
	fields := m.layout.fieldsOf(u)
	cu := st.Units.Value(u)
	held, known := view.Units.Get(u)
	if known && cu != nil && held.Hash != noValue && held.Version.Compare(cu.Version) == concord.Equal &&
		sameReported(fields, o.rec.Fields, st.Fields) && (!o.full || m.reportsAll(st, o, u)) {
		// In sync: the system holds the canonical values. (A whole
		// record without a field of the group that has a value lost
		// it: a record deleted and created again with part of the
		// group. That is told by the hashes below.)
		return nil
	}
	h, err := m.hashUnit(fields, o.rec.Fields)
	if err != nil {
		return err
	}
	if known && h == held.Hash {
		if w, ok := m.revertedWrite(st, view, o, u); ok {
			// The value it held before a write whose reply the
			// engine never got, but changed since the engine last saw
			// it, by the system's own field times: the write was
			// applied and someone set the old value back. That is an
			// edit made after the write.
			view.Units.Set(u, state.Copy{Hash: held.Hash, Version: w.Version})
			view.Sent.Delete(u)
			st.Touched = true
			return m.addEdit(st, o, u, false)
		}
		// Still what it held (not yet overwritten), or the system's
		// own notation of the canonical value it holds. Without field
		// times a write that was applied and then undone looks the
		// same as one that was never applied; the engine assumes the
		// latter and writes again.
		return nil
	}
	if w, ok := view.Echo(u, h); ok {
		// A write of the engine's that the system applied although
		// its reply was lost (or its cycle did not commit): the system
		// holds that version, and no edit of its own.
		view.Units.Set(u, w)
		st.Touched = true
		return nil
	}
	// Otherwise an edit, even at first sight of a unit whose value
	// matches the canonical one: the two histories are independent, and
	// their agreement is settled as a merge ("equal-values") whatever
	// order the systems are read in. It supersedes every write the
	// engine attempted before it.
	view.Sent.Delete(u)
	st.Touched = true
	return m.addEdit(st, o, u, false)
}

// maxClockLead is how far ahead of the engine's clock a system's time may
// be and still be believed: a time further ahead is a clock that ran ahead
// (aheadOfClock).
const maxClockLead = time.Hour

// aheadOfClock reports whether t, a system's time, lies more than
// maxClockLead after the engine's clock: a time no clock has reached yet.
func (m *merger) aheadOfClock(t time.Time) bool { return t.After(m.now().Add(maxClockLead)) }

// leavesOutSent reports whether o, a report that may be part of the
// record, lacks a field of a unit the engine wrote to its system without
// seeing the write confirmed.
func (m *merger) leavesOutSent(view *state.View, o *observation) bool {
	for _, e := range view.Sent {
		for _, f := range m.layout.fieldsOf(e.Name) {
			if _, ok := o.rec.Fields[f]; !ok {
				return true
			}
		}
	}
	return false
}

// revertedWrite returns the newest write of unit u the engine attempted to
// o's system without seeing it confirmed, when o's field times say one of
// u's fields changed after the state the engine knew, after the canonical
// value of u was made (the system's time of it, Unit.Modified; field times
// from different systems' clocks are compared, as last-writer-wins does)
// and, when that write carried the canonical value, not before the engine
// decided it (Unit.Changed, the engine's clock): the system then holds
// the value it had before that write because it was set back, not because
// the write was never applied.
func (m *merger) revertedWrite(st *state.Record, view *state.View, o *observation, u string) (state.Copy, bool) {
	sent := view.Sent.Value(u)
	if len(sent) == 0 || o.seenAt.IsZero() || len(o.rec.FieldModified) == 0 {
		return state.Copy{}, false
	}
	// Nor can it be set back before the write was attempted, which is no
	// earlier than the engine decided the value the write carried: the
	// canonical value's Unit.Changed, when the newest write carried that
	// version. The system's time of the value (Unit.Modified) is no bound
	// of that: a value made in a system the engine could not read for a
	// while (its read failing, or the system out of the configuration)
	// reaches the engine late, and a change made in between, before the
	// engine had the value — its own write of the value before, forgotten
	// when its store was restored from an older copy (simulation seed
	// 110,038) — is later than Modified and was made without knowledge of
	// the write all the same. The bound is taken to the second: a system
	// that keeps its times to the second (many do) stamps a setting back
	// made in the very second the engine decided the value with that
	// second's start, before Changed.
	var decided time.Time
	if cu := st.Units.Value(u); cu != nil && sent[len(sent)-1].Version.Compare(cu.Version) == concord.Equal {
		decided = cu.Changed.Truncate(time.Second)
	}
	// Set back after the write, so after the value the write brought was
	// made (the canonical value's system time): a change from before that
	// (one the engine made and forgot when its store was restored from an
	// older copy, say) was made without knowledge of the write.
	after := o.seenAt
	if cu := st.Units.Value(u); cu != nil && cu.Modified.After(after) {
		// (A canonical value made at a time no clock has reached puts
		// every field time before it: no setting back is told, and
		// the write is taken for never applied, as without field
		// times. The state the engine knew may be older than its own
		// writes there, whose replies need not carry a time, so it is
		// no bound alone.)
		after = cu.Modified
	}
	for _, f := range m.layout.fieldsOf(u) {
		// A field time no clock has reached yet (a clock that ran
		// ahead when the value was made) says nothing of its order
		// with the write.
		if t, ok := o.rec.FieldModified[f]; ok && t.After(after) && !t.Before(decided) && !m.aheadOfClock(t) {
			return sent[len(sent)-1], true
		}
	}
	return state.Copy{}, false
}

// addEdit records an edit of unit u by o's system, and what that system now
// holds.
func (m *merger) addEdit(st *state.Record, o *observation, u string, deleted bool) error {
	view := st.Systems[o.sys.id]
	held := view.Units.Value(u)
	cu := st.Units.Value(u)
	fromPrev := cu != nil && !held.Version.IsZero() && held.Version.Compare(cu.Version) != concord.Equal &&
		held.Version.Compare(cu.PrevVersion()) == concord.Equal
	base := held.Version
	if u == resolve.RecordUnit {
		// An existence edit (a delete, a create, a claim) is made with
		// knowledge of everything the system held: its dot must come
		// after every dot of that system in the record's context, or a
		// delete made after the system's own field edits would compare
		// as already seen.
		for _, h := range view.Units {
			base = base.Join(h.Value.Version)
		}
	} else if view.Deleted && !o.rec.Deleted {
		// A record created again in a system that holds it deleted:
		// its values are new, made after the delete the system holds,
		// which had seen what it superseded (a decided delete holds
		// the join of every competitor, an edit it beat included).
		// Competing with those values would bring a rejected value
		// back, or hold a value no system has. Only what the system
		// knew: an edit the delete never saw (made where the record
		// was kept, or still held against the delete) still competes,
		// however edits are grouped into cycles.
		if ex, ok := view.Units.Get(resolve.RecordUnit); ok {
			base = base.Join(ex.Version)
		}
	}
	v, err := m.editVersion(st, o, base)
	if err != nil {
		return &concord.RecordError{System: o.sys.id, Key: st.Key, Field: u, Err: err}
	}
	var h uint64
	if u == resolve.RecordUnit {
		h = existHash(!deleted)
		view.Seen, view.Deleted = true, deleted
	} else if h, err = m.hashUnit(m.layout.fieldsOf(u), o.rec.Fields); err != nil {
		return err
	}
	view.Units.Set(u, state.Copy{Hash: h, Version: v})
	m.edits = append(m.edits, edit{unit: u, obs: o, deleted: deleted, version: v, fromPrev: fromPrev, heldBefore: held.Version,
		fresh: view.Deleted && !o.rec.Deleted})
	return nil // audited by observeEdits
}

// deleteDecided reports whether st is deleted by a decided delete: no hold
// on its existence. Its values are then nobody's: a system that creates the
// record again makes a new one, whose values the gates see as first values
// (apply), and which a webhook does not report in full (detect).
func deleteDecided(st *state.Record) bool {
	ex := st.Existence()
	return st.Deleted && ex != nil && ex.Hold == nil
}

// mergeUnit merges the edits of one unit (all for the same unit, sorted by
// system) into st.
func (m *merger) mergeUnit(ctx context.Context, st *state.Record, edits []edit) error {
	u := edits[0].unit
	cu := st.Units.Value(u)
	m.cands = m.cands[:0]
	if cu != nil {
		m.cands = append(m.cands, candidate{canonical: true, system: cu.Winner, version: m.context(st, u, cu.Version, nil)})
	}
	if cu != nil && cu.Hold != nil {
		// The competitors of an earlier hold still compete: an edit
		// made since must not silently supersede them.
		for i := range cu.Hold.Candidates {
			if h := &cu.Hold.Candidates[i]; !h.Canonical {
				m.cands = append(m.cands, candidate{held: h, system: h.System, version: h.Version})
			}
		}
	}
	for i := range edits {
		e := &edits[i]
		m.cands = append(m.cands, candidate{e: e, system: e.obs.sys.id, version: m.context(st, u, e.version, st.Systems[e.obs.sys.id]), blind: e.blind})
	}
	// Keep the maximal candidates.
	maximal := m.max[:0]
	for i, c := range m.cands {
		dominated := false
		for j, d := range m.cands {
			if i == j {
				continue
			}
			if d.blind && c.canonical {
				continue // see edit.blind
			}
			o := d.version.Compare(c.version)
			if o == concord.After || (o == concord.Equal && j < i) {
				dominated = true
				break
			}
		}
		if !dominated {
			maximal = append(maximal, c)
		}
	}
	m.max = maximal
	if len(maximal) == 1 {
		w := maximal[0]
		if w.canonical {
			return nil // every edit was already superseded
		}
		return m.apply(ctx, st, u, w.version, w, nil, RuleFastForward, "")
	}
	c := m.conflict(st, u, maximal)
	return m.resolveConflict(ctx, st, u, c, maximal)
}

// context returns the version a candidate competes with. For a field or
// group it is the candidate's own version. For the record's existence it is
// the record-level context: the join of every unit's version as the
// candidate knows them (the canonical ones, or those the editing system
// holds). The canonical context is taken before the cycle's edits are
// merged (for a deleted record, the context the delete was decided in), so
// the outcome does not depend on how edits are grouped into cycles. So a
// delete wins outright only if its system had seen every edit of the
// record, and a delete that missed one is a conflict with it; a delete
// whose system held part of an edit is caught by missedValue instead.
func (m *merger) context(st *state.Record, u string, v concord.Version, view *state.View) concord.Version {
	if u != resolve.RecordUnit {
		return v
	}
	if view == nil {
		return m.recordCtx
	}
	for _, h := range view.Units {
		v = v.Join(h.Value.Version)
	}
	return v
}

// missedValue reports whether the system of view lacks the canonical
// version of a unit it carries (it holds the unit, or the engine has
// written it there unconfirmed): a delete it made then did not see that
// value, whatever the join of its versions says. The join is the
// record-level context because one edit's dot covers every unit it
// changed, but a system can hold part of an edit: the engine takes its own
// create as the echo of a create it wrote there whose reply was lost
// (existence names no value that would tell them apart), while the
// create's values never arrived (a write that then failed for good). The
// dot is then in the view's existence, and without this check a delete
// there would supersede values the system never had.
func (m *merger) missedValue(st *state.Record, view *state.View) bool {
	if st.Deleted {
		return false
	}
	for _, ux := range st.Units {
		if ux.Name == resolve.RecordUnit {
			continue
		}
		held, ok := view.Units.Get(ux.Name)
		if !ok && len(view.Sent.Value(ux.Name)) == 0 {
			continue // a unit the system does not carry, as far as the engine knows
		}
		if o := ux.Value.Version.Compare(held.Version); o != concord.Before && o != concord.Equal {
			return true
		}
	}
	return false
}

// resolveConflict settles a conflict among cands (pairwise concurrent).
func (m *merger) resolveConflict(ctx context.Context, st *state.Record, u string, c resolve.Conflict, cands []candidate) error {
	joined := cands[0].version
	for _, x := range cands[1:] {
		joined = joined.Join(x.version)
	}
	if joined.Len() > concord.MaxDots {
		return &concord.RecordError{Key: st.Key, Field: u, Err: concord.ErrVersionFull}
	}
	cu := st.Units.Value(u)
	if cu != nil && cu.Hold != nil && sameCandidates(cu.Hold.Candidates, c.Candidates) {
		return nil // already held for a person: not raised twice
	}
	if allEqual(c.Candidates) {
		// Concurrent but in agreement: no conflict to report, but the
		// outcome is still recorded, at the joined version, so that
		// every system converges on it.
		return m.apply(ctx, st, u, joined, cands[0], nil, RuleEqualValues, "the concurrent edits agree")
	}
	ev := m.event(audit.ConflictDetected, st.Key, u)
	ev.Fields = c.Fields
	ev.Version = joined
	for _, x := range c.Candidates {
		ev.Candidates = append(ev.Candidates, audit.Candidate{System: x.System, Canonical: x.Canonical, Version: x.Version, Values: x.Values, Deleted: x.Deleted})
	}
	m.events = append(m.events, ev)

	d := resolve.Decision{Outcome: resolve.Undecided}
	if m.resolver != nil {
		var err error
		if d, err = m.resolver.Resolve(ctx, c); err != nil {
			return &concord.RecordError{Key: st.Key, Field: u, Err: fmt.Errorf("resolver: %w", err)}
		}
	}
	switch d.Outcome {
	case resolve.Pick:
		if d.Winner < 0 || d.Winner >= len(cands) {
			return &concord.RecordError{Key: st.Key, Field: u, Err: fmt.Errorf("resolver %q picked candidate %d of %d", d.Rule, d.Winner, len(cands))}
		}
		return m.apply(ctx, st, u, joined, cands[d.Winner], nil, d.Rule, d.Reason)
	case resolve.Merge:
		if u == resolve.RecordUnit {
			return &concord.RecordError{Key: st.Key, Field: u, Err: fmt.Errorf("resolver %q merged a delete conflict; pick a candidate instead", d.Rule)}
		}
		if d.Values == nil {
			return &concord.RecordError{Key: st.Key, Field: u, Err: fmt.Errorf("resolver %q merged no values (Decision.Values is nil; an empty map clears the unit)", d.Rule)}
		}
		for _, f := range sortedFields(d.Values) {
			if !slices.Contains(c.Fields, f) {
				return &concord.RecordError{Key: st.Key, Field: f, Err: fmt.Errorf("resolver %q merged a field that is not in unit %q", d.Rule, u)}
			}
			if err := concord.CheckValue(d.Values[f]); err != nil {
				return &concord.RecordError{Key: st.Key, Field: f, Err: fmt.Errorf("resolver %q merged an unsupported value: %w", d.Rule, err)}
			}
		}
		return m.apply(ctx, st, u, joined, candidate{}, d.Values, d.Rule, d.Reason)
	case resolve.HoldForPerson:
		m.hold(st, u, c, d.Rule, d.Reason)
		return nil
	default:
		m.hold(st, u, c, RuleUnresolved, "no resolver decided")
		return nil
	}
}

// apply makes the winner (or merged values) canonical for unit u at version
// v, after the gates agree.
func (m *merger) apply(ctx context.Context, st *state.Record, u string, v concord.Version, w candidate, merged map[string]concord.Value, rule resolve.Rule, reason string) error {
	fields := m.layout.fieldsOf(u)
	cu := st.Units.Value(u)
	var to, from map[string]concord.Value
	if u != resolve.RecordUnit {
		from = m.currentValues(st, u)
	}
	// lazy: the winner is an edit of a unit that is one field of its
	// own name, which it reports, and nothing but the event and the state
	// needs its values as a map (no gate, no anomaly check): the value
	// alone is used, and the map is built only if the event is not
	// joined (see emit).
	var lazy one
	deleted := st.Deleted
	// anew: an edit of a record created again after a decided delete
	// (its existence, merged last, is not applied yet). Its values are
	// first values of a record that exists: the gates see no value
	// before them (the deleted record's values are nobody's, and a
	// refusal reverting to them would bring them back everywhere).
	anew := u != resolve.RecordUnit && w.e != nil && w.e.fresh && deleteDecided(st)
	if anew {
		deleted = false
	}
	switch {
	case u == resolve.RecordUnit && w.canonical:
		// the canonical existence stands
	case u == resolve.RecordUnit && w.e != nil:
		deleted = w.e.deleted
	case u == resolve.RecordUnit && w.held != nil:
		deleted = w.held.Deleted
	case merged != nil:
		to = merged
	case w.held != nil:
		to = w.held.Values
	case w.canonical:
		to = from
	default:
		if len(m.gates) == 0 && m.anomalies == nil {
			lazy = oneValue(w.e, fields)
		}
		if !lazy.ok {
			to = m.editValues(st, w.e)
		}
	}
	changed := deleted != st.Deleted
	if lazy.ok {
		cur, ok := st.Fields[u]
		changed = !ok || !concord.EqualValues(lazy.value, cur)
	} else if u != resolve.RecordUnit {
		changed = !sameValues(fields, to, st.Fields)
	}
	winner := w.system
	if merged != nil {
		winner = ""
	}
	if changed && len(m.gates) > 0 {
		ch := resolve.Change{Key: st.Key, Unit: u, Fields: fields, System: winner, Deleted: deleted, Version: v,
			Resolved: rule != RuleFastForward}
		if u != resolve.RecordUnit {
			ch.From, ch.To = from, to
		}
		if anew {
			ch.From = nil
		}
		for _, g := range m.gates {
			vd, err := g.Check(ctx, ch)
			if err != nil {
				return &concord.RecordError{System: winner, Key: st.Key, Field: u, Err: fmt.Errorf("gate: %w", err)}
			}
			switch vd.Outcome {
			case resolve.Accept:
				continue
			case resolve.Refuse:
				if cu == nil || (u != resolve.RecordUnit && len(ch.From) == 0) {
					// Nothing to revert to: the refused edit is the
					// only value there is. Keep it aside for a person
					// rather than erase it.
					m.holdChange(st, u, to, winner, deleted, anew, v, m.candidateTime(st, u, w), w.by(), vd.Rule, vd.Reason+"; no canonical value to revert to")
					return nil
				}
				// Keep the canonical value; supersede the refused edit.
				rv := v
				if cu != nil {
					rv = rv.Join(cu.Version)
				}
				rv, err := nextDot(st, rv, m.engine)
				if err != nil {
					return &concord.RecordError{Key: st.Key, Field: u, Err: err}
				}
				ev := m.event(audit.ChangeRefused, st.Key, u)
				ev.System, ev.Fields, ev.From, ev.To, ev.Deleted = winner, ch.Fields, ch.From, ch.To, deleted
				ev.Version, ev.Rule, ev.Reason = rv, vd.Rule, vd.Reason
				m.events = append(m.events, ev)
				var keep concord.SystemID
				if cu != nil {
					keep = cu.Winner
				}
				m.setUnit(st, u, rv, keep, vd.Rule, from, from, st.Deleted)
				return nil
			default:
				m.holdChange(st, u, to, winner, deleted, anew, v, m.candidateTime(st, u, w), w.by(), vd.Rule, vd.Reason)
				return nil
			}
		}
	}
	ev := audit.Event{Kind: audit.MergeDecided, Cycle: m.cycle, Key: st.Key, Unit: u, System: winner, Version: v, Rule: rule,
		Reason: reason, Deleted: deleted}
	if u != resolve.RecordUnit {
		ev.Fields, ev.From, ev.To = fields, from, to
	}
	if lazy.ok {
		m.emit(&ev, m.unitsLeft, st, w.e)
	} else {
		m.emit(&ev, m.unitsLeft, nil, nil)
	}
	if changed && m.anomalies != nil && u != resolve.RecordUnit && !anew {
		// (A first value of a record created again is no change of
		// the deleted record's: nothing to learn, as for any first
		// value.)
		m.anomalies.learn(resolve.Change{Key: st.Key, Unit: u, Fields: fields, System: winner, From: from, To: to, Version: v})
	}
	resurrected := u == resolve.RecordUnit && st.Deleted && !deleted && w.e != nil
	if lazy.ok {
		m.setVersion(st, u, v, winner, rule, from, deleted)
		st.Fields[u] = lazy.value
	} else {
		m.setUnit(st, u, v, winner, rule, from, to, deleted)
	}
	st.Units.Value(u).Modified = m.modified(st, u, w, merged != nil)
	if w.e != nil && merged == nil && m.layout.isGroup(u) && !m.reportsAll(st, w.e.obs, u) {
		// The editing system reported part of the group; the rest
		// comes from the canonical value, which it does not have: it
		// is written the whole group.
		view := st.Systems[w.e.obs.sys.id]
		view.Units.Set(u, state.Copy{Hash: view.Units.Value(u).Hash, Version: w.e.heldBefore})
		// What it held of the rest (in its own shape) is unknown now:
		// the patch carries the group's fields whatever the old hashes
		// say (only the fields of units it lacks are written at all).
		view.Native = nil
	}
	if resurrected && w.e.obs.full {
		// Only a whole record says which fields the record came back
		// without: a part (a webhook) says nothing of the others.
		m.clearUnreported(st, w.e.obs, w.version, v)
	}
	return nil
}

// reportsAll reports whether o has every field of unit u whose canonical
// value in st is not empty.
func (m *merger) reportsAll(st *state.Record, o *observation, u string) bool {
	for _, f := range m.layout.fieldsOf(u) {
		if _, ok := o.rec.Fields[f]; !ok && st.Fields[f] != nil {
			return false
		}
	}
	return true
}

// clearUnreported empties, when a deleted record is created again by o's
// system (whose record context is seen; the new existence version is v),
// every unit that the new record does not have and whose value that system
// had seen: a value from before the delete is not carried into the new
// record. A unit edited where the creator had not seen it keeps its value.
func (m *merger) clearUnreported(st *state.Record, o *observation, seen, v concord.Version) {
	for _, name := range st.Units.Names() { // setUnit may change st.Units
		cu := st.Units.Value(name)
		if name == resolve.RecordUnit || cu.Hold != nil || !seen.Descends(cu.Version) {
			continue
		}
		fields := m.layout.fieldsOf(name)
		// Reported by the creator, or by another system that has the
		// record now: kept.
		reported := slices.ContainsFunc(m.obs, func(x *observation) bool {
			return !x.rec.Deleted && slices.ContainsFunc(fields, func(f string) bool { _, ok := x.rec.Fields[f]; return ok })
		})
		valued := slices.ContainsFunc(fields, func(f string) bool { return st.Fields[f] != nil })
		if reported || !valued {
			continue
		}
		from := m.currentValues(st, name)
		nv := cu.Version.Join(v)
		ev := m.event(audit.MergeDecided, st.Key, name)
		ev.System, ev.Version, ev.Rule, ev.Fields, ev.From, ev.To = o.sys.id, nv, RuleRecreated, fields, from, map[string]concord.Value{}
		ev.Reason = fmt.Sprintf("%s created the record again without it: its value from before the delete is not carried over", o.sys.id)
		m.emit(&ev, 0, nil, nil)
		m.setUnit(st, name, nv, o.sys.id, RuleRecreated, from, nil, false)
		st.Units.Value(name).Modified = o.rec.Modified
	}
}

// modified returns the system time of the value w brings (the latest of
// the conflict's candidates for a merged value).
func (m *merger) modified(st *state.Record, u string, w candidate, merged bool) time.Time {
	switch {
	case merged:
		var t time.Time
		for _, c := range m.max {
			if ct := m.candidateTime(st, u, c); ct.After(t) {
				t = ct
			}
		}
		return t
	default:
		return m.candidateTime(st, u, w)
	}
}

func (m *merger) candidateTime(st *state.Record, u string, c candidate) time.Time {
	switch {
	case c.e != nil:
		t, _ := m.editTime(c.e.obs, u)
		return t
	case c.held != nil:
		return c.held.Modified
	case c.canonical:
		if cu := st.Units.Value(u); cu != nil {
			return cu.Modified
		}
	}
	return time.Time{}
}

// nextDot returns v with a new dot of actor a: a counter after every dot of
// a anywhere in the record (its units, held candidates, and what each system
// holds), not only in v. Counters are per actor and record, not per unit, so
// that a record-level context (the join of unit versions, which decides
// deletes and re-creations) never mistakes one unit's dot for another's:
// with per-unit counters, a system's first edit of two fields would both be
// a:1, and a context that saw one would seem to have seen the other.
func nextDot(st *state.Record, v concord.Version, a concord.Actor) (concord.Version, error) {
	d := concord.Dot{Actor: a, Counter: max(v.Get(a), st.TopCounter(a)) + 1}
	st.NoteDot(d)
	return v.WithDot(d)
}

// obsDot is an observation's dot, and the version of just that dot (the
// version of every unit it creates, shared: versions are immutable).
type obsDot struct {
	counter uint64
	alone   concord.Version
}

// editVersion returns the version of an edit by o's system of a unit it held
// at base: base with the observation's dot. All the edits one observation
// brings are one event of its system and share one dot, after every dot of
// that system in the record (see nextDot), whatever order they are found in.
func (m *merger) editVersion(st *state.Record, o *observation, base concord.Version) (concord.Version, error) {
	a := o.sys.actor
	d, known := m.dots[o]
	if !known {
		d.counter = st.TopCounter(a) + 1
		st.NoteDot(concord.Dot{Actor: a, Counter: d.counter})
	}
	if base.IsZero() && !d.alone.IsZero() {
		return d.alone, nil // the version of every unit the observation creates
	}
	v, err := base.WithDot(concord.Dot{Actor: a, Counter: d.counter})
	if err != nil {
		return v, err
	}
	if base.IsZero() {
		d.alone = v
	}
	if !known || base.IsZero() {
		if m.dots == nil {
			m.dots = map[*observation]obsDot{}
		}
		m.dots[o] = d
	}
	return v, nil
}

// editTime returns when o's system modified unit u: the latest of the
// unit's fields' own times if the system reports them (field is true), else
// the record's time. A record's time says nothing about when one of its
// fields changed, so a field time always comes first.
func (m *merger) editTime(o *observation, u string) (t time.Time, field bool) {
	if len(o.rec.FieldModified) > 0 && u != resolve.RecordUnit {
		for _, f := range m.layout.fieldsOf(u) {
			if ft, ok := o.rec.FieldModified[f]; ok && !ft.IsZero() {
				field = true
				if ft.After(t) {
					t = ft
				}
			}
		}
		if field {
			return t, true
		}
	}
	return o.rec.Modified, false
}

// holdChange holds a gated change of u (to, by winner, at version v) beside
// the canonical value, for a person. If anew (see apply), the canonical
// value is the deleted record's, nobody's: the change is held beside no
// value, which a person may choose.
func (m *merger) holdChange(st *state.Record, u string, to map[string]concord.Value, winner concord.SystemID, deleted, anew bool, v concord.Version, modified time.Time, by string, rule resolve.Rule, reason string) {
	fields := m.layout.fieldsOf(u)
	c := resolve.Conflict{Key: st.Key, Unit: u, Fields: fields}
	if cu := st.Units.Value(u); cu != nil {
		cur := resolve.Candidate{System: cu.Winner, Canonical: true,
			Values: m.currentValues(st, u), Deleted: st.Deleted, Version: cu.Version, Modified: cu.Modified}
		if anew {
			cur.Values, cur.Deleted = nil, false
		}
		c.Candidates = append(c.Candidates, cur)
	}
	c.Candidates = append(c.Candidates, resolve.Candidate{System: winner, Values: to, Deleted: deleted, Version: v, Modified: modified, By: by})
	m.hold(st, u, c, rule, reason)
}

// setUnit writes the new canonical value and version of u; from is the
// current value (it becomes Prev; it is not modified afterwards).
func (m *merger) setUnit(st *state.Record, u string, v concord.Version, winner concord.SystemID, rule resolve.Rule, from, to map[string]concord.Value, deleted bool) {
	if m.setVersion(st, u, v, winner, rule, from, deleted) {
		return
	}
	for _, f := range m.layout.fieldsOf(u) {
		if x, ok := to[f]; ok {
			st.Fields[f] = x
		} else {
			// A unit is all its fields: one the winning value does
			// not have is empty (not unknown), and written as such
			// (a person settling on "no value" clears it everywhere).
			st.Fields[f] = nil
		}
	}
}

// setVersion is setUnit less the values of the fields: the unit's version,
// winner, rule and previous values, and the record's existence if u is the
// record unit (then it reports true).
func (m *merger) setVersion(st *state.Record, u string, v concord.Version, winner concord.SystemID, rule resolve.Rule, from map[string]concord.Value, deleted bool) bool {
	cu := st.Units.Value(u)
	if cu == nil {
		cu = m.newUnit()
		st.Units.Set(u, cu)
	} else {
		cu.Prev = m.prevOf(cu.Version, st.Deleted, from)
	}
	cu.Version, cu.Winner, cu.Rule, cu.Changed, cu.Hold = v, winner, rule.String(), m.now(), nil
	delete(m.current, u)
	if u == resolve.RecordUnit {
		st.Deleted = deleted
		return true
	}
	return false
}

// unitSlabSize is how many units newUnit allocates at once.
const unitSlabSize = 64

// newUnit returns a zero unit, from a slab: one allocation per 64 units
// instead of one each (a first sync creates one per field).
func (m *merger) newUnit() *state.Unit {
	if len(m.unitSlab) == 0 {
		m.unitSlab = make([]state.Unit, unitSlabSize)
	}
	u := &m.unitSlab[0]
	m.unitSlab = m.unitSlab[1:]
	return u
}

// prevOf returns a unit's Prev of version v and values from (nil: none),
// the record deleted or not, from slabs (see newUnit); nil if all three
// are zero, as a decoded unit has it.
func (m *merger) prevOf(v concord.Version, deleted bool, from map[string]concord.Value) *state.Prev {
	if from == nil && v.IsZero() && !deleted {
		return nil
	}
	if len(m.prevStructs) == 0 {
		m.prevStructs = make([]state.Prev, unitSlabSize)
	}
	p := &m.prevStructs[0]
	m.prevStructs = m.prevStructs[1:]
	p.Version, p.Deleted, p.Values = v, deleted, m.prevValues(from)
	return p
}

// prevValues returns from as a table, from a slab: nil if from is nil.
func (m *merger) prevValues(from map[string]concord.Value) state.Table[concord.Value] {
	if from == nil {
		return nil
	}
	n := len(from)
	if len(m.prevSlab) < n {
		m.prevSlab = make(state.Table[concord.Value], max(n, unitSlabSize))
	}
	t := m.prevSlab[:0:n]
	m.prevSlab = m.prevSlab[n:]
	for f, v := range from {
		t = append(t, state.Entry[concord.Value]{Name: f, Value: v})
	}
	if n > 1 {
		slices.SortFunc(t, func(a, b state.Entry[concord.Value]) int { return strings.Compare(a.Name, b.Name) })
	}
	return t
}

// hold keeps the conflict c on unit u for a person.
func (m *merger) hold(st *state.Record, u string, c resolve.Conflict, rule resolve.Rule, reason string) {
	cu := st.Units.Value(u)
	if cu == nil {
		// A unit first seen in conflict: it has no canonical value yet.
		cu = m.newUnit()
		st.Units.Set(u, cu)
	}
	since := m.now()
	if cu.Hold != nil {
		since = cu.Hold.Since
	}
	cu.Hold = &state.Hold{Candidates: c.Candidates, Base: c.Base, BaseKnown: c.BaseKnown, Rule: rule.String(), Reason: reason, Since: since}
	ev := m.event(audit.ConflictHeld, st.Key, u)
	ev.Fields, ev.Rule, ev.Reason = c.Fields, rule, reason
	// The system whose change waits: the first competitor of the
	// canonical value (Candidates lists every one).
	for _, x := range c.Candidates {
		if !x.Canonical {
			ev.System = x.System
			break
		}
	}
	for _, x := range c.Candidates {
		ev.Candidates = append(ev.Candidates, audit.Candidate{System: x.System, Canonical: x.Canonical, Version: x.Version, Values: x.Values, Deleted: x.Deleted})
	}
	m.events = append(m.events, ev)
}

// conflict builds the resolver's view of the concurrent candidates.
func (m *merger) conflict(st *state.Record, u string, cands []candidate) resolve.Conflict {
	fields := m.layout.fieldsOf(u)
	c := resolve.Conflict{Key: st.Key, Unit: u, Fields: fields}
	cu := st.Units.Value(u)
	for _, x := range cands {
		if x.held != nil {
			c.Candidates = append(c.Candidates, *x.held)
			continue
		}
		rc := resolve.Candidate{System: x.system, Canonical: x.canonical, Version: x.version}
		switch {
		case x.canonical && u == resolve.RecordUnit:
			rc.Deleted = st.Deleted
		case x.canonical:
			rc.Values = m.currentValues(st, u)
			rc.Deleted = st.Deleted
		case u == resolve.RecordUnit:
			rc.Deleted = x.e.deleted
		default:
			rc.Values = m.editValues(st, x.e)
		}
		if !x.canonical {
			rc.Modified, rc.FieldTime = m.editTime(x.e.obs, u)
			rc.By = x.e.obs.raw.By
		} else if cu != nil {
			rc.Modified = cu.Modified
		}
		c.Candidates = append(c.Candidates, rc)
	}
	// The base: the newest known canonical value every candidate descends
	// from.
	if cu != nil && u != resolve.RecordUnit {
		switch {
		case descendsAll(cands, cu.Version):
			c.Base, c.BaseKnown = m.currentValues(st, u), true
		case descendsAll(cands, cu.PrevVersion()):
			c.Base, c.BaseKnown = cu.PrevValues().Map(), true
		}
	} else if cu == nil {
		c.BaseKnown = true // the unit did not exist
	}
	return c
}

// editValues returns the unit's values as the edit has them: the reported
// fields over the ones the system held (the previous canonical value if it
// held that, else the current one). Connectors report whole records, so
// this matters only for partial reports passed to Ingest.
func (m *merger) editValues(st *state.Record, e *edit) map[string]concord.Value {
	if e.unit == resolve.RecordUnit || e.vals != nil {
		return e.vals // computed once, when the edit is detected
	}
	fields := m.layout.fieldsOf(e.unit)
	base := st.Fields
	var prev state.Table[concord.Value]
	switch {
	case e.fresh:
		base = nil
	case e.fromPrev:
		base, prev = nil, st.Units.Value(e.unit).PrevValues()
	}
	out := make(map[string]concord.Value, len(fields))
	for _, f := range fields {
		if v, ok := e.obs.rec.Fields[f]; ok {
			out[f] = v
		} else if v, ok := base[f]; ok {
			out[f] = v
		} else if v, ok := prev.Get(f); ok {
			out[f] = v
		}
	}
	e.vals = out
	return out
}

func (m *merger) event(k audit.Kind, key, unit string) audit.Event {
	return audit.Event{Time: m.now(), Kind: k, Cycle: m.cycle, Key: key, Unit: unit}
}

// hashUnit hashes the reported fields of a unit, with their names, in field
// order.
func (m *merger) hashUnit(fields []string, vals map[string]concord.Value) (uint64, error) {
	b := m.buf[:0]
	for _, f := range fields {
		v, ok := vals[f]
		if !ok {
			continue
		}
		b = append(b, f...)
		b = append(b, 0)
		var err error
		if b, err = concord.AppendCanonical(b, v); err != nil {
			return 0, err
		}
	}
	m.buf = b
	return m.sens.hashUnit(fields, b), nil
}

// noValue is the hash of a unit in a system that deleted the record: it
// holds no value of it.
const noValue = state.NoValue

func existHash(exists bool) uint64 {
	if exists {
		return 1
	}
	return 2
}

// sameReported reports whether every field of fields present in reported
// equals its canonical value.
func sameReported(fields []string, reported, canonical map[string]concord.Value) bool {
	for _, f := range fields {
		r, ok := reported[f]
		if !ok {
			continue
		}
		c, ok := canonical[f]
		if !ok || !equalReported(r, c) {
			return false
		}
	}
	return true
}

// sameValues reports whether a and b agree on every field of fields
// (presence and value).
func sameValues(fields []string, a, b map[string]concord.Value) bool {
	for _, f := range fields {
		x, okx := a[f]
		y, oky := b[f]
		if okx != oky || (okx && !concord.EqualValues(x, y)) {
			return false
		}
	}
	return true
}

func unitValues(fields []string, vals map[string]concord.Value) map[string]concord.Value {
	var out map[string]concord.Value // nil if none: a unit not set yet (most of a first sync)
	for _, f := range fields {
		if v, ok := vals[f]; ok {
			if out == nil {
				out = make(map[string]concord.Value, len(fields))
			}
			out[f] = v
		}
	}
	return out
}

func allEqual(cs []resolve.Candidate) bool {
	for _, c := range cs[1:] {
		if c.Deleted != cs[0].Deleted {
			return false
		}
		if len(c.Values) != len(cs[0].Values) {
			return false
		}
		for f, v := range c.Values {
			w, ok := cs[0].Values[f]
			if !ok || !concord.EqualValues(v, w) {
				return false
			}
		}
	}
	return true
}

func descendsAll(cands []candidate, v concord.Version) bool {
	for _, c := range cands {
		if !c.version.Descends(v) {
			return false
		}
	}
	return true
}

func sameCandidates(a, b []resolve.Candidate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].System != b[i].System || a[i].Version.Compare(b[i].Version) != concord.Equal {
			return false
		}
	}
	return true
}

// createPending reports whether the engine attempted to create the record
// in view's system (a write of its existence) without seeing it confirmed.
func createPending(view *state.View) bool {
	return slices.ContainsFunc(view.Sent.Value(resolve.RecordUnit), func(c state.Copy) bool { return c.Hash == existHash(true) })
}
