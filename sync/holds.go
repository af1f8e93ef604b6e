package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/seal"
	"github.com/concordsync/concord/sync/store"
)

// HeldConflict is one unit of one record waiting for a person, as
// [Engine.Holds] listed it.
type HeldConflict struct {
	Key  string
	Unit string
	// Revision identifies the hold as listed: its candidates, their
	// values and versions. [Engine.Settle] refuses a settlement whose
	// revision is no longer the hold's (a cycle added or replaced a
	// candidate since the person looked).
	Revision string
	// Candidates compete, in the order the resolver saw them (stable from
	// one listing to the next), each with its system, values, version
	// and modification time; Settlement.Candidate is an index into it.
	Candidates []resolve.Candidate
	// Base is the common ancestor of the candidates' values, when
	// BaseKnown.
	Base      map[string]concord.Value
	BaseKnown bool
	// Rule and Reason of the resolver or gate that held the unit.
	Rule   resolve.Rule
	Reason string
	// Since is when the unit was first held.
	Since time.Time
}

// heldConflict lists the hold h on unit of key.
func heldConflict(codec state.Codec, key, unit string, h *state.Hold) HeldConflict {
	return HeldConflict{Key: key, Unit: unit, Revision: codec.Revision(h), Candidates: h.Candidates, Base: h.Base,
		BaseKnown: h.BaseKnown, Rule: resolve.Rule(h.Rule), Reason: h.Reason, Since: h.Since}
}

// Settlement is a person's decision on a held unit, for [Engine.Settle].
// Fill it from the [HeldConflict] the person saw:
//
//	Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision,
//		Candidate: 1, Person: "ana@example.com", Reason: "the customer called"}
type Settlement struct {
	// Key and Unit name the held unit.
	Key, Unit string
	// Revision is the [HeldConflict.Revision] the person saw; required.
	Revision string
	// Candidate is the index, in the hold's Candidates, of the value the
	// person chose.
	Candidate int
	// Person who decided; required. Recorded in the audit trail.
	Person string
	// Reason, optional, is recorded in the audit trail with Person.
	Reason string
}

// DeadLetterAction is a person's request about one dead letter, for
// [Engine.Replay] and [Engine.Discard].
type DeadLetterAction struct {
	// ID of the dead letter, as [Engine.DeadLetters] lists it.
	ID uint64
	// Person asking; required. Recorded in the audit trail.
	Person string
	// Reason: required by Discard, optional for Replay. Recorded in the
	// audit trail.
	Reason string
}

// Sentinels for a request a person makes (Settle, Replay, Discard,
// ResetCursor) that is incomplete; the wrapping error names the operation
// and the record, unit, dead letter or system.
var (
	// ErrNoPerson: the person deciding or asking was not named.
	ErrNoPerson = errors.New("concord: the person deciding must be named")
	// ErrNoReason: a reason is required and was not given.
	ErrNoReason = errors.New("concord: a reason is required")
	// ErrNoRevision: a Settlement does not say which revision of the
	// hold the person saw.
	ErrNoRevision = errors.New("concord: the settlement names no revision of the hold")
	// ErrNoCandidate: a Settlement's Candidate is not an index of the
	// hold's candidates.
	ErrNoCandidate = errors.New("concord: no such candidate")
)

// ErrFourEyes is returned by [Engine.Settle] when the person approving a
// held change (choosing a candidate that is not the canonical value) is
// the person who made it, as its system said (concord.Record.By): a change
// needs a second pair of eyes. Nothing is applied. Rejecting one's own
// change is allowed.
var ErrFourEyes = errors.New("concord: a change cannot be approved by the person who made it")

// ErrNoHold is returned by [Engine.Settle] when the unit is not held.
var ErrNoHold = errors.New("concord: no hold on that record and unit")

// ErrHoldChanged is returned by [Engine.Settle] when the hold changed since
// it was listed: nothing was applied; list the holds again and let the
// person decide on what is there now.
var ErrHoldChanged = errors.New("concord: the hold changed since it was listed")

// Holds returns every unit held for a person, by key and unit, with the
// values of sensitive fields (Config.Sensitive) [Redacted]; see
// [Engine.RevealHolds].
func (e *Engine) Holds(ctx context.Context) ([]HeldConflict, error) {
	out, err := e.holds(ctx)
	for i := range out {
		out[i] = e.sens.redactHold(out[i])
	}
	return out, err
}

// ErrWrongKeys is returned by [Engine.RevealHolds] for a key ring that is
// not the engine's (its hash key differs).
var ErrWrongKeys = errors.New("concord: not the key ring of this pipeline")

// RevealHolds is [Engine.Holds] with the values of sensitive fields shown,
// for a caller that proves it holds the pipeline's key ring: keys must
// have the same hash key as Config.Keys (else [ErrWrongKeys]). Without
// sensitive fields it is Holds.
func (e *Engine) RevealHolds(ctx context.Context, keys *seal.KeyRing) ([]HeldConflict, error) {
	if e.sens != nil {
		probe := []byte("concord: reveal holds")
		if keys == nil || keys.Hash("probe", probe) != e.sens.keys.Hash("probe", probe) {
			return nil, ErrWrongKeys
		}
	}
	return e.holds(ctx)
}

func (e *Engine) holds(ctx context.Context) ([]HeldConflict, error) {
	keys, err := e.store.Held(ctx)
	if err != nil {
		return nil, err
	}
	states, err := e.store.Load(ctx, keys)
	if err != nil {
		return nil, err
	}
	var out []HeldConflict
	for _, k := range keys {
		st := states[k]
		if st == nil {
			continue
		}
		for _, ux := range st.Units {
			name, u := ux.Name, ux.Value
			if u.Hold != nil {
				out = append(out, heldConflict(e.store.codec, k, name, u.Hold))
			}
		}
	}
	slices.SortFunc(out, func(a, b HeldConflict) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Unit, b.Unit)
	})
	return out, nil
}

// Settle ends a hold (as listed by [Engine.Holds]) with the decision of a
// person: the candidate at index s.Candidate of the hold's Candidates
// becomes canonical, at a version that supersedes every candidate. The next
// cycle writes it to every system that does not hold it, the one whose
// change was rejected included. s.Person and s.Reason are recorded in the
// audit trail.
//
// The settlement names what the person saw: if the hold is no longer at
// s.Revision (a cycle added a candidate), Settle fails with
// [ErrHoldChanged] and applies nothing. It fails with [ErrNoHold] if the
// unit is no longer held, and with [ErrNoPerson], [ErrNoRevision] or
// [ErrNoCandidate] for an incomplete settlement.
func (e *Engine) Settle(ctx context.Context, s Settlement) error {
	key, unit := s.Key, s.Unit
	switch {
	case s.Person == "":
		return fmt.Errorf("concord: Settle %q/%q: %w", key, unit, ErrNoPerson)
	case s.Revision == "":
		return fmt.Errorf("concord: Settle %q/%q: %w", key, unit, ErrNoRevision)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.init(ctx); err != nil {
		return err
	}
	states, err := e.store.Load(ctx, []string{key})
	if err != nil {
		return err
	}
	st := states[key]
	if st == nil || st.Units.Value(unit) == nil || st.Units.Value(unit).Hold == nil {
		return fmt.Errorf("%w: %q/%q", ErrNoHold, key, unit)
	}
	h := st.Units.Value(unit).Hold
	if rev := e.store.codec.Revision(h); rev != s.Revision {
		return fmt.Errorf("%w: %q/%q was listed at revision %s, it is now at %s with %d candidates",
			ErrHoldChanged, key, unit, s.Revision, rev, len(h.Candidates))
	}
	if s.Candidate < 0 || s.Candidate >= len(h.Candidates) {
		return fmt.Errorf("concord: Settle %q/%q: candidate %d of %d: %w", key, unit, s.Candidate, len(h.Candidates), ErrNoCandidate)
	}
	if c := h.Candidates[s.Candidate]; !c.Canonical && c.By != "" && strings.EqualFold(c.By, s.Person) {
		return fmt.Errorf("Settle %q/%q: %w: %s made the change in %s", key, unit, ErrFourEyes, c.By, c.System)
	}
	// The decision supersedes every candidate strictly (as a refusal
	// does): a system whose change was rejected holds a version the
	// decision descends from, so it is written back.
	v := st.Units.Value(unit).Version
	for _, c := range h.Candidates {
		v = v.Join(c.Version)
	}
	v, err = nextDot(st, v, e.engine)
	if err != nil {
		return &concord.RecordError{Key: key, Field: unit, Err: err}
	}
	w := h.Candidates[s.Candidate]
	m := e.merger
	m.events = m.events[:0]
	m.cycle = e.cycle
	ev := m.event(audit.MergeDecided, key, unit)
	ev.System, ev.Version, ev.Rule, ev.Deleted = w.System, v, RulePerson, w.Deleted
	ev.Reason = "settled by " + s.Person
	if s.Reason != "" {
		ev.Reason += ": " + s.Reason
	}
	if unit != resolve.RecordUnit {
		ev.Fields = m.layout.fieldsOf(unit)
		ev.From, ev.To = unitValues(ev.Fields, st.Fields), w.Values
	}
	m.setUnit(st, unit, v, w.System, RulePerson, ev.From, w.Values, w.Deleted)
	st.Units.Value(unit).Modified = w.Modified
	events := append(m.events[:0:0], ev)
	return e.commitAudited(ctx, &batch{States: []*state.Record{st}}, events)
}

// ErrNoDeadLetter is returned by [Engine.Replay] and [Engine.Discard] for
// an ID that is not (or no longer) a dead letter.
var ErrNoDeadLetter = errors.New("concord: no such dead letter")

// DeadLetters returns the records the engine could not use or deliver,
// oldest first: for each, the system, the direction, the payload, the
// error class and message, the attempts and when it failed.
//
// The values of sensitive fields (Config.Sensitive) are [Redacted], in the
// payloads and in the reason.
//
// A stored dead letter that does not decode (damaged, sealed under a key
// the ring no longer has) is listed too, by its ID and the system and key
// the store indexed it under, with Class [ClassUnreadable] and the reason
// in Reason: it cannot be replayed, and [Engine.Discard] removes it.
func (e *Engine) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	stored, err := e.store.Store.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out, bad := e.store.decodeEach(stored)
	for i := range out {
		out[i] = e.sens.redactDeadLetter(out[i])
	}
	if len(bad) == 0 {
		return out, nil
	}
	for _, b := range bad {
		out = append(out, DeadLetter{ID: b.id, System: b.system, Key: b.key, Class: ClassUnreadable.String(),
			Reason: fmt.Sprintf("the dead letter cannot be read: %v", b.err)})
	}
	slices.SortFunc(out, func(a, b DeadLetter) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// deadLetter looks the dead letter id up in the store (by ID, not a scan);
// one that is not there is ErrNoDeadLetter.
func (e *Engine) deadLetter(ctx context.Context, id uint64) (DeadLetter, error) {
	return e.store.DeadLetter(ctx, id)
}

// undecodable reports whether err is that of stored data that does not
// decode: damaged, of a newer format, or sealed under a key the ring lacks.
func undecodable(err error) bool {
	var se *state.SealError
	return errors.Is(err, store.ErrDamaged) || errors.Is(err, ErrNewerFormat) || errors.As(err, &se)
}

// parked reports whether the state of key holds a parked write to system
// (a dead-lettered write): false if it cannot tell.
func (e *Engine) parked(ctx context.Context, system concord.SystemID, key string) bool {
	if system == "" || key == "" {
		return false
	}
	states, err := e.store.Load(ctx, []string{key})
	if err != nil || states[key] == nil {
		return false
	}
	v := states[key].Systems[system]
	return v != nil && v.Parked
}

// ErrNotReplayable is returned by [Engine.Replay] for a dead letter whose
// payload cannot be used as it is (see DeadLetter.Textual) and whose system
// cannot be read by key: fix the record in the system (a later read brings
// it in and settles the dead letter) or Discard it.
var ErrNotReplayable = errors.New("concord: dead letter cannot be replayed from its payload")

// Replay tries the dead letter a.ID again, as asked by a.Person (recorded
// in the audit trail with a.Reason, if given).
//
// A record that could not be read in is read in again (through the inbound
// transforms and validation): as the system holds it now if its connector
// is a connector.Getter (a person may have corrected it there; a record
// the system no longer has is merged as its delete), else from the dead
// letter's payload (after a fix of the transforms). If it still fails, the
// dead letter stays and the error says why; if it passes, it is merged and
// written like any change (to a system without version tags, at the next
// cycle: see [Engine.Ingest]), and the dead letter is gone. A write that was
// dead-lettered is released: the next cycle writes the record's canonical
// values to the system again. Replaying what was already replayed fails
// with ErrNoDeadLetter and changes nothing. A record that fails again
// returns its error wrapped (errors.Is sees the cause, such as
// concord.ErrUnsupportedValue or a dictionary rule).
func (e *Engine) Replay(ctx context.Context, a DeadLetterAction) error {
	id, person := a.ID, a.Person
	if person == "" {
		return fmt.Errorf("concord: Replay of dead letter %d: %w", id, ErrNoPerson)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d, err := e.deadLetter(ctx, id)
	if err != nil {
		return err
	}
	s, ok := e.byID[d.System]
	if !ok {
		return fmt.Errorf("concord: replaying dead letter %d: %w: %q", id, ErrUnknownSystem, d.System)
	}
	reason := fmt.Sprintf("dead letter %d replayed by %s (%s)", id, person, d.Reason)
	if a.Reason != "" {
		reason = fmt.Sprintf("dead letter %d replayed by %s: %s (%s)", id, person, a.Reason, d.Reason)
	}
	if d.Inbound {
		// A record read by key (Get) is whole, as in a cycle's refetch: a
		// unit the system held and no longer reports is gone from it (a
		// record deleted and created again between two reads). The
		// payload is whole if the cycle that kept it read it whole.
		rec, whole := d.Record, d.Whole
		g := s.getter
		ok := g != nil
		if len(d.Textual) > 0 && (!ok || d.Key == "") {
			return fmt.Errorf("concord: replaying dead letter %d: fields %v of its payload are kept only as text, and %s cannot be read again (its connector is not a connector.Getter): %w",
				id, d.Textual, d.System, ErrNotReplayable)
		}
		if ok && d.Key != "" {
			// The record as the system holds it now: a person may have
			// corrected it there. The call counts against the system's
			// budget like any other.
			if err := s.budget.wait(ctx, time.Now()); err != nil {
				return err
			}
			recs, err := g.Get(ctx, []string{d.Key})
			if err != nil {
				return fmt.Errorf("concord: replaying dead letter %d: reading %q from %s: %w", id, d.Key, d.System, err)
			}
			// A record the system no longer has (Get omits it) is
			// its own statement that the record does not exist there,
			// merged like any delete, as a cycle's refetch reads it:
			// never the letter's older payload, which would create it
			// everywhere else while the system lacks it (a delete read
			// by the feed before the replay is not read again).
			rec, whole = concord.Record{Key: d.Key, Deleted: true}, true
			if i := slices.IndexFunc(recs, func(r concord.Record) bool { return r.Key == d.Key }); i >= 0 {
				rec = recs[i]
			}
		}
		c, release, err := e.begin(ctx)
		if err != nil {
			return err
		}
		defer release()
		if err := c.observe(ctx, s, []concord.Record{rec}, whole); err != nil {
			return err
		}
		if len(c.dead) > 0 {
			for _, f := range c.report.Failures {
				if f.Op == OpTransform && f.System == d.System {
					return fmt.Errorf("concord: replaying dead letter %d: %w", id, f.Err)
				}
			}
			return fmt.Errorf("concord: replaying dead letter %d: %s", id, c.dead[0].Reason)
		}
		c.removeDead = []uint64{id}
		c.events.add(audit.Event{Time: e.now(), Kind: audit.WriteReplayed, System: d.System, Key: d.Key, Reason: reason})
		_, err = c.finish(ctx)
		return err
	}
	states, err := e.store.Load(ctx, []string{d.Key})
	if err != nil {
		return err
	}
	commit := &batch{RemoveDeadLetters: []uint64{id}}
	if st := states[d.Key]; st != nil && st.Systems[d.System] != nil {
		// FirstFailed stays: the time to resolution runs until the
		// record is written.
		v := st.Systems[d.System]
		v.Parked, v.Attempts, v.LastError = false, 0, ""
		commit.States = []*state.Record{st}
	}
	err = e.commitAudited(ctx, commit, []audit.Event{{Time: e.now(), Kind: audit.WriteReplayed, System: d.System, Key: d.Key, Reason: reason}})
	if _, delivery := errors.AsType[*AuditError](err); err != nil && !delivery {
		return err
	}
	e.metrics.replayed(ctx, d.System)
	e.resolveDeadLetters(ctx, d.System, d.Class)
	return err
}

// Discard gives up on the dead letter a.ID, for a.Reason, as decided by
// a.Person (both required, [ErrNoReason] and [ErrNoPerson], and recorded
// in the audit trail). For a dead-lettered write the system keeps what it
// has: the engine stops trying to write this version of the record to it,
// and writes it later changes as usual. A dead letter that does not decode
// (damaged, sealed under a key the ring no longer has) is removed unread,
// by the system and key the store indexed it under.
func (e *Engine) Discard(ctx context.Context, a DeadLetterAction) error {
	id, reason, person := a.ID, a.Reason, a.Person
	switch {
	case person == "":
		return fmt.Errorf("concord: Discard of dead letter %d: %w", id, ErrNoPerson)
	case reason == "":
		return fmt.Errorf("concord: Discard of dead letter %d: %w", id, ErrNoReason)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d, err := e.deadLetter(ctx, id)
	unreadable := err != nil && undecodable(err)
	switch {
	case unreadable:
		// Damaged, or sealed under a retired key: removed unread (the
		// escape from a letter nothing can settle), by what the store
		// indexed it under. A write it parked is released below.
		sd, serr := e.store.Store.DeadLetter(ctx, id)
		if serr != nil {
			return err
		}
		d = DeadLetter{ID: id, System: sd.System, Key: sd.Key, Reason: err.Error()}
		d.Inbound = !e.parked(ctx, sd.System, sd.Key)
	case err != nil:
		return err
	}
	commit := &batch{RemoveDeadLetters: []uint64{id}}
	if !d.Inbound {
		states, err := e.store.Load(ctx, []string{d.Key})
		if err != nil {
			return err
		}
		if st := states[d.Key]; st != nil && st.Systems[d.System] != nil {
			v := st.Systems[d.System]
			v.Parked, v.Attempts, v.FirstFailed, v.LastError = false, 0, time.Time{}, ""
			// The system is taken to hold what it holds: record the
			// current versions so that only later changes are written.
			// A record it never got is noted as absent there at the
			// current versions, so that a later change creates it.
			if !v.Seen || v.Deleted {
				v.Seen, v.Deleted = true, true
				if ex := st.Units.Value(resolve.RecordUnit); ex != nil {
					v.Units.Set(resolve.RecordUnit, state.Copy{Hash: existHash(false), Version: ex.Version})
				}
			}
			for _, ux := range st.Units {
				name, u := ux.Name, ux.Value
				if u.Hold == nil && (name != resolve.RecordUnit || !v.Deleted) {
					h := v.Units.Value(name)
					h.Version = u.Version
					v.Units.Set(name, h)
				}
			}
			commit.States = []*state.Record{st}
		}
	}
	err = e.commitAudited(ctx, commit, []audit.Event{{Time: e.now(), Kind: audit.DeadLetterDiscarded, System: d.System, Key: d.Key,
		Reason: fmt.Sprintf("dead letter %d discarded by %s: %s", id, person, reason), Error: d.Reason, ErrorClass: d.Class}})
	if _, delivery := errors.AsType[*AuditError](err); err != nil && !delivery {
		return err
	}
	if !d.Inbound {
		e.metrics.replayed(ctx, d.System)
		e.resolveDeadLetters(ctx, d.System, d.Class)
	}
	return err
}
