package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/patterns"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
)

// Trace is a record's journey across systems: every step the engine
// recorded about it, in order, from the store's audit log.
type Trace struct {
	Key   string
	Steps []audit.Event
}

// Trace returns every step record key took, in order: what each system
// reported (with the system's own time of the change and who made it),
// conflicts, merge decisions with their versions and rules, gates and
// holds, writes and their results, failures and retries, dead letters and
// settlements. It reads the store's audit log, whose events are already
// redacted for sensitive fields. It reads the whole log: a diagnosis call,
// not one for every cycle.
func (e *Engine) Trace(ctx context.Context, key string) (*Trace, error) {
	t := &Trace{Key: key}
	for en, err := range e.auditEntries(ctx) {
		if err != nil {
			return nil, fmt.Errorf("concord: Trace %q: %w", key, err)
		}
		if en.Event.Key == key {
			t.Steps = append(t.Steps, en.Event)
		}
	}
	return t, nil
}

// String renders the trace as text, one step per line:
//
//	#12 cycle 3 09:00:01 warehouse edit.observed addr: {street:"1 Old Rd"} → {street:"2 New St"} (changed there 08:59:58 by ana)
func (t *Trace) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trace of record %q: %d steps\n", t.Key, len(t.Steps))
	for _, ev := range t.Steps {
		b.WriteString(describe(ev))
		b.WriteByte('\n')
	}
	return b.String()
}

// MarshalJSON renders the trace as {"key": ..., "steps": [events]}, each
// event in the audit package's JSON form.
func (t *Trace) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Key   string        `json:"key"`
		Steps []audit.Event `json:"steps"`
	}{t.Key, t.Steps})
}

// describe renders one event as a line of a trace.
func describe(ev audit.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d", ev.Seq)
	if ev.Cycle > 0 {
		fmt.Fprintf(&b, " cycle %d", ev.Cycle)
	}
	fmt.Fprintf(&b, " %s", ev.Time.UTC().Format(time.RFC3339))
	if ev.System != "" {
		fmt.Fprintf(&b, " %s", ev.System)
	}
	fmt.Fprintf(&b, " %s", ev.Kind)
	if u := ev.UnitNames(); len(u) > 0 {
		fmt.Fprintf(&b, " %s", strings.Join(u, ","))
	}
	switch {
	case ev.From != nil || ev.To != nil:
		fmt.Fprintf(&b, ": %s → %s", showValues(ev.From), showValues(ev.To))
	case ev.Deleted:
		b.WriteString(": deleted")
	}
	if !ev.Version.IsZero() {
		fmt.Fprintf(&b, " at %s", ev.FormatVersion(ev.Version))
	}
	for _, c := range ev.Candidates {
		fmt.Fprintf(&b, " [%s", c.System)
		if c.Canonical {
			b.WriteString(" canonical")
		}
		fmt.Fprintf(&b, " %s %s]", showValues(c.Values), ev.FormatVersion(c.Version))
	}
	if !ev.Modified.IsZero() || ev.By != "" {
		b.WriteString(" (changed there")
		if !ev.Modified.IsZero() {
			fmt.Fprintf(&b, " %s", ev.Modified.UTC().Format(time.RFC3339Nano))
		}
		if ev.By != "" {
			fmt.Fprintf(&b, " by %s", ev.By)
		}
		b.WriteString(")")
	}
	if ev.Rule != "" {
		fmt.Fprintf(&b, " rule %s", ev.Rule)
	}
	if ev.Reason != "" {
		fmt.Fprintf(&b, ": %s", ev.Reason)
	}
	if ev.Error != "" {
		fmt.Fprintf(&b, " error [%s] %s", ev.ErrorClass, ev.Error)
	}
	return b.String()
}

// showValues renders values sorted by field: {city:"Leeds" zip:"LS1"}.
func showValues(m map[string]concord.Value) string {
	if m == nil {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + showValue(m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// showValue renders one value: a string quoted, anything else as Go syntax.
func showValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%#v", v)
}

// Explanation says why a field of a record has its value, canonically and
// in each system.
type Explanation struct {
	Key, Field string
	// Unit is the field's unit (the field, or its group).
	Unit string
	// Value is the canonical value ([Redacted] for a sensitive field);
	// Known is false if the engine has no value for the unit.
	Value any
	Known bool
	// Version, Winner, Rule, Changed, Modified: how the canonical value
	// was set (see the decision in Decision).
	Version  concord.Version
	Winner   concord.SystemID
	Rule     string
	Changed  time.Time
	Modified time.Time
	// Decision is the audit event that set the value, when the log has it.
	// It may cover other units decided alike (audit.Event.Units).
	Decision *audit.Event
	// Held describes a hold on the unit (rule and reason), if any.
	Held string
	// Systems says, per system, whether it holds the canonical value.
	Systems []SystemExplanation
	// DeadLetters are the reasons of the record's dead letters (with
	// cleansing suggestions for a refused value, see [Cleansing]).
	DeadLetters []string
}

// SystemExplanation is one system's side of an [Explanation].
type SystemExplanation struct {
	System concord.SystemID
	// State is one of "in sync", "write pending", "write failing",
	// "dead-lettered", "deleted there", "not there".
	State string
	// Attempts and LastError of failing writes.
	Attempts  int
	LastError string
}

// Explain says why field of record key has its value: which edit from
// which system set it, under which rule, whether it is held, and for each
// system whether it holds it, or a write is pending, failing or
// dead-lettered. Sensitive values are [Redacted].
func (e *Engine) Explain(ctx context.Context, key, field string) (*Explanation, error) {
	states, err := e.store.Load(ctx, []string{key})
	if err != nil {
		return nil, err
	}
	u := e.layout.unitOf(field)
	x := &Explanation{Key: key, Field: field, Unit: u}
	st := states[key]
	if st == nil {
		// Not merged yet: perhaps refused on the way in.
		st = &state.Record{Key: key}
	}
	cu := st.Units.Value(u)
	if cu != nil {
		x.Known = true
		x.Value = st.Fields[field]
		if e.sens.is(field) && x.Value != nil {
			x.Value = Redacted
		}
		x.Version, x.Winner, x.Rule, x.Changed, x.Modified = cu.Version, cu.Winner, cu.Rule, cu.Changed, cu.Modified
		if cu.Hold != nil {
			x.Held = fmt.Sprintf("held by %s: %s (since %s)", cu.Hold.Rule, cu.Hold.Reason, cu.Hold.Since.UTC().Format(time.RFC3339))
		}
	}
	ids := make([]concord.SystemID, 0, len(st.Systems))
	for id := range st.Systems {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		v := st.Systems[id]
		se := SystemExplanation{System: id, Attempts: v.Attempts, LastError: v.LastError}
		switch {
		case !v.Seen:
			se.State = "not there"
		case v.Deleted && !st.Deleted:
			se.State = "deleted there"
		case v.Parked:
			se.State = "dead-lettered"
		case cu != nil && v.Holds(u, cu.Version):
			se.State = "in sync"
		case v.Attempts > 0:
			se.State = "write failing"
		default:
			se.State = "write pending"
		}
		x.Systems = append(x.Systems, se)
	}
	dead, err := e.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range dead {
		if d.Key == key {
			x.DeadLetters = append(x.DeadLetters, fmt.Sprintf("dead letter %d (%s, %s): %s", d.ID, d.System, d.Class, d.Reason))
		}
	}
	// The decision that set the value: the last merge.decided of the unit.
	for en, err := range e.auditEntries(ctx) {
		if err != nil {
			return nil, fmt.Errorf("concord: Explain %q/%q: %w", key, field, err)
		}
		if en.Event.Key == key && en.Event.Covers(u) && en.Event.Kind == audit.MergeDecided {
			ev := en.Event
			x.Decision = &ev
		}
	}
	return x, nil
}

// String renders the explanation for people.
func (x *Explanation) String() string {
	var b strings.Builder
	if !x.Known {
		fmt.Fprintf(&b, "%s.%s: no canonical value\n", x.Key, x.Field)
	} else {
		fmt.Fprintf(&b, "%s.%s = %s (unit %s, version %v)\n", x.Key, x.Field, showValue(x.Value), x.Unit, x.Version)
		fmt.Fprintf(&b, "  set by %s under rule %s at %s", orNone(string(x.Winner)), x.Rule, x.Changed.UTC().Format(time.RFC3339))
		if !x.Modified.IsZero() {
			fmt.Fprintf(&b, " (changed there %s)", x.Modified.UTC().Format(time.RFC3339Nano))
		}
		b.WriteByte('\n')
	}
	if x.Decision != nil {
		fmt.Fprintf(&b, "  decision: %s\n", describe(*x.Decision))
	}
	if x.Held != "" {
		fmt.Fprintf(&b, "  %s\n", x.Held)
	}
	for _, d := range x.DeadLetters {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	for _, s := range x.Systems {
		fmt.Fprintf(&b, "  %s: %s", s.System, s.State)
		if s.Attempts > 0 {
			fmt.Fprintf(&b, " (%d attempts; last error: %s)", s.Attempts, s.LastError)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(a merge)"
	}
	return s
}

// ErrNoRecord is returned by [Engine.Repair] for a key the engine has no
// state for.
var ErrNoRecord = errors.New("concord: no such record")

// Repair makes the engine forget what system holds of record key, so that
// the next cycle writes it every canonical value again (and unparks a
// dead-lettered write): the way to apply a reconciliation's repair, when
// a system drifted without the engine seeing it. It is audited
// (audit.RepairRequested) with person and reason, both required.
func (e *Engine) Repair(ctx context.Context, key string, system concord.SystemID, person, reason string) error {
	switch {
	case person == "":
		return fmt.Errorf("concord: Repair %q in %q: %w", key, system, ErrNoPerson)
	case reason == "":
		return fmt.Errorf("concord: Repair %q in %q: %w", key, system, ErrNoReason)
	}
	if _, ok := e.byID[system]; !ok {
		return fmt.Errorf("%w: Repair of %q in %q", ErrUnknownSystem, key, system)
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
	if st == nil {
		return fmt.Errorf("%w: %q", ErrNoRecord, key)
	}
	v := st.Systems[system]
	if v == nil {
		v = &state.View{}
		st.Systems[system] = v
	}
	v.Units.DeleteFunc(func(u string, _ state.Copy) bool { return u != resolve.RecordUnit })
	v.Native = nil
	v.Parked, v.Attempts, v.LastError = false, 0, ""
	return e.commitAudited(ctx, &batch{States: []*state.Record{st}}, []audit.Event{{Time: e.now(), Kind: audit.RepairRequested,
		System: system, Key: key, Reason: fmt.Sprintf("repair of %s in %s requested by %s: %s", key, system, person, reason)}})
}

// Plan is what a cycle would do now, computed without writing anything to
// any system or committing anything: the patches per system and the
// decisions it would need from a person.
type Plan struct {
	// Patches the cycle would send, per system, by record key order.
	Patches map[concord.SystemID][]connector.Patch
	// Holds the cycle would leave waiting for a person (new ones and
	// those already waiting), with their reasons.
	Holds []PlannedHold
	// Failures the dry run met (reads, transforms, merges).
	Failures []Failure
	// Records is the number of records it merged.
	Records int
}

// PlannedHold is a unit a dry run leaves held.
type PlannedHold struct {
	Key, Unit string
	Rule      string
	Reason    string
}

// Plan runs a cycle dry: it reads the changes of every system (Changes,
// Scan and Get only; cursors are not moved), merges them with the stored
// state, and returns the field-level patches it would write and the holds
// it would need, per system. It writes nothing to any system, commits
// nothing and emits no audit event. Sensitive values in the patches are
// [Redacted].
func (e *Engine) Plan(ctx context.Context) (*Plan, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, release, err := e.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	c.dry = true
	if err := c.pull(ctx); err != nil {
		return nil, err
	}
	if err := c.remerge(ctx); err != nil {
		return nil, err
	}
	keys, states, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	merged := c.merge(ctx, keys, states)
	writes := c.planWrites(ctx, merged)
	p := &Plan{Patches: map[concord.SystemID][]connector.Patch{}, Failures: c.report.Failures, Records: len(merged)}
	for i, s := range e.systems {
		for _, w := range writes[i] {
			patch := w.patch
			patch.Set = e.sens.redactValues(patch.Set)
			p.Patches[s.id] = append(p.Patches[s.id], patch)
		}
	}
	for _, st := range merged {
		for _, x := range st.Units { // sorted by name
			if h := x.Value.Hold; h != nil {
				p.Holds = append(p.Holds, PlannedHold{Key: st.Key, Unit: x.Name, Rule: h.Rule, Reason: h.Reason})
			}
		}
	}
	return p, nil
}

// String renders the plan for people.
func (p *Plan) String() string {
	var b strings.Builder
	ids := make([]concord.SystemID, 0, len(p.Patches))
	for id := range p.Patches {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fmt.Fprintf(&b, "plan: %d records merged\n", p.Records)
	for _, id := range ids {
		fmt.Fprintf(&b, "%s: %d patches\n", id, len(p.Patches[id]))
		for _, pt := range p.Patches[id] {
			what := "update"
			switch {
			case pt.Delete:
				what = "delete"
			case pt.Create:
				what = "create"
			}
			fmt.Fprintf(&b, "  %s %s %s\n", what, pt.Key, showValues(pt.Set))
		}
	}
	for _, h := range p.Holds {
		fmt.Fprintf(&b, "held %s/%s (%s): %s\n", h.Key, h.Unit, h.Rule, h.Reason)
	}
	for _, f := range p.Failures {
		fmt.Fprintf(&b, "failure: %v\n", f)
	}
	return b.String()
}

// FailurePatterns reads the store's audit log and ranks the combinations
// of attributes (system, direction, field, hour, day, and those attrs
// names for an event, such as region) whose failure rate stands out, as
// readable hypotheses: see package audit/patterns for the statistics.
// attrs may be nil.
func (e *Engine) FailurePatterns(ctx context.Context, attrs func(audit.Event) map[string]string, opts patterns.Options) ([]patterns.Pattern, error) {
	var events []audit.Event
	for en, err := range e.auditEntries(ctx) {
		if err != nil {
			return nil, fmt.Errorf("concord: FailurePatterns: %w", err)
		}
		events = append(events, en.Event)
	}
	obs, err := patterns.FromEvents(events, attrs)
	if err != nil {
		return nil, err
	}
	return patterns.Find(ctx, obs, opts)
}
