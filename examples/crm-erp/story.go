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

	"github.com/concordsync/concord"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/transform/dedupe"
)

// outcome is what run reports besides its output, for its test.
type outcome struct {
	// scenes holds every record of each system after each scene.
	scenes []scene
	// deadLetters lists the dead letters after scene 3 and after scene 4.
	deadLetters [][]recsync.DeadLetter
	// suggestions are the duplicates found in the CRM (scene 5).
	suggestions []dedupe.Suggestion
	// final holds every record of each system at the end, by key, in the
	// system's own field names.
	final map[concord.SystemID]map[string]map[string]concord.Value
}

// scene is the state after one scene.
type scene struct {
	title   string
	records map[concord.SystemID]map[string]map[string]concord.Value // system, key, field
}

func (w *world) heading(title string) {
	fmt.Fprintf(w.out, "\n== %s ==\n", title)
}

// edit is a person editing record key of system s at time at, in the
// system's own field names.
func (w *world) edit(at string, s concord.SystemID, key, who string, f map[string]concord.Value) {
	w.clock.Set(at)
	w.fakes[s].Edit(key, f)
	var parts []string
	for _, fn := range fields {
		if v, ok := f[fn.in(s)]; ok {
			parts = append(parts, fn.in(s)+"="+quote(v))
		}
	}
	fmt.Fprintf(w.out, "%s  %-3s %s  %s: %s\n", at, s, key, who, strings.Join(parts, " "))
}

// endScene records every record of both systems, and checks that the
// systems agree, in canonical form, on every record they both hold: a
// disagreement after a cycle and its echo would be an engine bug.
func (w *world) endScene(ctx context.Context, title string) error {
	sc := scene{title: title, records: map[concord.SystemID]map[string]map[string]concord.Value{}}
	for _, id := range systems {
		sc.records[id] = map[string]map[string]concord.Value{}
		for _, r := range w.fakes[id].Records() {
			sc.records[id][r.Key] = r.Fields
		}
	}
	w.result.scenes = append(w.result.scenes, sc)
	for _, key := range keys(sc.records[crm]) {
		if _, ok := sc.records[erp][key]; !ok {
			continue
		}
		a, errA := w.canonical(ctx, crm, key)
		b, errB := w.canonical(ctx, erp, key)
		if err := cmpErr(errA, errB); err != nil {
			return fmt.Errorf("after scene %q: %w", title, err)
		}
		if !concord.EqualValues(a, b) {
			return fmt.Errorf("after scene %q: %s is %v in the CRM but %v in the ERP", title, key, a, b)
		}
	}
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// canonical returns record key of system s, mapped to the canonical fields
// by the system's inbound mapping.
func (w *world) canonical(ctx context.Context, s concord.SystemID, key string) (map[string]concord.Value, error) {
	rec, ok := w.fakes[s].Record(key)
	if !ok {
		return nil, fmt.Errorf("%s has no record %q", s, key)
	}
	c, err := w.maps[s].Inbound().Transform(ctx, rec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	return c.Fields, nil
}

// show prints records side by side, each system in its own shape.
func (w *world) show(keys ...string) {
	for _, key := range keys {
		recs := map[concord.SystemID]concord.Record{}
		for _, id := range systems {
			recs[id], _ = w.fakes[id].Record(key)
		}
		w.table(key, func(f field) []string {
			row := []string{f.canonical}
			for _, id := range systems {
				cell := "-"
				if v, ok := recs[id].Fields[f.in(id)]; ok {
					cell = show(v)
				}
				row = append(row, cell)
			}
			return row
		}, systems...)
	}
}

// table prints one row per canonical field under the headings first and
// cols.
func (w *world) table(first string, row func(field) []string, cols ...concord.SystemID) {
	tw := tabwriter.NewWriter(w.out, 0, 0, 2, ' ', 0)
	head := []string{first}
	for _, c := range cols {
		head = append(head, string(c))
	}
	fmt.Fprintln(tw, "  "+strings.Join(head, "\t"))
	for _, f := range fields {
		fmt.Fprintln(tw, "  "+strings.Join(row(f), "\t"))
	}
	_ = tw.Flush()
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
		}{{s.Edits, "edit"}, {s.Quarantined, "quarantined"}, {s.Writes, "write"}} {
			switch {
			case c.n == 0:
			case c.what == "quarantined":
				p = append(p, fmt.Sprintf("%d quarantined", c.n))
			case c.n == 1:
				p = append(p, "1 "+c.what)
			default:
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

// keys returns the keys of m in order.
func keys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// show formats a value for the tables.
func show(v concord.Value) string { return fmt.Sprint(v) }

// quote formats a value as a person typed it: strings quoted.
func quote(v concord.Value) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}
