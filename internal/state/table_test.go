package state_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
)

// TestTableIsAMap: a Table given any sequence of sets, deletes and
// filtered deletes holds what a map given the same holds, stays sorted
// with each name once, and answers every lookup as the map does.
func TestTableIsAMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		names := rapid.SampledFrom([]string{"", "a", "ab", "b", "field01", "field02", "field10", "(record)", "é", "z"})
		var tab state.Table[int]
		m := map[string]int{}
		ops := rapid.IntRange(0, 60).Draw(t, "ops")
		for i := range ops {
			name := names.Draw(t, "name")
			switch rapid.IntRange(0, 5).Draw(t, "op") {
			case 0, 1, 2:
				tab.Set(name, i)
				m[name] = i
			case 3:
				tab.Delete(name)
				delete(m, name)
			case 4:
				odd := func(_ string, v int) bool { return v%2 == 1 }
				tab.DeleteFunc(odd)
				maps.DeleteFunc(m, odd)
			case 5:
				c := tab.Clone()
				c.Set(name, -1) // a clone is changed apart
			}
			if !slices.IsSortedFunc(tab, func(a, b state.Entry[int]) int {
				if a.Name == b.Name {
					t.Fatalf("name %q twice in %v", a.Name, tab)
				}
				if a.Name < b.Name {
					return -1
				}
				return 1
			}) {
				t.Fatalf("not sorted: %v", tab)
			}
			if len(tab) != len(m) {
				t.Fatalf("table %v, map %v", tab, m)
			}
			for _, probe := range []string{"", "a", "ab", "b", "field01", "field02", "field10", "(record)", "é", "z", "zz", "field0"} {
				got, ok := tab.Get(probe)
				want, wok := m[probe]
				if got != want || ok != wok || tab.Has(probe) != wok || tab.Value(probe) != want {
					t.Fatalf("Get(%q) = %d, %v; the map has %d, %v (table %v)", probe, got, ok, want, wok, tab)
				}
			}
		}
		got := map[string]int{}
		for _, e := range tab {
			got[e.Name] = e.Value
		}
		if !maps.Equal(got, m) {
			t.Fatalf("table %v, want %v", tab, m)
		}
		if want := slices.Sorted(maps.Keys(m)); !slices.Equal(tab.Names(), want) {
			t.Fatalf("Names() = %v, want %v", tab.Names(), want)
		}
		if back := state.TableOf(m); !slices.Equal(back, tab) && len(m) > 0 {
			t.Fatalf("TableOf(%v) = %v, want %v", m, back, tab)
		}
	})
}

// TestTableEmpty: the zero Table, TableOf an empty map and the Clone of a
// nil Table are all empty (nil), and reads of them find nothing.
func TestTableEmpty(t *testing.T) {
	var z state.Table[string]
	if z.Clone() != nil || state.TableOf(map[string]string{}) != nil || len(z.Names()) != 0 {
		t.Fatal("an empty table is not empty")
	}
	if v, ok := z.Get("x"); ok || v != "" || z.Has("x") {
		t.Fatal("the empty table holds x")
	}
	z.Delete("x")
	z.DeleteFunc(func(string, string) bool { return true })
	z.Set("x", "1")
	if z.Value("x") != "1" || len(z) != 1 {
		t.Fatalf("after Set: %v", z)
	}
}

// TestCloneSharesNothing: a clone of a record equals it, and changing
// every table, unit, hold and sent list of the clone leaves the record as
// it was.
func TestCloneSharesNothing(t *testing.T) {
	st := state.Sample("k", true, true)
	st.Systems["a"].AddSent("name", state.Copy{Hash: 7})
	before := state.Sample("k", true, true)
	before.Systems["a"].AddSent("name", state.Copy{Hash: 7})
	c := st.Clone()
	if d := cmp.Diff(st, c, stateCmp); d != "" {
		t.Fatalf("clone differs (-record +clone):\n%s", d)
	}
	for _, x := range c.Units {
		x.Value.Rule = "changed"
		if x.Value.Prev != nil {
			x.Value.Prev.Values.Set("name", "changed")
			x.Value.Prev.Deleted = !x.Value.Prev.Deleted
		}
		if h := x.Value.Hold; h != nil {
			h.Reason = "changed"
			h.Candidates[0].Values["phone"] = "changed"
			h.Base["phone"] = "changed"
		}
	}
	c.Units.Set("zz", &state.Unit{})
	c.Units.Delete("name")
	for _, v := range c.Systems {
		for i := range v.Units {
			v.Units[i].Value.Hash++
		}
		for i := range v.Native {
			v.Native[i].Value++
		}
		for i := range v.Sent {
			v.Sent[i].Value[0].Hash++
		}
		v.Native.Set("zz", 1)
	}
	if d := cmp.Diff(before, st, stateCmp); d != "" {
		t.Fatalf("changing the clone changed the record (-before +after):\n%s", d)
	}
}

// TestEncodeTablesOutOfOrder: the encoder walks a record's tables and its
// name table together, trusting them to be sorted; a table out of order
// (which only a literal can make) is still encoded whole, and decodes
// sorted. Each record is encoded twice, so that the second finds the name
// table the first left.
func TestEncodeTablesOutOfOrder(t *testing.T) {
	opts := cmp.Options{stateCmp, emptyAsNil}
	for _, held := range []bool{false, true} {
		want := state.Sample("k", false, held)
		st := state.Sample("k", false, held)
		slices.Reverse(st.Units)
		for _, v := range st.Systems {
			slices.Reverse(v.Units)
			slices.Reverse(v.Native)
		}
		for range 2 {
			got, _ := recordRoundTrip(t, state.Codec{}, st)
			if d := cmp.Diff(want, got, opts); d != "" {
				t.Fatalf("held=%v (-want +got):\n%s", held, d)
			}
		}
	}
}

// TestTableAt: At finds a name at the index given or, if another name is
// there (or none), wherever it is; IndexAt and SetAt likewise.
func TestTableAt(t *testing.T) {
	a := state.TableOf(map[string]int{"a": 1, "b": 2, "c": 3})
	b := state.TableOf(map[string]int{"b": 20, "c": 30})
	for _, name := range []string{"a", "b", "c", "d"} {
		i, _ := a.Index(name)
		got, ok := b.At(i, name)
		want, wok := b.Get(name)
		if got != want || ok != wok {
			t.Errorf("At(%d, %q) = %d, %v; want %d, %v", i, name, got, ok, want, wok)
		}
		for _, j := range []int{-1, 0, 1, 2, 5} {
			if got, ok := b.At(j, name); got != want || ok != wok {
				t.Errorf("At(%d, %q) = %d, %v; want %d, %v", j, name, got, ok, want, wok)
			}
			wi, wiok := b.Index(name)
			if gi, giok := b.IndexAt(j, name); gi != wi || giok != wiok {
				t.Errorf("IndexAt(%d, %q) = %d, %v; want %d, %v", j, name, gi, giok, wi, wiok)
			}
			c := b.Clone()
			c.SetAt(j, name, 99)
			d := b.Clone()
			d.Set(name, 99)
			if !slices.Equal(c, d) {
				t.Errorf("SetAt(%d, %q) = %v, Set = %v", j, name, c, d)
			}
		}
	}
}

// TestCheckTables: each way of breaking a record's tables is reported, and
// a sound record is not.
func TestCheckTables(t *testing.T) {
	if err := state.Sample("k", true, true).CheckTables(); err != nil {
		t.Fatalf("a sound record: %v", err)
	}
	for name, breakIt := range map[string]func(st *state.Record){
		"units out of order":  func(st *state.Record) { slices.Reverse(st.Units) },
		"a unit twice":        func(st *state.Record) { st.Units = append(st.Units, st.Units[len(st.Units)-1]) },
		"a nil unit":          func(st *state.Record) { st.Units[0].Value = nil },
		"view units cleared":  func(st *state.Record) { clear(st.Systems["a"].Units) },
		"native out of order": func(st *state.Record) { st.Systems["a"].Native = state.Table[uint64]{{"b", 1}, {"a", 2}} },
		"sent out of order": func(st *state.Record) {
			st.Systems["a"].Sent = state.Table[[]state.Copy]{{"b", []state.Copy{{}}}, {"a", []state.Copy{{}}}}
		},
		"an empty attempt list": func(st *state.Record) { st.Systems["b"].Sent = state.Table[[]state.Copy]{{"a", nil}} },
		"a nil view":            func(st *state.Record) { st.Systems["c"] = nil },
	} {
		st := state.Sample("k", true, true)
		breakIt(st)
		if err := st.CheckTables(); err == nil {
			t.Errorf("%s: not reported", name)
		}
	}
}

// BenchmarkBehind asks whether each system of a synced 20-field record
// lacks a canonical value, decoded as the engine loads it (its views hold
// every unit, at the units' own indices).
func BenchmarkBehind(b *testing.B) {
	st, _ := recordRoundTrip(b, state.Codec{}, suiteRecord(1))
	b.ReportAllocs()
	for b.Loop() {
		for _, v := range st.Systems {
			if st.Behind(v) {
				b.Fatal("behind")
			}
		}
	}
}

// TestBehindIsHoldsPerUnit: Behind's walk of the two tables answers what
// asking Holds of every unit not held answers, on random records (views
// that lack units, hold others, or hold the record deleted).
func TestBehindIsHoldsPerUnit(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genState(t)
		for id, v := range st.Systems {
			want := false
			switch ex := st.Existence(); {
			case ex == nil:
			case ex.Hold != nil && (!v.Seen || v.Deleted != st.Deleted):
			case !v.Seen:
				want = !st.Deleted
			default:
				for _, x := range st.Units {
					if x.Value.Hold == nil && (!st.Deleted || x.Name == resolve.RecordUnit) && !v.Holds(x.Name, x.Value.Version) {
						want = true
					}
				}
			}
			if got := st.Behind(v); got != want {
				t.Fatalf("system %s: Behind = %v, by each unit %v", id, got, want)
			}
		}
	})
}
