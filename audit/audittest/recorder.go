// Package audittest records audit events in memory for tests, the way
// zaptest/observer records log entries: wire a [Recorder] in as the engine's
// [audit.Sink], run a cycle, then ask what was recorded.
//
//	rec := audittest.New()
//	// ... run the engine with rec as its sink ...
//	ev := rec.Require(t, audittest.Match{Kind: audit.MergeDecided, Key: "cust-1", Unit: "email"})
//	rec.RequireNone(t, audittest.Match{Kind: audit.ConflictDetected})
//
// When a Require helper fails, its message lists the recorded events, one
// line each (kind, key, system, unit, rule), marking those that match, so
// the failure says what happened instead of only what did not.
//
// The Require helpers report failure with t.Fatalf, which ends the test (or
// subtest) at once, so like t.Fatalf they must be called from the goroutine
// running the test. Given a testing.TB whose Fatalf returns, they return
// after reporting (Require then returns the zero Event).
package audittest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

// Recorder is an [audit.Sink] that keeps every event in memory, in the order
// of the Emit calls. It is safe for concurrent use. The zero value is an
// empty Recorder ready to use; [New] returns one too.
//
// Emit keeps a deep copy of each event, so an emitter that later changes
// its maps or slices does not change what was recorded. The events that
// Events, Filter and the Require helpers return share their maps and slices
// with the Recorder: do not modify them.
type Recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

var _ audit.Sink = (*Recorder)(nil)

// New returns an empty Recorder.
func New() *Recorder { return &Recorder{} }

// Emit records the events. It never fails and ignores ctx.
func (r *Recorder) Emit(_ context.Context, events []audit.Event) error {
	copies := make([]audit.Event, len(events))
	for i := range events {
		copies[i] = cloneEvent(events[i])
	}
	r.mu.Lock()
	r.events = append(r.events, copies...)
	r.mu.Unlock()
	return nil
}

// Events returns the recorded events in order, in a new slice.
func (r *Recorder) Events() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.events...)
}

// Len returns the number of recorded events.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Reset forgets every recorded event.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}

// Match selects events by their identifying fields. A zero field matches
// anything, so the zero Match matches every event.
type Match struct {
	Kind   audit.Kind
	Key    string
	System concord.SystemID
	Unit   string
	Rule   concord.Rule
}

// Matches reports whether ev has every non-zero field of m.
func (m Match) Matches(ev audit.Event) bool {
	return (m.Kind == "" || ev.Kind == m.Kind) &&
		(m.Key == "" || ev.Key == m.Key) &&
		(m.System == "" || ev.System == m.System) &&
		(m.Unit == "" || ev.Covers(m.Unit)) &&
		(m.Rule == "" || ev.Rule == m.Rule)
}

// String lists the non-zero fields of m ("kind=merge.decided key=\"c1\""),
// or "any event" for the zero Match.
func (m Match) String() string {
	s := describe(audit.Event{Kind: m.Kind, Key: m.Key, System: m.System, Unit: m.Unit, Rule: m.Rule})
	if s == "" {
		return "any event"
	}
	if m.Kind != "" {
		s = "kind=" + s
	}
	return s
}

// Filter returns the recorded events that m matches, in order.
func (r *Recorder) Filter(m Match) []audit.Event { return r.FilterFunc(m.Matches) }

// FilterFunc returns the recorded events for which keep returns true, in
// order. keep is called without the Recorder's lock held.
func (r *Recorder) FilterFunc(keep func(audit.Event) bool) []audit.Event {
	var out []audit.Event
	for _, ev := range r.Events() {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// Count returns the number of recorded events that m matches.
func (r *Recorder) Count(m Match) int { return len(r.Filter(m)) }

// Require returns the first recorded event that m matches. If none does, it
// fails t, listing what was recorded.
func (r *Recorder) Require(t testing.TB, m Match) audit.Event {
	t.Helper()
	events := r.Events()
	for _, ev := range events {
		if m.Matches(ev) {
			return ev
		}
	}
	t.Fatalf("audittest: no event matches %s; %s", m, listing(events, m))
	return audit.Event{}
}

// RequireNone fails t, listing what was recorded, if any recorded event
// matches m.
func (r *Recorder) RequireNone(t testing.TB, m Match) {
	t.Helper()
	r.RequireCount(t, m, 0)
}

// RequireCount fails t, listing what was recorded, unless exactly n
// recorded events match m.
func (r *Recorder) RequireCount(t testing.TB, m Match, n int) {
	t.Helper()
	events := r.Events()
	got := 0
	for _, ev := range events {
		if m.Matches(ev) {
			got++
		}
	}
	if got != n {
		t.Fatalf("audittest: %d events match %s, want %d; %s", got, m, n, listing(events, m))
	}
}

// maxListed caps the listing in failure messages.
const maxListed = 100

// listing formats events one per line, marking those m matches with '*'.
func listing(events []audit.Event, m Match) string {
	if len(events) == 0 {
		return "no events were recorded"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d recorded (* = matches):", len(events))
	for i, ev := range events {
		if i == maxListed {
			fmt.Fprintf(&sb, "\n\t... and %d more", len(events)-maxListed)
			break
		}
		mark := ' '
		if m.Matches(ev) {
			mark = '*'
		}
		fmt.Fprintf(&sb, "\n\t%c %3d  %s", mark, i, describe(ev))
	}
	return sb.String()
}

// describe formats the identifying fields of ev on one line: kind, then
// key, system, unit and rule when set.
func describe(ev audit.Event) string {
	parts := make([]string, 0, 5)
	if ev.Kind != "" {
		parts = append(parts, string(ev.Kind))
	}
	if ev.Key != "" {
		parts = append(parts, fmt.Sprintf("key=%q", ev.Key))
	}
	if ev.System != "" {
		parts = append(parts, "system="+string(ev.System))
	}
	if ev.Unit != "" {
		parts = append(parts, "unit="+ev.Unit)
	}
	if len(ev.Units) > 0 {
		parts = append(parts, "units="+strings.Join(ev.Units, ","))
	}
	if ev.Rule != "" {
		parts = append(parts, "rule="+ev.Rule.String())
	}
	return strings.Join(parts, " ")
}

// cloneEvent returns a deep copy of ev.
func cloneEvent(ev audit.Event) audit.Event {
	ev.Fields = slices.Clone(ev.Fields)
	ev.Actors = maps.Clone(ev.Actors)
	ev.From = concord.CloneFields(ev.From)
	ev.To = concord.CloneFields(ev.To)
	if ev.Candidates != nil {
		cands := make([]audit.Candidate, len(ev.Candidates))
		for i, c := range ev.Candidates {
			c.Values = concord.CloneFields(c.Values)
			cands[i] = c
		}
		ev.Candidates = cands
	}
	return ev
}
