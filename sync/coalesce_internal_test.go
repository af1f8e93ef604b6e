package sync

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// coalesce replays events[from:] as the merge makes them: the kinds that
// may be joined through emit, the others appended as they are.
func coalesce(events []audit.Event, from int) []audit.Event {
	return replay(events, from, func(int) bool { return false })
}

// replay is coalesce, giving the To of the i-th event as an edit's (see
// emit) where lazy(i) says so and the event is about a one-field unit
// whose To has just that field.
func replay(events []audit.Event, from int, lazy func(i int) bool) []audit.Event {
	var now time.Time
	l, err := newLayout(nil)
	if err != nil {
		panic(err)
	}
	m := &merger{now: func() time.Time { return now }, layout: l}
	m.events = slices.Clone(events[:from])
	m.floor = from
	st := &state.Record{}
	for i := from; i < len(events); i++ {
		ev := events[i]
		now = ev.Time
		switch {
		case ev.Kind != audit.EditObserved && ev.Kind != audit.MergeDecided:
			m.events = append(m.events, ev)
		case fieldUnit(&ev) && len(ev.To) == 1 && ev.To[ev.Unit] != nil && lazy(i):
			o := &observation{rec: concord.Record{Fields: map[string]concord.Value{ev.Unit: ev.To[ev.Unit]}}}
			ev.To = nil
			m.emit(&ev, len(events)-i-1, st, &edit{unit: ev.Unit, obs: o})
		default:
			m.emit(&ev, len(events)-i-1, nil, nil)
		}
	}
	m.clipJoined()
	return m.events
}

// coalesceAfter is what emit must amount to, written the obvious way:
// every event made first, then each run of consecutive alike events
// joined into one (the first's, with the units, fields and values of all,
// in maps of its own).
func coalesceAfter(events []audit.Event, from int) []audit.Event {
	add := func(into *map[string]concord.Value, vals map[string]concord.Value) {
		if len(vals) > 0 && *into == nil {
			*into = map[string]concord.Value{}
		}
		maps.Copy(*into, vals)
	}
	out := slices.Clone(events[:from])
	for i := from; i < len(events); {
		j := i + 1
		for j < len(events) && alike(&events[i], &events[j]) {
			j++
		}
		if j-i == 1 {
			out = append(out, events[i])
			i = j
			continue
		}
		ev := events[i]
		ev.Unit, ev.From, ev.To = "", nil, nil
		fieldUnits := true
		var fields []string
		for _, x := range events[i:j] {
			ev.Units = append(ev.Units, x.Unit)
			fields = append(fields, x.Fields...)
			fieldUnits = fieldUnits && len(x.Fields) == 1 && x.Fields[0] == x.Unit
			add(&ev.From, x.From)
			add(&ev.To, x.To)
		}
		ev.Fields = fields
		if fieldUnits {
			ev.Fields = ev.Units
		}
		out = append(out, ev)
		i = j
	}
	return out
}

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

// TestEmitIsCoalescingAfter: whatever the events a record's merge makes,
// joining them as they are made (emit) gives exactly what making them all
// first and joining each run of alike ones would, whether an event's To
// comes as a map or as an edit's one value; it never changes the
// lists or maps the events came with (the merge and a unit's previous
// values share them); and a joined event's lists have no room to run
// into each other.
func TestEmitIsCoalescingAfter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fieldsOf := map[string][]string{"a": {"a"}, "b": {"b"}, "c": {"c"}, "addr": {"street", "zip"}, "tel": {"phone"}, resolve.RecordUnit: nil}
	units := slices.Sorted(maps.Keys(fieldsOf))
	sameVersion := cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal })
	rapid.Check(t, func(t *rapid.T) {
		values := func(label string, fields []string) map[string]concord.Value {
			switch rapid.IntRange(0, 3).Draw(t, label) {
			case 0:
				return nil
			case 1:
				return map[string]concord.Value{}
			}
			out := map[string]concord.Value{}
			for _, f := range fields {
				if rapid.Bool().Draw(t, label+"."+f) {
					out[f] = rapid.SampledFrom([]concord.Value{"x", "y", nil, int64(7)}).Draw(t, label+"."+f+"=")
				}
			}
			return out
		}
		n := rapid.IntRange(0, 12).Draw(t, "events")
		from := rapid.IntRange(0, min(n, 2)).Draw(t, "from")
		var events []audit.Event
		var dots []uint64
		for i := range n {
			u := rapid.SampledFrom(units).Draw(t, "unit")
			dot := uint64(rapid.IntRange(1, 2).Draw(t, "dot"))
			ev := audit.Event{Time: t0.Add(time.Duration(i) * time.Second), Cycle: 3, Key: "k", Unit: u, Fields: fieldsOf[u]}
			if i > 0 && rapid.IntRange(0, 3).Draw(t, "like the last") > 0 {
				// Mostly alike, or joins would be rare.
				last := events[i-1]
				ev.Kind, ev.System, ev.Rule, ev.By, ev.Modified = last.Kind, last.System, last.Rule, last.By, last.Modified
				dot = dots[i-1] // an equal version, not the same one
			} else {
				ev.Kind = rapid.SampledFrom([]audit.Kind{audit.EditObserved, audit.MergeDecided, audit.ConflictDetected}).Draw(t, "kind")
				ev.System = rapid.SampledFrom([]concord.SystemID{"x", "y"}).Draw(t, "system")
				ev.Rule = rapid.SampledFrom([]resolve.Rule{"", "fast-forward"}).Draw(t, "rule")
				ev.By = rapid.SampledFrom([]string{"", "ann"}).Draw(t, "by")
				ev.Modified = t0.Add(time.Duration(rapid.IntRange(0, 1).Draw(t, "modified")) * time.Hour)
			}
			dots = append(dots, dot)
			v, err := concord.NewVersion(concord.Dot{Actor: 1, Counter: dot})
			if err != nil {
				t.Fatal(err)
			}
			ev.Version = v
			ev.Deleted = rapid.IntRange(0, 9).Draw(t, "deleted") == 0
			if u != resolve.RecordUnit {
				ev.From, ev.To = values("from", ev.Fields), values("to", ev.Fields)
			}
			if rapid.IntRange(0, 9).Draw(t, "candidates") == 0 {
				ev.Candidates = []audit.Candidate{{System: ev.System}}
			}
			events = append(events, ev)
		}
		before := deepCopy(events)
		lazy := rapid.SliceOfN(rapid.Bool(), len(events), len(events)).Draw(t, "lazy")
		got := replay(events, from, func(i int) bool { return lazy[i] })
		want := coalesceAfter(before, from)
		if d := cmp.Diff(want, got, sameVersion); d != "" {
			t.Fatalf("emit differs from coalescing after (-after +emit):\n%s", d)
		}
		if d := cmp.Diff(before, events, sameVersion); d != "" {
			t.Fatalf("emit changed the events it was given (-before +after):\n%s", d)
		}
		for _, ev := range got {
			if len(ev.Units) > 0 && (cap(ev.Units) != len(ev.Units) || cap(ev.Fields) != len(ev.Fields)) {
				t.Fatalf("joined event with room to grow: units %d/%d fields %d/%d", len(ev.Units), cap(ev.Units), len(ev.Fields), cap(ev.Fields))
			}
		}
	})
}

// deepCopy copies events with their lists and maps.
func deepCopy(events []audit.Event) []audit.Event {
	out := slices.Clone(events)
	for i := range out {
		out[i].Fields = slices.Clone(out[i].Fields)
		out[i].Candidates = slices.Clone(out[i].Candidates)
		if out[i].From != nil {
			out[i].From = maps.Clone(out[i].From)
		}
		if out[i].To != nil {
			out[i].To = maps.Clone(out[i].To)
		}
	}
	return out
}
