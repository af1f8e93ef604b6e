package state_test

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
)

// highest returns, per actor, the highest counter among vs.
func highest(into map[concord.Actor]uint64, vs ...concord.Version) {
	for _, v := range vs {
		for i := range v.Len() {
			d := v.Dot(i)
			into[d.Actor] = max(into[d.Actor], d.Counter)
		}
	}
}

// TestTopCounter checks Record.TopCounter against the versions a record
// holds: a decoded record answers the highest counter of every version it
// decoded (units, previous versions, candidates, views, attempts), a record
// built in memory the highest of the versions a merge can put a dot in
// (units, candidates, views), and NoteDot raises the answer of the record it
// is called on, not of its clone's original.
func TestTopCounter(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genState(t)
		got, _ := recordRoundTrip(t, state.Codec{}, st)
		all, held := map[concord.Actor]uint64{}, map[concord.Actor]uint64{}
		for _, x := range st.Units {
			u := x.Value
			highest(all, u.Version, u.PrevVersion())
			highest(held, u.Version)
			if u.Hold != nil {
				for _, c := range u.Hold.Candidates {
					highest(all, c.Version)
					highest(held, c.Version)
				}
			}
		}
		for _, v := range st.Systems {
			for _, h := range v.Units {
				highest(all, h.Value.Version)
				highest(held, h.Value.Version)
			}
			for _, l := range v.Sent {
				for _, h := range l.Value {
					highest(all, h.Version)
				}
			}
		}
		all[concord.Actor(1<<31)], held[concord.Actor(1<<31)] = 0, 0 // an actor of no version
		for a, want := range all {
			if c := got.TopCounter(a); c != want {
				t.Fatalf("decoded: TopCounter(%d) = %d, want %d", a, c, want)
			}
			if c := st.TopCounter(a); c != held[a] {
				t.Fatalf("built: TopCounter(%d) = %d, want %d", a, c, held[a])
			}
		}
		a := rapid.SampledFrom([]concord.Actor{1, 2, 3, 1 << 31}).Draw(t, "actor")
		c := got.Clone()
		c.NoteDot(concord.Dot{Actor: a, Counter: all[a] + 5})
		c.NoteDot(concord.Dot{Actor: a, Counter: all[a] + 1}) // lower: no change
		if got := c.TopCounter(a); got != all[a]+5 {
			t.Fatalf("clone after NoteDot: TopCounter(%d) = %d, want %d", a, got, all[a]+5)
		}
		if c := got.TopCounter(a); c != all[a] {
			t.Fatalf("NoteDot on a clone changed the original: TopCounter(%d) = %d, want %d", a, c, all[a])
		}
	})
}
