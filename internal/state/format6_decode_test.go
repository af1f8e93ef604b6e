package state_test

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
)

// strictCmp compares decoded records exactly: values of the same Go types
// and bits (identical), times in the same zone, nil and empty maps and
// slices told apart (cmp's default).
var strictCmp = cmp.Options{
	cmpopts.IgnoreUnexported(state.Record{}), // a decoded record's cache of its highest counters
	cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal }),
	cmp.Comparer(func(a, b time.Time) bool {
		an, ao := a.Zone()
		bn, bo := b.Zone()
		return a.Equal(b) && an == bn && ao == bo && (a.Location() == time.UTC) == (b.Location() == time.UTC)
	}),
	cmp.FilterPath(func(p cmp.Path) bool {
		_, ok := p.Last().(cmp.MapIndex)
		return ok && p.Last().Type().Kind() == reflect.Interface // a Value
	}, cmp.Comparer(identical)),
}

// oddSensitive is a Codec sealing the values of every field whose name has
// an odd length: about half of the names genRealistic draws.
func oddSensitive(t testing.TB) state.Codec {
	return state.Codec{Sealer: keyRing(t, "k1", "k1"), Sensitive: func(f string) bool { return len(f)%2 == 1 }, Context: "decode-test"}
}

// The format 6 decoder gives exactly what the format 5 decoder (a separate
// code path, unchanged by the format 6 decoder's allocation work) gives for
// the same record: the same value types, zones, nil or empty maps, Sent
// lists, holds and sealed values; and so does a warm decoder that decoded
// another record before, and the pooled one.
func TestFormat6DecodeMatchesLegacy(t *testing.T) {
	c := oddSensitive(t)
	rapid.Check(t, func(t *rapid.T) {
		codecs := []state.Codec{{}, c}
		st := genRealistic(t)
		if rapid.Bool().Draw(t, "random shape") {
			st = genState(t)
		}
		other := genRealistic(t)
		cd := codecs[rapid.IntRange(0, 1).Draw(t, "codec")]
		b, err := cd.EncodeState(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		legacy, err := cd.EncodeLegacyState(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		want, err := cd.DecodeState(legacy)
		if err != nil {
			t.Fatal(err)
		}
		carryPartial(want, st)
		got, err := cd.DecodeState(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, strictCmp); diff != "" {
			t.Fatalf("format 6 decodes otherwise than format %d (-legacy +6):\n%s", legacy[3], diff)
		}
		if diff := cmp.Diff(st, got, stateCmp); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		warm := state.NewTestDecoder()
		ob, err := cd.EncodeState(nil, other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := warm.Decode(cd, ob); err != nil {
			t.Fatal(err)
		}
		again, err := warm.Decode(cd, b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, again, strictCmp); diff != "" {
			t.Fatalf("a warm decoder decodes otherwise (-legacy +warm):\n%s", diff)
		}
	})
}

// mutable is engineRecord(i) with a value of every kind a decoded record
// holds by reference ([]byte, nested maps and lists), a string long
// enough to share the record's copy of its input, several Sent lists in
// one view (one backing array) and a hold.
func mutable(i int) *state.Record {
	st := heldRecord(i)
	st.Fields["blob"] = []byte{1, 2, 3, byte(i)}
	st.Fields["nested"] = map[string]any{"l": []any{"x", int64(1)}, "m": map[string]string{"k": "v"}, "s": []string{"p", "q"}}
	st.Fields["long"] = strings.Repeat("long ", 20)
	for _, name := range []string{"blob", "nested", "long"} {
		st.Units.Set(name, &state.Unit{Version: v(1, 1), Winner: "a", Rule: "fast-forward"})
	}
	a := st.Systems["a"]
	a.AddSent("field05", state.Copy{Hash: 7, Version: v(1, 3)})
	a.AddSent("field05", state.Copy{Hash: 8, Version: v(1, 4)})
	return st
}

// mutate changes everything a record holds by reference.
func mutate(st *state.Record) {
	st.Fields["blob"].([]byte)[0] = 99
	nested := st.Fields["nested"].(map[string]any)
	nested["l"].([]any)[0] = "changed"
	nested["m"].(map[string]string)["k"] = "changed"
	nested["s"].([]string)[0] = "changed"
	nested["new"] = true
	st.Fields["field02"] = "changed"
	delete(st.Fields, "field03")
	st.Key = "changed"
	for _, name := range st.Units.Names() {
		u := st.Units.Value(name)
		u.Rule, u.Winner = "changed", "changed"
		u.Version = v(9, 9)
		if u.Prev != nil && u.Prev.Values != nil {
			u.Prev.Values.Set(name, "changed")
		}
		if h := u.Hold; h != nil {
			h.Candidates[0].Values[name] = "changed"
			h.Candidates[1].System = "changed"
			h.Base[name] = "changed"
			h.Reason = "changed"
		}
		// And the entry itself: the table is the record's own.
		st.Units.Set(name, &state.Unit{Rule: "replaced"})
	}
	st.Units.Set("zz-new", &state.Unit{})
	for _, view := range st.Systems {
		view.Tag = "changed"
		for _, name := range view.Units.Names() {
			view.Units.Set(name, state.Copy{Hash: 12345, Version: v(9, 9)})
		}
		for _, name := range view.Native.Names() {
			view.Native.Set(name, 12345)
		}
		view.Units.Set("zz-new", state.Copy{})
		for _, name := range view.Sent.Names() {
			l := view.Sent.Value(name)
			l[0] = state.Copy{Hash: 12345}
			view.Sent.Set(name, append(l, state.Copy{Hash: 54321}))
		}
		view.AddSent("field19", state.Copy{Hash: 1, Version: v(1, 9)})
	}
	st.Systems["zz-new"] = &state.View{}
}

// Decoded records share nothing that can be changed: changing every map,
// list, []byte and field of one (as the engine does) changes neither
// another record decoded from the same bytes (by the same pooled decoder,
// whose scratch they came from, or a kept one) nor a record decoded next.
func TestFormat6DecodedRecordsShareNothing(t *testing.T) {
	for _, cd := range []state.Codec{{}, oddSensitive(t)} {
		var recs []*state.Record
		var data [][]byte
		for i := range 3 {
			st := mutable(i)
			b, err := cd.EncodeState(nil, st)
			if err != nil {
				t.Fatal(err)
			}
			recs, data = append(recs, st), append(data, b)
		}
		warm := state.NewTestDecoder()
		decode := []func([]byte) (*state.Record, error){
			cd.DecodeState,
			func(b []byte) (*state.Record, error) { return warm.Decode(cd, b) },
		}
		for _, dec := range decode {
			for i, b := range data {
				first, err := dec(b)
				if err != nil {
					t.Fatal(err)
				}
				second, err := dec(b)
				if err != nil {
					t.Fatal(err)
				}
				mutate(first)
				if diff := cmp.Diff(recs[i], second, strictCmp); diff != "" {
					t.Fatalf("record %d: changing one decoded record changed another (-want +got):\n%s", i, diff)
				}
				next, err := dec(data[(i+1)%len(data)])
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(recs[(i+1)%len(data)], next, strictCmp); diff != "" {
					t.Fatalf("record %d: the record decoded after a changed one differs (-want +got):\n%s", i, diff)
				}
				mutate(second)
				if diff := cmp.Diff(recs[(i+1)%len(data)], next, strictCmp); diff != "" {
					t.Fatalf("record %d: changing a record changed the one decoded after it (-want +got):\n%s", i, diff)
				}
			}
		}
	}
}

// Within one record, the views' tables (of the same entries when the views
// hold the same copies and hashes) and the Sent lists of a view (one
// backing array) are apart: changing one leaves the others.
func TestFormat6DecodedMapsApartWithinARecord(t *testing.T) {
	st := suiteRecord(3) // both views hold the same copies and hashes
	st.Systems["a"].AddSent("field01", state.Copy{Hash: 1, Version: v(1, 2)})
	st.Systems["a"].AddSent("field02", state.Copy{Hash: 2, Version: v(1, 2)})
	st.Systems["a"].AddSent("field03", state.Copy{Hash: 3, Version: v(1, 2)})
	b, err := state.EncodeState(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := state.DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	a, z := got.Systems["a"], got.Systems["z"]
	z.Units.Set("field00", state.Copy{Hash: 5})
	z.Units.Delete("field04")
	z.Native.Set("field00", 5)
	z.Native.Delete("field04")
	if diff := cmp.Diff(st.Systems["a"].Units, a.Units, strictCmp); diff != "" {
		t.Fatalf("changing z's units changed a's (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(st.Systems["a"].Native, a.Native, strictCmp); diff != "" {
		t.Fatalf("changing z's native hashes changed a's (-want +got):\n%s", diff)
	}
	// Appending to one list (at its capacity: it moves) and deleting from
	// another leave the third as it was.
	a.AddSent("field01", state.Copy{Hash: 11, Version: v(1, 3)})
	a.Sent.Set("field02", append(a.Sent.Value("field02"), state.Copy{Hash: 22}))
	a.Unsend([]state.Attempt{{Unit: "field02", Copy: state.Copy{Hash: 2, Version: v(1, 2)}}})
	if l := a.Sent.Value("field03"); len(l) != 1 || l[0].Hash != 3 {
		t.Fatalf("field03's Sent = %v after changing the others", l)
	}
	if l := a.Sent.Value("field01"); len(l) != 2 || l[0].Hash != 1 || l[1].Hash != 11 {
		t.Fatalf("field01's Sent = %v", l)
	}
	if l := a.Sent.Value("field02"); len(l) != 1 || l[0].Hash != 22 {
		t.Fatalf("field02's Sent = %v", l)
	}
}

// Strings of every size decode the same whether the record's strings share
// one copy of its input (an input up to 16 KiB) or not (larger): keys,
// tags, values, long atoms (rules, zone names past the interned length).
func TestFormat6LongAndLargeStrings(t *testing.T) {
	for _, size := range []int{0, 1, 2, 64, 65, 300, 16 << 10, 20 << 10} {
		st := suiteRecord(size)
		long := strings.Repeat("r", size)
		st.Key = "k" + long
		st.Fields["field02"] = long
		st.Fields["field03"] = nested(long)
		st.Units.Value("field05").Rule = "rule " + long
		st.Units.Value("field06").Modified = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("Z"+long, 3600))
		st.Systems["a"].Tag, st.Systems["a"].LastError, st.Systems["a"].Attempts = long, "error "+long, 1
		for _, cd := range []state.Codec{{}, oddSensitive(t)} {
			b, err := cd.EncodeState(nil, st)
			if err != nil {
				t.Fatal(err)
			}
			legacy, err := cd.EncodeLegacyState(nil, st)
			if err != nil {
				t.Fatal(err)
			}
			want, err := cd.DecodeState(legacy)
			if err != nil {
				t.Fatal(err)
			}
			carryPartial(want, st)
			got, err := cd.DecodeState(b)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if diff := cmp.Diff(want, got, strictCmp); diff != "" {
				t.Fatalf("size %d (-legacy +6):\n%s", size, diff)
			}
			clear(b)
			if diff := cmp.Diff(want, got, strictCmp); diff != "" {
				t.Fatalf("size %d: the record changed with its input (-legacy +6):\n%s", size, diff)
			}
		}
	}
}

// nested is a value holding s in a nested map and list.
func nested(s string) concord.Value {
	if s == "" {
		return int64(0)
	}
	return map[string]any{"n": s, "list": []string{s, "x"}}
}

// Damage to a string's length inside a shared-strings record is refused
// as corrupt, never read past the input (every byte of the record's body,
// its checksum fixed).
func TestFormat6DamagedLengthsWithSharedStrings(t *testing.T) {
	st := mutable(1)
	st.Units.Value(resolve.RecordUnit).Rule = strings.Repeat("x", 80)
	b, err := state.EncodeState(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4; i < len(b)-4; i++ {
		for _, x := range []byte{0x01, 0x7f, 0x80, 0xff} {
			d := bytes.Clone(b)
			d[i] ^= x
			d = reCRC(d)
			got, err := state.DecodeState(d)
			if err != nil {
				continue
			}
			// What decodes is a record: it re-encodes.
			if _, err := state.EncodeState(nil, got); err != nil {
				t.Fatalf("byte %d ^ %#x: decoded a record that does not encode: %v", i, x, err)
			}
		}
	}
}

// A kept decoder gives each of many records its own strings and versions:
// the string and version tables of one record (scratch the decoder keeps)
// never leak into the next.
func TestFormat6DecodeTablesPerRecord(t *testing.T) {
	dec := state.NewTestDecoder()
	for i := range 50 {
		st := suiteRecord(i)
		for _, x := range st.Units {
			name, u := x.Name, x.Value
			u.Rule = fmt.Sprintf("rule-%d-%s", i%7, name)
			u.Winner = concord.SystemID(fmt.Sprintf("sys%d", i%5))
			u.Version = v(uint64(i%3+1), uint64(i+1))
		}
		b, err := state.EncodeState(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(state.Codec{}, b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st, got, strictCmp); diff != "" {
			t.Fatalf("record %d (-want +got):\n%s", i, diff)
		}
	}
}
