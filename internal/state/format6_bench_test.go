package state_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
)

// engineRecord is suiteRecord(i) as the engine keeps it after an edit
// cycle: three units edited in system z (a new version, Prev and
// PrevVersion kept), system a written to and the writes not yet confirmed
// (Sent), system z holding the new values.
func engineRecord(i int) *state.Record {
	st := suiteRecord(i)
	at := time.Date(2026, 5, 1, 7, 48, 1, 5, time.UTC)
	for _, j := range []int{2, 7, 13} {
		name := fmt.Sprintf("field%02d", j)
		old := st.Fields[name]
		val := fmt.Sprintf("edited %d of record %d", j, i)
		st.Fields[name] = val
		u := st.Units.Value(name)
		u.Prev = &state.Prev{Values: state.Table[concord.Value]{{Name: name, Value: old}}, Version: u.Version}
		u.Version, u.Winner, u.Rule, u.Modified = v(1, 1, 2, 1), "z", "fast-forward", at
		z, a := st.Systems["z"], st.Systems["a"]
		z.Units.Set(name, state.Copy{Hash: unitHash(name, val), Version: u.Version})
		z.Native.Set(name, nativeHash(val))
		a.AddSent(name, state.Copy{Hash: unitHash(name, val), Version: u.Version})
	}
	st.Systems["z"].Tag, st.Systems["z"].Modified = "2", at
	return st
}

// heldRecord is engineRecord(i) with two units held for a person: a
// conflict of both systems' edits, with its base.
func heldRecord(i int) *state.Record {
	st := engineRecord(i)
	at := time.Date(2026, 5, 1, 7, 49, 0, 0, time.UTC)
	for _, j := range []int{4, 9} {
		name := fmt.Sprintf("field%02d", j)
		st.Units.Value(name).Hold = &state.Hold{
			Candidates: []resolve.Candidate{
				{System: "a", Values: map[string]concord.Value{name: fmt.Sprintf("a's %d", i)}, Version: v(1, 2), Modified: at},
				{System: "z", Values: map[string]concord.Value{name: fmt.Sprintf("z's %d", i)}, Version: v(1, 1, 2, 1), Modified: at.Add(time.Second), By: "ana@example.com"},
			},
			Base: map[string]concord.Value{name: st.Fields[name]}, BaseKnown: true, Rule: "hold", Reason: "both edited", Since: at,
		}
	}
	return st
}

// otherNames is engineRecord(i) with one field more: a name set of the
// same shape that differs by one name.
func otherNames(i int) *state.Record {
	st := engineRecord(i)
	st.Fields["zextra"] = "x"
	st.Units.Set("zextra", &state.Unit{Version: v(1, 1), Winner: "a", Rule: "fast-forward"})
	return st
}

// BenchmarkFormat6 encodes and decodes, in format 6, a sequence of 64
// records as the engine keeps them (20 fields, 2 systems): record=synced
// (suiteRecord), record=edited (engineRecord: Prev and Sent), record=held
// (heldRecord), and record=alternating (engineRecord and otherNames in
// turn: no two records in a row have the same names).
func BenchmarkFormat6(b *testing.B) {
	c := state.Codec{}
	for _, r := range []struct {
		name string
		make func(i int) *state.Record
	}{
		{"synced", suiteRecord},
		{"edited", engineRecord},
		{"held", heldRecord},
		{"alternating", func(i int) *state.Record {
			if i%2 == 0 {
				return engineRecord(i)
			}
			return otherNames(i)
		}},
	} {
		recs := make([]*state.Record, 64)
		data := make([][]byte, len(recs))
		for i := range recs {
			recs[i] = r.make(i)
			var err error
			if data[i], err = c.EncodeState(nil, recs[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("op=encode/record="+r.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.EncodeState(buf[:0], recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("op=decode/record="+r.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.DecodeState(data[i%len(data)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
