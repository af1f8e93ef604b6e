package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/resolve"
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
	Hold
}

// ErrNoHold is returned by [Engine.Settle] when the unit is not held.
var ErrNoHold = errors.New("concord: no hold on that record and unit")

// ErrHoldChanged is returned by [Engine.Settle] when the hold changed since
// it was listed: nothing was applied; list the holds again and let the
// person decide on what is there now.
var ErrHoldChanged = errors.New("concord: the hold changed since it was listed")

// Revision hashes what a person deciding a hold sees: every candidate's
// system, version, deletion and values.
func (h *Hold) Revision() string {
	var b []byte
	for _, c := range h.Candidates {
		b = append(b, c.System...)
		b = append(b, 0)
		if c.Canonical {
			b = append(b, 1)
		}
		if c.Deleted {
			b = append(b, 2)
		}
		b, _ = c.Version.AppendBinary(b)
		for _, f := range sortedFields(c.Values) {
			b = append(b, f...)
			b = append(b, 0)
			b, _ = concord.AppendCanonical(b, c.Values[f])
		}
		b = append(b, 0xff)
	}
	return strconv.FormatUint(concord.HashBytes(b), 36)
}

// Holds returns every unit held for a person, by key and unit.
func (e *Engine) Holds(ctx context.Context) ([]HeldConflict, error) {
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
		for name, u := range st.Units {
			if u.Hold != nil {
				out = append(out, HeldConflict{Key: k, Unit: name, Revision: u.Hold.Revision(), Hold: *u.Hold})
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

// Settle ends the hold h (as listed by [Engine.Holds]) with the decision of
// a person: the candidate at index winner of h.Candidates becomes canonical,
// at a version that supersedes every candidate. The next cycle writes it to
// every system that does not hold it, the one whose change was rejected
// included. person is recorded in the audit trail.
//
// The settlement names what the person saw: if the hold changed since h was
// listed (a cycle added a candidate), Settle fails with [ErrHoldChanged]
// and applies nothing. It fails with [ErrNoHold] if the unit is no longer
// held.
func (e *Engine) Settle(ctx context.Context, h HeldConflict, winner int, person string) error {
	key, unit := h.Key, h.Unit
	if person == "" {
		return fmt.Errorf("concord: Settle %q/%q: the person deciding must be named", key, unit)
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
	if st == nil || st.Units[unit] == nil || st.Units[unit].Hold == nil {
		return fmt.Errorf("%w: %q/%q", ErrNoHold, key, unit)
	}
	if rev := st.Units[unit].Hold.Revision(); rev != h.Revision {
		return fmt.Errorf("%w: %q/%q was listed at revision %s with %d candidates, it is now at %s with %d",
			ErrHoldChanged, key, unit, h.Revision, len(h.Candidates), rev, len(st.Units[unit].Hold.Candidates))
	}
	h.Hold = *st.Units[unit].Hold
	if winner < 0 || winner >= len(h.Candidates) {
		return fmt.Errorf("concord: Settle %q/%q: candidate %d of %d", key, unit, winner, len(h.Candidates))
	}
	// The decision supersedes every candidate strictly (as a refusal
	// does): a system whose change was rejected holds a version the
	// decision descends from, so it is written back.
	v := st.Units[unit].Version
	for _, c := range h.Candidates {
		v = v.Join(c.Version)
	}
	v, err = nextDot(st, v, e.engine)
	if err != nil {
		return &concord.RecordError{Key: key, Field: unit, Err: err}
	}
	w := h.Candidates[winner]
	m := e.merger
	m.events = m.events[:0]
	m.cycle = e.cycle
	ev := m.event(audit.MergeDecided, key, unit)
	ev.System, ev.Version, ev.Rule, ev.Deleted = w.System, v, RulePerson, w.Deleted
	ev.Reason = "settled by " + person
	if unit != resolve.RecordUnit {
		ev.Fields = m.layout.fieldsOf(unit)
		ev.From, ev.To = unitValues(ev.Fields, st.Fields), w.Values
	}
	m.setUnit(st, unit, v, w.System, RulePerson, ev.From, w.Values, w.Deleted)
	st.Units[unit].Modified = w.Modified
	events := append(m.events[:0:0], ev)
	if err := e.store.Commit(ctx, &Commit{States: []*RecordState{st}}); err != nil {
		return err
	}
	return e.audit.Emit(ctx, events)
}

// ErrNoDeadLetter is returned by [Engine.Replay] and [Engine.Discard] for
// an ID that is not (or no longer) a dead letter.
var ErrNoDeadLetter = errors.New("concord: no such dead letter")

// DeadLetters returns the records the engine could not use or deliver,
// oldest first: for each, the system, the direction, the payload, the
// error class and message, the attempts and when it failed.
func (e *Engine) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	return e.store.DeadLetters(ctx)
}

func (e *Engine) deadLetter(ctx context.Context, id uint64) (DeadLetter, error) {
	all, err := e.store.DeadLetters(ctx)
	if err != nil {
		return DeadLetter{}, err
	}
	for _, d := range all {
		if d.ID == id {
			return d, nil
		}
	}
	return DeadLetter{}, fmt.Errorf("%w: %d", ErrNoDeadLetter, id)
}

// ErrNotReplayable is returned by [Engine.Replay] for a dead letter whose
// payload cannot be used as it is (see DeadLetter.Textual) and whose system
// cannot be read by key: fix the record in the system (a later read brings
// it in and settles the dead letter) or Discard it.
var ErrNotReplayable = errors.New("concord: dead letter cannot be replayed from its payload")

// Replay tries a dead letter again, as asked by person (recorded in the
// audit trail).
//
// A record that could not be read in is read in again (through the inbound
// transforms and validation): as the system holds it now if its connector
// is a connector.Getter (a person may have corrected it there), else from
// the dead letter's payload (after a fix of the transforms). If it still fails, the
// dead letter stays and the error says why; if it passes, it is merged and
// written like any change, and the dead letter is gone. A write that was
// dead-lettered is released: the next cycle writes the record's canonical
// values to the system again. Replaying what was already replayed fails
// with ErrNoDeadLetter and changes nothing.
func (e *Engine) Replay(ctx context.Context, id uint64, person string) error {
	if person == "" {
		return fmt.Errorf("concord: Replay of dead letter %d: the person asking must be named", id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d, err := e.deadLetter(ctx, id)
	if err != nil {
		return err
	}
	s, ok := e.byID[d.System]
	if !ok {
		return fmt.Errorf("concord: dead letter %d is from %q, which is not configured", id, d.System)
	}
	reason := fmt.Sprintf("dead letter %d replayed by %s (%s)", id, person, d.Reason)
	if d.Inbound {
		rec := d.Record
		g, ok := s.Connector.(connector.Getter)
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
			if len(recs) == 1 {
				rec = recs[0]
			} else if len(d.Textual) > 0 {
				return fmt.Errorf("concord: replaying dead letter %d: %s no longer has %q and fields %v of the payload are kept only as text: %w",
					id, d.System, d.Key, d.Textual, ErrNotReplayable)
			}
		}
		c, release, err := e.begin(ctx)
		if err != nil {
			return err
		}
		defer release()
		if err := c.observe(ctx, s, []concord.Record{rec}, false); err != nil {
			return err
		}
		if len(c.dead) > 0 {
			return fmt.Errorf("concord: replaying dead letter %d: %s", id, c.dead[0].Reason)
		}
		c.removeDead = []uint64{id}
		c.events = append(c.events, audit.Event{Time: e.now(), Kind: audit.WriteReplayed, System: d.System, Key: d.Key, Reason: reason})
		_, err = c.finish(ctx)
		return err
	}
	states, err := e.store.Load(ctx, []string{d.Key})
	if err != nil {
		return err
	}
	commit := &Commit{RemoveDeadLetters: []uint64{id}}
	if st := states[d.Key]; st != nil && st.Systems[d.System] != nil {
		// FirstFailed stays: the time to resolution runs until the
		// record is written.
		v := st.Systems[d.System]
		v.Parked, v.Attempts, v.LastError = false, 0, ""
		commit.States = []*RecordState{st}
	}
	if err := e.store.Commit(ctx, commit); err != nil {
		return err
	}
	e.metrics.replayed(ctx, d.System)
	e.resolveDeadLetters(ctx, d.System, d.Class)
	return e.audit.Emit(ctx, []audit.Event{{Time: e.now(), Kind: audit.WriteReplayed, System: d.System, Key: d.Key, Reason: reason}})
}

// Discard gives up on a dead letter, for a reason, as decided by person
// (both recorded in the audit trail). For a dead-lettered write the system
// keeps what it has: the engine stops trying to write this version of the
// record to it, and writes it later changes as usual.
func (e *Engine) Discard(ctx context.Context, id uint64, reason, person string) error {
	if person == "" || reason == "" {
		return fmt.Errorf("concord: Discard of dead letter %d: a reason and the person deciding are required", id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d, err := e.deadLetter(ctx, id)
	if err != nil {
		return err
	}
	commit := &Commit{RemoveDeadLetters: []uint64{id}}
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
				if ex := st.Units[resolve.RecordUnit]; ex != nil {
					v.Units[resolve.RecordUnit] = HeldUnit{Hash: existHash(false), Version: ex.Version}
				}
			}
			for name, u := range st.Units {
				if u.Hold == nil && (name != resolve.RecordUnit || !v.Deleted) {
					h := v.Units[name]
					h.Version = u.Version
					v.Units[name] = h
				}
			}
			commit.States = []*RecordState{st}
		}
	}
	if err := e.store.Commit(ctx, commit); err != nil {
		return err
	}
	if !d.Inbound {
		e.metrics.replayed(ctx, d.System)
		e.resolveDeadLetters(ctx, d.System, d.Class)
	}
	return e.audit.Emit(ctx, []audit.Event{{Time: e.now(), Kind: audit.DeadLetterDiscarded, System: d.System, Key: d.Key,
		Reason: fmt.Sprintf("dead letter %d discarded by %s: %s", id, person, reason), Error: d.Reason, ErrorClass: d.Class}})
}
