package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
)

// names returns every name of st (fields, units, their Prev and holds,
// views' units, native hashes and writes sent): the name table.
func names(st *state.Record) []string {
	set := map[string]bool{}
	add := func(keys func(func(string) bool)) {
		for k := range keys {
			set[k] = true
		}
	}
	add(maps.Keys(st.Fields))
	add(slices.Values(st.Units.Names()))
	for _, x := range st.Units {
		u := x.Value
		add(slices.Values(u.PrevValues().Names()))
		if u.Hold != nil {
			add(maps.Keys(u.Hold.Base))
			for _, c := range u.Hold.Candidates {
				add(maps.Keys(c.Values))
			}
		}
	}
	for _, v := range st.Systems {
		add(slices.Values(v.Units.Names()))
		add(slices.Values(v.Native.Names()))
		add(slices.Values(v.Sent.Names()))
	}
	return slices.Sorted(maps.Keys(set))
}

// rename renames the name from to to in every map of st that holds it.
func rename(st *state.Record, from, to string) {
	mv := func(m map[string]concord.Value) {
		if v, ok := m[from]; ok {
			delete(m, from)
			m[to] = v
		}
	}
	mv(st.Fields)
	if u, ok := st.Units.Get(from); ok {
		st.Units.Delete(from)
		st.Units.Set(to, u)
	}
	for _, x := range st.Units {
		u := x.Value
		if v, ok := u.PrevValues().Get(from); ok {
			u.Prev.Values.Delete(from)
			u.Prev.Values.Set(to, v)
		}
		if u.Hold != nil {
			mv(u.Hold.Base)
			for _, c := range u.Hold.Candidates {
				mv(c.Values)
			}
		}
	}
	for _, v := range st.Systems {
		if c, ok := v.Units.Get(from); ok {
			v.Units.Delete(from)
			v.Units.Set(to, c)
		}
		if h, ok := v.Native.Get(from); ok {
			v.Native.Delete(from)
			v.Native.Set(to, h)
		}
		if l, ok := v.Sent.Get(from); ok {
			v.Sent.Delete(from)
			v.Sent.Set(to, l)
		}
	}
}

// addName adds name to st in one place of kind k (0-7), making room for
// it where the place needs a unit or a view.
func addName(st *state.Record, name string, k int) {
	view := func() *state.View {
		for _, id := range slices.Sorted(maps.Keys(st.Systems)) {
			return st.Systems[id]
		}
		v := &state.View{Units: state.Table[state.Copy]{}, Native: state.Table[uint64]{}}
		st.Systems["s"] = v
		return v
	}
	unit := func() *state.Unit {
		if len(st.Units) > 0 {
			return st.Units[0].Value // the first in name order
		}
		u := &state.Unit{}
		st.Units.Set(resolve.RecordUnit, u)
		return u
	}
	switch k {
	case 0:
		st.Fields[name] = "added"
	case 1:
		st.Units.Set(name, &state.Unit{Version: v(1, 1), Rule: "fast-forward"})
	case 2:
		u := unit()
		if u.Prev == nil {
			u.Prev = &state.Prev{}
		}
		u.Prev.Values.Set(name, int64(1))
	case 3:
		u := unit()
		if u.Hold == nil {
			u.Hold = &state.Hold{Rule: "hold"}
		}
		if u.Hold.Base == nil {
			u.Hold.Base = map[string]concord.Value{}
		}
		u.Hold.Base[name] = "base"
	case 4:
		u := unit()
		if u.Hold == nil {
			u.Hold = &state.Hold{Rule: "hold"}
		}
		u.Hold.Candidates = append(u.Hold.Candidates, resolve.Candidate{System: "a", Values: map[string]concord.Value{name: true}, Version: v(2, 1)})
	case 5:
		view().Units.Set(name, state.Copy{Hash: 5, Version: v(1, 1)})
	case 6:
		view().Native.Set(name, 6)
	default:
		view().AddSent(name, state.Copy{Hash: 7, Version: v(1, 2)})
	}
}

// removeName removes name from every map of st that holds it.
func removeName(st *state.Record, name string) {
	delete(st.Fields, name)
	st.Units.Delete(name)
	for _, x := range st.Units {
		u := x.Value
		if u.Prev != nil {
			u.Prev.Values.Delete(name)
		}
		if u.Hold != nil {
			delete(u.Hold.Base, name)
			for _, c := range u.Hold.Candidates {
				delete(c.Values, name)
			}
		}
	}
	for _, v := range st.Systems {
		v.Units.Delete(name)
		v.Native.Delete(name)
		v.Sent.Delete(name)
	}
}

// emptyAsNil equates empty and nil maps and slices of the record (not
// values, which stateCmp compares).
var emptyAsNil = cmp.FilterPath(func(p cmp.Path) bool {
	_, ok := p.Last().(cmp.MapIndex)
	return !ok || p.Last().Type().Kind() != reflect.Interface
}, cmpopts.EquateEmpty())

// reversing "seals" a value by reversing its bytes: deterministic.
type reversing struct{}

func (reversing) Seal(p, aad []byte) ([]byte, error) {
	s := slices.Clone(p)
	slices.Reverse(s)
	return s, nil
}

func (r reversing) Open(s, aad []byte) ([]byte, error) { return r.Seal(s, aad) }

// checkWarm encodes st with the warm encoder and with a fresh one (no
// name table kept), which must give the same bytes, and decodes them with
// the warm decoder and a fresh one, which must give st.
func checkWarm(t interface {
	Helper()
	Fatalf(string, ...any)
}, c state.Codec, enc *state.TestEncoder, dec *state.TestDecoder, what string, st *state.Record) {
	t.Helper()
	var cold state.TestEncoder
	want, err := cold.Encode(c, nil, st)
	if err != nil {
		t.Fatalf("%s: cold: %v", what, err)
	}
	got, err := enc.Encode(c, []byte("prefix"), st)
	if err != nil {
		t.Fatalf("%s: warm: %v", what, err)
	}
	if !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("%s: the warm encoder wrote other bytes than a cold one (names %q):\n got %x\nwant %x", what, names(st), got[6:], want)
	}
	pooled, err := c.EncodeState(nil, st)
	if err != nil || !bytes.Equal(pooled, want) {
		t.Fatalf("%s: the pooled encoder wrote other bytes (%v)", what, err)
	}
	back, err := dec.Decode(c, want)
	if err != nil {
		t.Fatalf("%s: decoding: %v", what, err)
	}
	// The format does not tell an empty map of the record from none
	// (but for Prev, Base and candidates' Values, which it does).
	if diff := cmp.Diff(st, back, stateCmp, emptyAsNil); diff != "" {
		t.Fatalf("%s: round trip (-want +got):\n%s", what, diff)
	}
	fresh, err := state.NewTestDecoder().Decode(c, want)
	if err != nil {
		t.Fatalf("%s: decoding: %v", what, err)
	}
	if diff := cmp.Diff(fresh, back, stateCmp); diff != "" {
		t.Fatalf("%s: the warm decoder read other than a fresh one (-fresh +warm):\n%s", what, diff)
	}
}

// One encoder (and decoder) kept from record to record, as the pool keeps
// them, writes the bytes a fresh one writes, and reads them back, for
// records drawn at random and for records whose names differ from the
// ones before by one name: added (in any of the maps that hold names),
// removed, or replaced by another (the same count of names).
func TestFormat6WarmEncoderMatchesCold(t *testing.T) {
	// A Sealer that seals the same value to the same bytes, so that the
	// encodings compare.
	c := state.Codec{Sealer: reversing{}, Context: "ctx", Sensitive: func(f string) bool { return f == "a" || f == "added" }}
	rapid.Check(t, func(t *rapid.T) {
		enc, dec := &state.TestEncoder{}, state.NewTestDecoder()
		st := genRealistic(t)
		if rapid.IntRange(0, 4).Draw(t, "random shape") == 0 {
			st = genState(t)
		}
		checkWarm(t, c, enc, dec, "first", st)
		for step := range rapid.IntRange(1, 8).Draw(t, "steps") {
			st = st.Clone()
			ns := names(st)
			what := ""
			switch op := rapid.IntRange(0, 4).Draw(t, "op"); {
			case op == 0 || len(ns) == 0:
				n := rapid.StringMatching(`[a-z]{0,3}[0-9]{0,2}`).Draw(t, "new name")
				k := rapid.IntRange(0, 7).Draw(t, "where")
				addName(st, n, k)
				what = fmt.Sprintf("add %q at %d", n, k)
			case op == 1:
				n := rapid.SampledFrom(ns).Draw(t, "removed")
				removeName(st, n)
				what = fmt.Sprintf("remove %q", n)
			case op == 2:
				from := rapid.SampledFrom(ns).Draw(t, "renamed")
				to := rapid.StringMatching(`[a-z]{0,3}[0-9]{0,2}`).Filter(func(s string) bool { return !slices.Contains(ns, s) }).Draw(t, "to")
				rename(st, from, to)
				what = fmt.Sprintf("rename %q to %q", from, to)
			case op == 3:
				what = "same names"
			default:
				st = genRealistic(t)
				what = "another record"
			}
			checkWarm(t, c, enc, dec, fmt.Sprintf("step %d: %s", step, what), st)
		}
	})
}

// The name sets a cache keyed on the count of names, or on the names of
// the fields and units alone, would take for the same: each encoded after
// the base record by the same encoder.
func TestFormat6WarmEncoderStaleTables(t *testing.T) {
	base := func() *state.Record { return engineRecord(1) }
	cases := map[string]func(st *state.Record){
		"same":                   func(*state.Record) {},
		"renamed field and unit": func(st *state.Record) { rename(st, "field05", "field05x") },
		"renamed to sort first":  func(st *state.Record) { rename(st, "field19", "a") },
		"renamed in a view only": func(st *state.Record) {
			h := st.Systems["a"].Native.Value("field03")
			st.Systems["a"].Native.Delete("field03")
			st.Systems["a"].Native.Set("native-only", h)
		},
		"renamed in Prev only": func(st *state.Record) {
			u := st.Units.Value("field02")
			u.Prev.Values = state.Table[concord.Value]{{Name: "prev-only", Value: u.PrevValues().Value("field02")}}
		},
		"removed everywhere":   func(st *state.Record) { removeName(st, "field11") },
		"removed from Sent":    func(st *state.Record) { st.Systems["a"].Sent.Delete("field02") },
		"added to Sent only":   func(st *state.Record) { st.Systems["a"].AddSent("sent-only", state.Copy{Hash: 1, Version: v(1, 1)}) },
		"added to a hold only": func(st *state.Record) { addName(st, "held-only", 4) },
		"added to a hold base": func(st *state.Record) { addName(st, "base-only", 3) },
		"no names":             func(st *state.Record) { *st = state.Record{Key: st.Key} },
		"one view fewer":       func(st *state.Record) { delete(st.Systems, "z") },
		"a system more": func(st *state.Record) {
			st.Systems["m"] = &state.View{Units: state.Table[state.Copy]{}, Native: state.Table[uint64]{{Name: "m-only", Value: 3}}}
		},
		"field without a unit":  func(st *state.Record) { st.Units.Delete("field08") },
		"unit without a field":  func(st *state.Record) { delete(st.Fields, "field09") },
		"view unit moved names": func(st *state.Record) { rename(st, resolve.RecordUnit, "~record") },
	}
	enc, dec := &state.TestEncoder{}, state.NewTestDecoder()
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		for _, order := range []string{"after the base", "before the base"} {
			st := base()
			cases[name](st)
			if order == "after the base" {
				checkWarm(t, state.Codec{}, enc, dec, "base", base())
				checkWarm(t, state.Codec{}, enc, dec, name+", "+order, st)
			} else {
				checkWarm(t, state.Codec{}, enc, dec, name+", "+order, st)
				checkWarm(t, state.Codec{}, enc, dec, "base after "+name, base())
			}
		}
	}
}

// Pooled encoders and decoders used by many goroutines at once, records
// of several name sets in turn: each encoding is the record's own (run
// with -race).
func TestFormat6EncodersConcurrent(t *testing.T) {
	recs := []*state.Record{engineRecord(1), heldRecord(2), otherNames(3), goldenRecord(), suiteRecord(4)}
	want := make([][]byte, len(recs))
	for i, st := range recs {
		var err error
		if want[i], err = state.EncodeState(nil, st); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 400 {
				k := (i + g) % len(recs)
				b, err := state.EncodeState(nil, recs[k])
				if err != nil || !bytes.Equal(b, want[k]) {
					errs <- fmt.Errorf("goroutine %d, record %d: other bytes (%v)", g, k, err)
					return
				}
				if _, err := state.DecodeState(b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzDecodeWarm: a decoder that keeps the name table of the record it
// decoded before decodes any input as a fresh one does: the same record
// or an error of the same kind.
func FuzzDecodeWarm(f *testing.F) {
	seeds := []*state.Record{engineRecord(1), heldRecord(2), goldenRecord(), state.Sample("k", true, true)}
	var first [][]byte
	for _, st := range seeds {
		b, err := state.EncodeState(nil, st)
		if err != nil {
			f.Fatal(err)
		}
		first = append(first, b)
		f.Add(uint8(len(first)-1), b)
		o, err := state.EncodeState(nil, otherNames(5))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(len(first)-1), o)
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		warm := state.NewTestDecoder()
		if _, err := warm.Decode(state.Codec{}, first[int(which)%len(first)]); err != nil {
			t.Fatal(err)
		}
		got, err := warm.Decode(state.Codec{}, b)
		want, werr := state.NewTestDecoder().Decode(state.Codec{}, b)
		if (err == nil) != (werr == nil) {
			t.Fatalf("warm: %v; cold: %v", err, werr)
		}
		if err != nil {
			if errors.Is(err, state.ErrCorrupt) != errors.Is(werr, state.ErrCorrupt) || err.Error() != werr.Error() {
				t.Fatalf("warm: %v; cold: %v", err, werr)
			}
			return
		}
		if diff := cmp.Diff(want, got, sameDecoded); diff != "" {
			t.Fatalf("warm and cold decoders differ (-cold +warm):\n%s", diff)
		}
		// And the warm decoder, used again, reads what it read first.
		again, err := warm.Decode(state.Codec{}, first[int(which)%len(first)])
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(seeds[int(which)%len(seeds)], again, stateCmp); diff != "" {
			t.Fatalf("after the input, the first record decodes differently (-want +got):\n%s", diff)
		}
	})
}
