package resolve_test

import (
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

var (
	genSystems = []concord.SystemID{"billing", "erp", "portal", "warehouse"}
	genUnits   = []string{"stock", "price", resolve.RecordUnit}
	// Few distinct times, one written in another zone, and no time at all:
	// plenty of ties.
	genTimes  = []time.Time{t0, t0CEST, t1, {}}
	genValues = []concord.Value{1, 1.0, "x", nil}
)

// genConflict draws a conflict of 2 to 6 candidates, at most one canonical.
// Every candidate's version has a dot of its own (which also makes them
// pairwise concurrent), so candidates are told apart by System, Canonical
// and Version alone.
func genConflict(t *rapid.T) resolve.Conflict {
	unit := rapid.SampledFrom(genUnits).Draw(t, "unit")
	n := rapid.IntRange(2, 6).Draw(t, "n")
	canonical := rapid.IntRange(-1, n-1).Draw(t, "canonical")
	shared := rapid.Uint64Range(0, 2).Draw(t, "shared")
	c := resolve.Conflict{Key: "k", Unit: unit, Fields: []string{unit}}
	for i := range n {
		x := resolve.Candidate{
			System:    rapid.SampledFrom(genSystems).Draw(t, "system"),
			Canonical: i == canonical,
			Modified:  rapid.SampledFrom(genTimes).Draw(t, "modified"),
			Version: concord.MustVersion(
				concord.Dot{Actor: concord.Actor(i + 1), Counter: rapid.Uint64Range(1, 3).Draw(t, "counter")},
				concord.Dot{Actor: 99, Counter: shared}),
		}
		if unit == resolve.RecordUnit && rapid.Bool().Draw(t, "deleted") {
			x.Deleted = true
		} else {
			x.Values = map[string]concord.Value{"f": rapid.SampledFrom(genValues).Draw(t, "value")}
		}
		c.Candidates = append(c.Candidates, x)
	}
	return c
}

// TestOrderIndependence checks that every built-in, alone and chained,
// makes the same decision, naming the same winning candidate with the same
// Reason, however the candidates are ordered.
func TestOrderIndependence(t *testing.T) {
	sor := resolve.SystemOfRecord(map[string]concord.SystemID{"stock": "warehouse", resolve.RecordUnit: "erp"})
	resolvers := map[string]resolve.Resolver{
		"last-writer-wins": resolve.LastWriterWins(),
		"priority":         resolve.Priority("portal", "billing"),
		"system-of-record": sor,
		"delete-wins":      resolve.DeleteWins(),
		"update-wins":      resolve.UpdateWins(),
		"hold":             resolve.Hold(""),
		"chain": resolve.Chain(sor, resolve.UpdateWins(), resolve.LastWriterWins(),
			resolve.Priority("billing"), resolve.Hold("")),
		"per-unit": resolve.PerUnit(map[string]resolve.Resolver{
			"stock": sor, resolve.RecordUnit: resolve.DeleteWins(),
		}, resolve.LastWriterWins()),
	}
	for name, r := range resolvers {
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				c := genConflict(rt)
				shuffled := c
				shuffled.Candidates = rapid.Permutation(c.Candidates).Draw(rt, "shuffled")
				d1, d2 := mustResolve(rt, r, c), mustResolve(rt, r, shuffled)
				type decision struct {
					Result result
					Reason string
				}
				got1 := decision{resultOf(rt, c, d1), d1.Reason}
				got2 := decision{resultOf(rt, shuffled, d2), d2.Reason}
				if diff := cmp.Diff(got1, got2); diff != "" {
					rt.Fatalf("decision depends on candidate order (-original +shuffled):\n%s", diff)
				}
			})
		})
	}
}

// TestLastWriterWinsProperty checks LWW against its definition: it decides
// exactly when every candidate has a time, and then no candidate is later
// than the winner, and none as late has a smaller system name.
func TestLastWriterWinsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := genConflict(rt)
		d := mustResolve(rt, resolve.LastWriterWins(), c)
		allTimed := true
		for _, x := range c.Candidates {
			allTimed = allTimed && !x.Modified.IsZero()
		}
		if !allTimed {
			if d.Outcome != resolve.Undecided {
				rt.Fatalf("decided %v although a candidate has no time", d.Outcome)
			}
			return
		}
		if d.Outcome != resolve.Pick {
			rt.Fatalf("outcome %v; want pick", d.Outcome)
		}
		w := c.Candidates[d.Winner]
		for i, x := range c.Candidates {
			if x.Modified.After(w.Modified) || x.Modified.Equal(w.Modified) && x.System < w.System {
				rt.Fatalf("candidate %d (%s at %v) should beat the winner (%s at %v)", i, x.System, x.Modified, w.System, w.Modified)
			}
		}
	})
}
