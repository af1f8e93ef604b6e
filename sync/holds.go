package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/resolve"
)

// HeldConflict is one unit of one record waiting for a person.
type HeldConflict struct {
	Key  string
	Unit string
	Hold
}

// ErrNoHold is returned by [Engine.Settle] when the unit is not held.
var ErrNoHold = errors.New("concord: no hold on that record and unit")

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
				out = append(out, HeldConflict{Key: k, Unit: name, Hold: *u.Hold})
			}
		}
	}
	slices.SortFunc(out, func(a, b HeldConflict) int {
		if c := compareStrings(a.Key, b.Key); c != 0 {
			return c
		}
		return compareStrings(a.Unit, b.Unit)
	})
	return out, nil
}

// Settle ends the hold on unit of key with the decision of a person: the
// candidate at index winner of the hold's Candidates becomes canonical, at a
// version that supersedes every candidate. The next cycle writes it to the
// systems that do not hold it. person is recorded in the audit trail.
func (e *Engine) Settle(ctx context.Context, key, unit string, winner int, person string) error {
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
	h := st.Units[unit].Hold
	if winner < 0 || winner >= len(h.Candidates) {
		return fmt.Errorf("concord: Settle %q/%q: candidate %d of %d", key, unit, winner, len(h.Candidates))
	}
	v := st.Units[unit].Version
	for _, c := range h.Candidates {
		v = v.Join(c.Version)
	}
	if v.Len() > concord.MaxDots {
		return &concord.RecordError{Key: key, Field: unit, Err: concord.ErrVersionFull}
	}
	w := h.Candidates[winner]
	m := e.merger
	m.events = m.events[:0]
	m.cycle = e.cycle
	ev := m.event("merge.decided", key, unit)
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

// ErrNotParked is returned by [Engine.Replay] when the record's writes to
// the system are not dead-lettered.
var ErrNotParked = errors.New("concord: no dead-lettered write for that record and system")

// Replay takes the dead-lettered writes of key to system out of the dead
// letters: the next cycle writes the record's canonical values to the
// system again (once; replaying twice changes nothing). person is recorded
// in the audit trail. For records dead-lettered on the way in (invalid
// input), fix the data and pass the corrected record to Ingest instead.
func (e *Engine) Replay(ctx context.Context, key string, system concord.SystemID, person string) error {
	if person == "" {
		return fmt.Errorf("concord: Replay %q to %q: the person asking must be named", key, system)
	}
	if _, ok := e.byID[system]; !ok {
		return fmt.Errorf("concord: Replay to unknown system %q", system)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	states, err := e.store.Load(ctx, []string{key})
	if err != nil {
		return err
	}
	st := states[key]
	if st == nil || st.Systems[system] == nil || !st.Systems[system].Parked {
		return fmt.Errorf("%w: %q to %q", ErrNotParked, key, system)
	}
	v := st.Systems[system]
	reason := fmt.Sprintf("replayed by %s after %d attempts (%s)", person, v.Attempts, v.LastError)
	v.Parked, v.Attempts, v.FirstFailed, v.LastError = false, 0, time.Time{}, ""
	if err := e.store.Commit(ctx, &Commit{States: []*RecordState{st}}); err != nil {
		return err
	}
	e.metrics.replayed(ctx, system)
	return e.audit.Emit(ctx, []audit.Event{{Time: e.now(), Kind: audit.WriteReplayed, System: system, Key: key, Reason: reason}})
}
