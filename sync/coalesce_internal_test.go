package sync

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/resolve"
)

// TestCoalesceJoinsOnlyAlikeEvents: two decisions that differ in anything
// but their unit and values stay two events; alike ones become one whose
// fields and values are both's, without changing the maps they came with
// (the merge shares them).
func TestCoalesceJoinsOnlyAlikeEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ver := func(dots ...concord.Dot) concord.Version {
		v, err := concord.NewVersion(dots...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := ver(concord.Dot{Actor: 1, Counter: 2})
	ev := func(kind audit.Kind, unit string, val string) audit.Event {
		return audit.Event{Time: t0, Kind: kind, Cycle: 3, System: "a", Key: "k", Unit: unit, Fields: []string{unit},
			From: map[string]concord.Value{unit: "old"}, To: map[string]concord.Value{unit: val}, Version: v,
			Rule: "fast-forward", Modified: t0, By: "ann"}
	}
	unlike := map[string]func(*audit.Event){
		"kind":       func(e *audit.Event) { e.Kind = audit.ChangeRefused },
		"record":     func(e *audit.Event) { e.Unit = resolve.RecordUnit },
		"deleted":    func(e *audit.Event) { e.Deleted = true },
		"key":        func(e *audit.Event) { e.Key = "k2" },
		"system":     func(e *audit.Event) { e.System = "z" },
		"cycle":      func(e *audit.Event) { e.Cycle = 4 },
		"rule":       func(e *audit.Event) { e.Rule = "last-writer-wins" },
		"reason":     func(e *audit.Event) { e.Reason = "why" },
		"by":         func(e *audit.Event) { e.By = "bob" },
		"modified":   func(e *audit.Event) { e.Modified = t0.Add(time.Second) },
		"error":      func(e *audit.Event) { e.Error = "x" },
		"class":      func(e *audit.Event) { e.ErrorClass = "x" },
		"candidates": func(e *audit.Event) { e.Candidates = []audit.Candidate{{System: "a"}} },
		"version": func(e *audit.Event) {
			e.Version = ver(concord.Dot{Actor: 1, Counter: 2}, concord.Dot{Actor: 2, Counter: 1})
		},
	}
	for _, kind := range []audit.Kind{audit.EditObserved, audit.MergeDecided} {
		for name, change := range unlike {
			if name == "kind" && kind == audit.MergeDecided {
				continue
			}
			b := ev(kind, "b", "B")
			change(&b)
			got := coalesce([]audit.Event{ev(kind, "a", "A"), b}, 0)
			if len(got) != 2 {
				t.Errorf("%s events differing in %s: joined into %d", kind, name, len(got))
			}
		}
		for _, other := range []audit.Kind{audit.ConflictDetected, audit.WriteAttempted} {
			if got := coalesce([]audit.Event{ev(other, "a", "A"), ev(other, "b", "B")}, 0); len(got) != 2 {
				t.Errorf("%s events joined", other)
			}
		}
		a, b, c := ev(kind, "a", "A"), ev(kind, "b", "B"), ev(kind, "c", "C")
		c.Version = ver(concord.Dot{Actor: 1, Counter: 2}) // a copy: Equal, not the same slice
		c.From = nil                                       // had no value
		before := ev(audit.WriteFailed, "x", "X")
		aTo := a.To
		got := coalesce([]audit.Event{before, a, b, c, ev(audit.ConflictDetected, "d", "D")}, 1)
		if len(got) != 3 || got[0].Kind != audit.WriteFailed || got[2].Kind != audit.ConflictDetected {
			t.Fatalf("%s: %d events after coalescing, want the one before, one joined, the conflict", kind, len(got))
		}
		j := got[1]
		if j.Unit != "" || !slices.Equal(j.Units, []string{"a", "b", "c"}) || !slices.Equal(j.Fields, []string{"a", "b", "c"}) {
			t.Errorf("%s joined: unit %q units %v fields %v", kind, j.Unit, j.Units, j.Fields)
		}
		if want := map[string]concord.Value{"a": "A", "b": "B", "c": "C"}; !maps.Equal(j.To, want) {
			t.Errorf("%s joined To %v, want %v", kind, j.To, want)
		}
		if want := map[string]concord.Value{"a": "old", "b": "old"}; !maps.Equal(j.From, want) {
			t.Errorf("%s joined From %v, want %v", kind, j.From, want)
		}
		if len(aTo) != 1 || j.Time != t0 || j.Version.Compare(v) != concord.Equal || j.Rule != "fast-forward" || j.By != "ann" {
			t.Errorf("%s: the first event's map was changed (%v) or its details lost (%+v)", kind, aTo, j)
		}
	}
	// A group among the units: Fields lists the fields of each, in order,
	// and the units stay as they were (Fields is not Units then).
	g, f := ev(audit.MergeDecided, "addr", "X"), ev(audit.MergeDecided, "b", "B")
	g.Fields, g.To = []string{"street", "zip"}, map[string]concord.Value{"street": "S", "zip": "Z"}
	got := coalesce([]audit.Event{g, f}, 0)
	if len(got) != 1 || !slices.Equal(got[0].Units, []string{"addr", "b"}) || !slices.Equal(got[0].Fields, []string{"street", "zip", "b"}) {
		t.Fatalf("group joined: %+v", got)
	}
	got[0].Units = append(got[0].Units, "more") // must not run into Fields
	if !slices.Equal(got[0].Fields, []string{"street", "zip", "b"}) {
		t.Errorf("appending to Units changed Fields: %v", got[0].Fields)
	}
	if got := coalesce(nil, 0); len(got) != 0 {
		t.Errorf("coalesce(nil) = %v", got)
	}
}
