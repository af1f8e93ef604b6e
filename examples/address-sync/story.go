package main

// The machinery of the story: its clock, how it prints, and what it reports
// to its test. Nothing here is needed to use Concord.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector/rest/resttest"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// outcome is what run reports besides its output, for its test.
type outcome struct {
	scenes []scene
	// requests are what the warehouse's API served, oldest first: the
	// clerks' edits and Concord's reads and writes.
	requests []resttest.Request
	// portalVersion is the version column of the customer's row at the
	// end: one more for every write, by a person or by Concord.
	portalVersion int64
}

// scene is the state after one scene.
type scene struct {
	title string
	// records holds the customer's fields in each system, in the
	// system's own names.
	records map[concord.SystemID]map[string]concord.Value
	// events are the audit events of the scene's cycles.
	events []audit.Event
	// lost lists the edits a record-level last-writer-wins sync would
	// have lost (scene 2 only).
	lost []lostEdit
}

// lostEdit is a system's edit of a canonical field.
type lostEdit struct {
	System concord.SystemID
	Field  string
}

func (w *world) heading(title string) {
	fmt.Fprintf(w.out, "\n== %s ==\n", title)
}

// edit is a person editing system s at time at, in the system's own field
// names: with SQL in the portal, through the API in the warehouse.
func (w *world) edit(ctx context.Context, at string, s concord.SystemID, who string, f map[string]concord.Value) error {
	w.clock.Set(at)
	did, err := w.sys.edit(ctx, s, f)
	if err != nil {
		return fmt.Errorf("%s at %s, %s: %w", s, at, who, err)
	}
	fmt.Fprintf(w.out, "%s  %-9s  %s:\n%s%s\n", at, s, who, strings.Repeat(" ", 9), did)
	return nil
}

// cycle runs one engine cycle and prints what it did. Then it runs another,
// which reads the writes back from each system's change feed: such an echo
// must be no edit and cause no write.
func (w *world) cycle(ctx context.Context) error {
	at := w.clock.Now().Format("15:04")
	rep, err := w.engine.RunCycle(ctx)
	if err != nil {
		return fmt.Errorf("cycle at %s: %w", at, err)
	}
	fmt.Fprintf(w.out, "%s  cycle %-2d  %s\n", at, rep.Cycle, summary(rep))
	w.printEvents()
	echo, err := w.engine.RunCycle(ctx)
	if err != nil {
		return fmt.Errorf("cycle at %s: %w", at, err)
	}
	for _, id := range systems {
		if s := echo.Systems[id]; s.Edits != 0 || s.Writes != 0 {
			return fmt.Errorf("cycle %d, reading back the writes of cycle %d: %s: %d edits, %d writes; want none",
				echo.Cycle, rep.Cycle, id, s.Edits, s.Writes)
		}
	}
	fmt.Fprintf(w.out, "%s  cycle %-2d  reads its own writes back: no edit, no write\n", at, echo.Cycle)
	w.shown = len(w.events)
	return nil
}

// summary says in a few words what a cycle did in each system.
func summary(rep *recsync.Report) string {
	var out []string
	for _, id := range systems {
		s := rep.Systems[id]
		var p []string
		for _, c := range []struct {
			n    int
			what string
		}{{s.Edits, "edit"}, {s.Conflicts, "conflict"}, {s.Refused, "refusal"}, {s.Writes, "write"}} {
			switch {
			case c.n == 1:
				p = append(p, "1 "+c.what)
			case c.n > 1:
				p = append(p, fmt.Sprintf("%d %ss", c.n, c.what))
			}
		}
		if len(p) == 0 {
			p = []string{"nothing"}
		}
		out = append(out, fmt.Sprintf("%s: %s", id, strings.Join(p, ", ")))
	}
	return strings.Join(out, "; ")
}

// printEvents prints the merge steps of the audit events not yet shown.
func (w *world) printEvents() {
	for _, ev := range w.events[w.shown:] {
		if w.quiet || ev.Unit == resolve.RecordUnit {
			continue
		}
		var line string
		unit := strings.Join(ev.UnitNames(), ", ") // edits and decisions alike are one event
		switch ev.Kind {
		case audit.EditObserved:
			line = fmt.Sprintf("%s edited %s: %s -> %s", ev.System, unit, showUnit(ev.From, ev.Fields), showUnit(ev.To, ev.Fields))
		case audit.ConflictDetected:
			var cs []string
			for _, c := range ev.Candidates {
				if !c.Canonical {
					cs = append(cs, fmt.Sprintf("%s has %s", c.System, showUnit(c.Values, ev.Fields)))
				}
			}
			line = fmt.Sprintf("%s: %s", ev.Unit, strings.Join(cs, " | "))
		case audit.MergeDecided, audit.ChangeRefused:
			verb := "by"
			if ev.Kind == audit.ChangeRefused {
				verb = "refused by"
			}
			line = fmt.Sprintf("%s = %s (%s's edit) %s rule %s", unit, showUnit(ev.To, ev.Fields), ev.System, verb, ev.Rule)
			if ev.Reason != "" {
				line += ": " + ev.Reason
			}
		case audit.ConflictHeld:
			line = fmt.Sprintf("%s held for a person, rule %s: %s", ev.Unit, ev.Rule, ev.Reason)
		default:
			continue
		}
		fmt.Fprintf(w.out, "         audit %-17s %s\n", ev.Kind, line)
	}
}

// endScene records and prints the customer's fields in every system, and
// checks that the systems agree on every field they both keep: a
// disagreement after a cycle and its echo would be an engine bug.
func (w *world) endScene(ctx context.Context, title string, lost []lostEdit) (scene, error) {
	sc := scene{title: title, records: map[concord.SystemID]map[string]concord.Value{},
		events: append([]audit.Event(nil), w.events[w.started:]...), lost: lost}
	w.started = len(w.events)
	for _, id := range systems {
		rec, _, err := w.sys.read(ctx, id)
		if err != nil {
			return sc, err
		}
		sc.records[id] = rec.Fields
	}
	w.result.scenes = append(w.result.scenes, sc)

	tw := tabwriter.NewWriter(w.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  now:\tportal\twarehouse")
	for _, f := range fields {
		fmt.Fprintf(tw, "  %s", f.canonical)
		for _, id := range systems {
			cell := "-"
			if v, ok := sc.records[id][f.in(id)]; ok {
				cell = show(v)
			}
			fmt.Fprintf(tw, "\t%s", cell)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()

	views := map[concord.SystemID]map[string]concord.Value{}
	for _, id := range systems {
		v, err := w.canonical(ctx, id)
		if err != nil {
			return sc, err
		}
		views[id] = v
	}
	for _, f := range fields {
		a, okA := views[portal][f.canonical]
		b, okB := views[warehouse][f.canonical]
		if okA && okB && !concord.EqualValues(a, b) {
			return sc, fmt.Errorf("after scene %q: %s is %s in the portal but %s in the warehouse",
				title, f.canonical, show(a), show(b))
		}
	}
	return sc, nil
}

// canonical returns the customer's record in system s, mapped to the
// canonical fields by the system's inbound mapping.
func (w *world) canonical(ctx context.Context, s concord.SystemID) (map[string]concord.Value, error) {
	rec, ok, err := w.sys.read(ctx, s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s has no record %q", s, customer)
	}
	c, err := w.maps[s].Inbound().Transform(ctx, rec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return c.Fields, nil
}

func (w *world) addressOf(sc scene, s concord.SystemID) string {
	var parts []string
	for _, f := range fields {
		if v, ok := sc.records[s][f.in(s)]; ok && slices.Contains(address, f.canonical) {
			parts = append(parts, fmt.Sprint(v))
		}
	}
	return strings.Join(parts, ", ")
}

// recordLevelLWW works out what a sync that copies whole records would do
// with the systems' current records: the most recently modified record
// wins, and every edit of the other system since base (the values both
// held) that the winner does not share is lost.
func (w *world) recordLevelLWW(ctx context.Context, base map[string]concord.Value) (winner, loser concord.SystemID, lost []lostEdit, err error) {
	p, _, err := w.sys.read(ctx, portal)
	if err != nil {
		return "", "", nil, err
	}
	wh, _, err := w.sys.read(ctx, warehouse)
	if err != nil {
		return "", "", nil, err
	}
	winner, loser = portal, warehouse
	if wh.Modified.After(p.Modified) {
		winner, loser = warehouse, portal
	}
	win, err := w.canonical(ctx, winner)
	if err != nil {
		return "", "", nil, err
	}
	lose, err := w.canonical(ctx, loser)
	if err != nil {
		return "", "", nil, err
	}
	for _, f := range fields {
		lv, inLoser := lose[f.canonical]
		wv, inWinner := win[f.canonical]
		if inLoser && inWinner && !concord.EqualValues(lv, base[f.canonical]) && !concord.EqualValues(lv, wv) {
			lost = append(lost, lostEdit{loser, f.canonical})
		}
	}
	return winner, loser, lost, nil
}

// fieldByField merges the systems' edits of the address as a sync that
// merges field by field would: per field, the value of the system that
// changed it since base, the one modified last if several did.
func (w *world) fieldByField(ctx context.Context, base map[string]concord.Value, edits map[concord.SystemID]map[string]concord.Value) (map[string]concord.Value, error) {
	modified := map[concord.SystemID]time.Time{}
	for _, id := range systems {
		r, _, err := w.sys.read(ctx, id)
		if err != nil {
			return nil, err
		}
		modified[id] = r.Modified
	}
	order := slices.Clone(systems)
	slices.SortStableFunc(order, func(a, b concord.SystemID) int {
		return modified[a].Compare(modified[b])
	})
	out := maps.Clone(base)
	for _, id := range order { // later edits overwrite earlier ones
		for f, v := range edits[id] {
			if !concord.EqualValues(v, base[f]) {
				out[f] = v
			}
		}
	}
	return out, nil
}

// decision returns the audit event that decided unit in events.
func decision(events []audit.Event, unit string) (audit.Event, bool) {
	for _, ev := range events {
		if ev.Kind == audit.MergeDecided && ev.Covers(unit) {
			return ev, true
		}
	}
	return audit.Event{}, false
}

// pick returns the values of names in m.
func pick(m map[string]concord.Value, names []string) map[string]concord.Value {
	out := map[string]concord.Value{}
	for _, n := range names {
		if v, ok := m[n]; ok {
			out[n] = v
		}
	}
	return out
}

// showUnit formats the values of a unit's fields in display order, in
// brackets for a group.
func showUnit(vals map[string]concord.Value, names []string) string {
	var parts []string
	for _, f := range fields {
		for _, n := range names {
			if n == f.canonical {
				if v, ok := vals[n]; ok {
					parts = append(parts, show(v))
				}
			}
		}
	}
	switch {
	case len(parts) == 0:
		return "(none)"
	case len(names) > 1:
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return parts[0]
}

// show formats a value for the tables and audit lines.
func show(v concord.Value) string { return fmt.Sprint(v) }

// fieldIn returns what system s calls the canonical field name.
func fieldIn(name string, s concord.SystemID) string {
	for _, f := range fields {
		if f.canonical == name {
			return f.in(s)
		}
	}
	return name
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
