package sync_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/resolve"
)

// checkCoalesced checks what a coalesced event must be: several units and
// no Unit, fields and values of exactly those units; and that no unit is
// told twice by one system's edits or one record's decisions of a cycle.
// It returns, per cycle/key/kind/system, the units covered.
func checkCoalesced(t *testing.T, events []audit.Event) map[string][]string {
	t.Helper()
	covered := map[string][]string{}
	for _, ev := range events {
		if ev.Kind != audit.EditObserved && ev.Kind != audit.MergeDecided {
			if len(ev.Units) > 0 {
				t.Errorf("%s event covers units %v: only edits and decisions are coalesced", ev.Kind, ev.Units)
			}
			continue
		}
		if len(ev.Units) > 0 {
			if ev.Unit != "" || len(ev.Units) < 2 {
				t.Errorf("%s %s: Unit %q with Units %v; want no Unit and at least two Units", ev.Kind, ev.Key, ev.Unit, ev.Units)
			}
			if slices.Contains(ev.Units, resolve.RecordUnit) {
				t.Errorf("%s %s: the record's existence coalesced with fields: %v", ev.Kind, ev.Key, ev.Units)
			}
			// Here every unit is one field of its name.
			if !slices.Equal(ev.Fields, ev.Units) {
				t.Errorf("%s %s: fields %v for units %v", ev.Kind, ev.Key, ev.Fields, ev.Units)
			}
		}
		for _, m := range []map[string]concord.Value{ev.From, ev.To} {
			for f := range m {
				if !slices.Contains(ev.Fields, f) {
					t.Errorf("%s %s: value of %s, which is not among its fields %v", ev.Kind, ev.Key, f, ev.Fields)
				}
			}
		}
		k := fmt.Sprintf("%d/%s/%s/%s", ev.Cycle, ev.Key, ev.Kind, ev.System)
		if ev.Kind == audit.MergeDecided {
			k = fmt.Sprintf("%d/%s/%s", ev.Cycle, ev.Key, ev.Kind)
		}
		for _, u := range ev.UnitNames() {
			if slices.Contains(covered[k], u) {
				t.Errorf("%s: unit %s told twice", k, u)
			}
			covered[k] = append(covered[k], u)
		}
	}
	for k := range covered {
		slices.Sort(covered[k])
	}
	return covered
}

// A record's first sync is audited as one edit and one decision for all its
// fields (and one of each for its existence), not two events per field:
// every value is still in the trail, the report still counts every field,
// and Explain finds the decision of any one field in it.
func TestFirstSyncIsOneEventPerStep(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "z"})
	r.sys["a"].Edit("k1", map[string]concord.Value{"n": int64(1), "s": "x", "t": true})
	rep := r.cycle()
	r.requireAll("k1", map[string]concord.Value{"n": int64(1), "s": "x", "t": true})
	evs := r.audit.Events()
	checkCoalesced(t, evs)

	edit := r.audit.Require(t, audittest.Match{Kind: audit.EditObserved, Key: "k1", Unit: "s"})
	if !slices.Equal(edit.Units, []string{"n", "s", "t"}) || edit.System != "a" {
		t.Errorf("edit event covers %v from %s; want n, s, t from a", edit.Units, edit.System)
	}
	if want := map[string]concord.Value{"n": int64(1), "s": "x", "t": true}; !maps.EqualFunc(edit.To, want, concord.EqualValues) {
		t.Errorf("edit event To %v; want %v", edit.To, want)
	}
	dec := r.audit.Require(t, audittest.Match{Kind: audit.MergeDecided, Key: "k1", Unit: "t"})
	if !slices.Equal(dec.Units, []string{"n", "s", "t"}) || dec.Rule != "fast-forward" || dec.System != "a" {
		t.Errorf("decision covers %v by %s (%s); want n, s, t, a's, fast-forward", dec.Units, dec.System, dec.Rule)
	}
	if got := len(r.audit.Filter(audittest.Match{Kind: audit.EditObserved, Key: "k1"})); got != 2 {
		t.Errorf("%d edit events for the new record; want 2 (its fields, its existence)", got)
	}
	if got := len(r.audit.Filter(audittest.Match{Kind: audit.MergeDecided, Key: "k1"})); got != 2 {
		t.Errorf("%d decision events for the new record; want 2 (its fields, its existence)", got)
	}
	if got := rep.Systems["a"].Edits; got != 4 {
		t.Errorf("report counts %d edits from a; want 4 (three fields and the record)", got)
	}
	x, err := r.engine.Explain(context.Background(), "k1", "s")
	if err != nil {
		t.Fatal(err)
	}
	if x.Decision == nil || !x.Decision.Covers("s") || x.Decision.Kind != audit.MergeDecided {
		t.Errorf("Explain(k1, s) decision %+v; want the decision covering s", x.Decision)
	}
	if _, err := r.engine.VerifyAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Only what is alike is joined: edits of one system with one version, and
// decisions with the same winner, version and rule. Edits from another
// system, a conflict's decision and edits made on different versions stay
// apart, and no unit is told twice.
func TestCoalescingKeepsUnlikeEventsApart(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "z"}, withResolver(resolve.LastWriterWins()))
	r.sys["a"].Edit("k1", map[string]concord.Value{"n": int64(1), "s": "x", "t": true, "u": "u0"})
	r.settle()
	// z edits u alone first: u's version moves on without the others.
	r.sys["z"].Edit("k1", map[string]concord.Value{"u": "u1"})
	r.settle()
	start := len(r.audit.Events())
	// Now a edits n, s and u in one report (u on a newer version than n and
	// s), and z edits n and t concurrently: n is a conflict.
	r.sys["a"].Edit("k1", map[string]concord.Value{"n": int64(2), "s": "y", "u": "u2"})
	r.sys["z"].Edit("k1", map[string]concord.Value{"n": int64(3), "t": false})
	r.cycle()
	evs := r.audit.Events()[start:]
	covered := checkCoalesced(t, evs)
	cycle := evs[0].Cycle
	if got := covered[fmt.Sprintf("%d/k1/%s/a", cycle, audit.EditObserved)]; !slices.Equal(got, []string{"n", "s", "u"}) {
		t.Errorf("a's edits cover %v; want n, s, u", got)
	}
	if got := covered[fmt.Sprintf("%d/k1/%s/z", cycle, audit.EditObserved)]; !slices.Equal(got, []string{"n", "t"}) {
		t.Errorf("z's edits cover %v; want n, t", got)
	}
	if got := covered[fmt.Sprintf("%d/k1/%s", cycle, audit.MergeDecided)]; !slices.Equal(got, []string{"n", "s", "t", "u"}) {
		t.Errorf("decisions cover %v; want n, s, t, u", got)
	}
	for _, ev := range evs {
		if ev.Kind == audit.EditObserved && ev.System == "a" && ev.Covers("u") && ev.Covers("s") {
			t.Errorf("a's edit of u (on z's newer version) joined with its edit of s: %v", ev.Units)
		}
		if ev.Kind == audit.MergeDecided && ev.Covers("n") && len(ev.UnitNames()) > 1 {
			t.Errorf("the conflict's decision on n joined with others: %v (%s)", ev.Units, ev.Rule)
		}
		if ev.Kind == audit.MergeDecided && ev.Covers("t") && ev.Covers("s") {
			t.Errorf("z's t and a's s decided as one event: %v", ev.Units)
		}
	}
	if len(r.audit.Filter(audittest.Match{Kind: audit.ConflictDetected, Key: "k1", Unit: "n"})) != 1 {
		t.Error("no conflict on n")
	}
}
