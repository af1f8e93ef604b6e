package sync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
)

// propEngine is an engine over n systems whose merge is driven directly,
// without connectors: the property tests feed it observations.
func propEngine(t rapid.TB, n int) *Engine {
	t.Helper()
	var cfg Config
	var ids []concord.SystemID
	for i := range n {
		id := concord.SystemID(fmt.Sprintf("s%d", i))
		ids = append(ids, id)
		cfg.Systems = append(cfg.Systems, System{ID: id, Connector: fake.New(string(id))})
	}
	cfg.Groups = map[string][]string{"addr": {"street", "zip"}}
	// Always decides: by the systems' timestamps, then by name.
	cfg.Resolver = resolve.Chain(resolve.LastWriterWins(), resolve.Priority(ids...))
	cfg.Now = func() time.Time { return time.Unix(0, 0) }
	cfg.Store = store.NewMemory()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

var propFields = []string{"a", "b", "street", "zip"}

// genObs draws full records (as connectors report them) or deletes from
// distinct systems, with distinct timestamps after base.
func genObs(t *rapid.T, e *Engine, label string, base time.Time) []*observation {
	n := len(e.systems)
	picked := rapid.SliceOfNDistinct(rapid.IntRange(0, n-1), 1, n, rapid.ID[int]).Draw(t, label+"-systems")
	var out []*observation
	for i, si := range picked {
		fields := map[string]concord.Value{}
		for _, f := range propFields {
			// A small domain, so that equal values happen.
			fields[f] = rapid.SampledFrom([]string{"x", "y", "z"}).Draw(t, label+"-"+f)
		}
		rec := concord.Record{Key: "k", Fields: fields, Modified: base.Add(time.Duration(i+1) * time.Second)}
		native := nativeOf(fields)
		if rapid.IntRange(0, 9).Draw(t, label+"-delete") == 0 {
			rec, native = concord.Record{Key: "k", Deleted: true, Modified: rec.Modified}, nil
		}
		// Both ways of walking the fields (see detect) are exercised.
		sorted := rapid.Bool().Draw(t, label+"-sorted")
		out = append(out, &observation{sys: e.systems[si], raw: rec, rec: rec, native: native, nativeIsRec: sorted && !rec.Deleted})
	}
	return out
}

// genState builds a state by a few rounds of merges and partial pushes.
func genState(t *rapid.T, e *Engine) (*state.Record, time.Time) {
	st := &state.Record{Key: "k", Fields: map[string]concord.Value{}, Units: state.Table[*state.Unit]{}, Systems: map[concord.SystemID]*state.View{}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rounds := rapid.IntRange(0, 4).Draw(t, "rounds")
	for r := range rounds {
		obs := genObs(t, e, fmt.Sprintf("r%d", r), now)
		now = now.Add(time.Minute)
		if err := e.merger.mergeRecord(context.Background(), st, obs); err != nil {
			t.Fatal(err)
		}
		// Push to some systems, as a cycle whose other writes failed.
		c := e.newCycle()
		for _, s := range e.systems {
			if st.Stale(st.Systems[s.id]) && rapid.Bool().Draw(t, "push") {
				w, err := c.plan(context.Background(), st, s)
				if err != nil {
					t.Fatal(err)
				}
				if w != nil {
					c.synced(st, s, w.rt, w.native, resultOK(w))
				}
			}
		}
	}
	e.merger.events = e.merger.events[:0]
	return st, now
}

// dump renders everything of a state that the merge decides: values,
// versions, holds and what each system is recorded to hold; withHistory adds
// what depends on the path taken (winners, rules, the previous value, the
// exact older version a system holds).
func dump(st *state.Record, withHistory bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "deleted=%v\n", st.Deleted)
	for _, f := range sortedKeysOf(st.Fields) {
		enc, _ := concord.AppendCanonical(nil, st.Fields[f])
		fmt.Fprintf(&b, "field %s=%q\n", f, enc)
	}
	for _, ux := range st.Units {
		u, x := ux.Name, ux.Value
		if u == resolve.RecordUnit && !withHistory {
			// The existence version is a record-level context that
			// takes in field edits as they are merged: which of them
			// depends on how edits were grouped into cycles.
			continue
		}
		fmt.Fprintf(&b, "unit %s v=%v held=%v\n", u, x.Version, x.Hold != nil)
		if withHistory {
			fmt.Fprintf(&b, "  winner=%s rule=%s prev=%v\n", x.Winner, x.Rule, x.PrevVersion())
		}
	}
	for _, s := range sortedKeysOf(st.Systems) {
		v := st.Systems[s]
		fmt.Fprintf(&b, "system %s seen=%v deleted=%v\n", s, v.Seen, v.Deleted)
		for _, x := range v.Units {
			u, h := x.Name, x.Value
			if u == resolve.RecordUnit && !withHistory {
				continue
			}
			// Whether the system holds the canonical version matters;
			// which older version it holds may depend on the path.
			inSync := st.Units.Value(u) != nil && h.Version.Compare(st.Units.Value(u).Version) == concord.Equal
			fmt.Fprintf(&b, "  %s %x in-sync=%v", u, h.Hash, inSync)
			if withHistory {
				fmt.Fprintf(&b, " %v", h.Version)
			}
			b.WriteByte('\n')
		}
		for _, x := range v.Native {
			fmt.Fprintf(&b, "  native %s %x\n", x.Name, x.Value)
		}
	}
	return b.String()
}

func sortedKeysOf[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// The order in which systems are read within a cycle does not matter.
func TestMergeIsCommutative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := propEngine(t, rapid.IntRange(2, 5).Draw(t, "systems"))
		st, now := genState(t, e)
		obs := genObs(t, e, "final", now)
		a, b := st.Clone(), st.Clone()
		if err := e.merger.mergeRecord(context.Background(), a, obs); err != nil {
			t.Fatal(err)
		}
		// rapid draws (and shrinks) the read order: every permutation is
		// reachable, not one fixed by the input's length.
		perm := rapid.Permutation(obs).Draw(t, "read order")
		if err := e.merger.mergeRecord(context.Background(), b, perm); err != nil {
			t.Fatal(err)
		}
		if da, db := dump(a, true), dump(b, true); da != db {
			t.Fatalf("merge depends on read order:\n%s\nvs\n%s", da, db)
		}
	})
}

// Reading the same systems in one cycle or spread over two (with no write
// in between) ends in the same values and versions.
func TestMergeIsAssociative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := propEngine(t, rapid.IntRange(2, 5).Draw(t, "systems"))
		st, now := genState(t, e)
		obs := genObs(t, e, "final", now)
		split := rapid.IntRange(0, len(obs)).Draw(t, "split")
		a, b := st.Clone(), st.Clone()
		if err := e.merger.mergeRecord(context.Background(), a, obs); err != nil {
			t.Fatal(err)
		}
		for _, part := range [][]*observation{obs[:split], obs[split:]} {
			if err := e.merger.mergeRecord(context.Background(), b, part); err != nil {
				t.Fatal(err)
			}
		}
		if da, db := dump(a, false), dump(b, false); da != db {
			t.Fatalf("one cycle and two cycles differ:\n%s\nvs\n%s", da, db)
		}
	})
}

// Merging the same observations again changes nothing and reports nothing.
func TestMergeIsIdempotent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := propEngine(t, rapid.IntRange(2, 5).Draw(t, "systems"))
		st, now := genState(t, e)
		obs := genObs(t, e, "final", now)
		if err := e.merger.mergeRecord(context.Background(), st, obs); err != nil {
			t.Fatal(err)
		}
		before := dump(st, true)
		e.merger.events = e.merger.events[:0]
		if err := e.merger.mergeRecord(context.Background(), st, obs); err != nil {
			t.Fatal(err)
		}
		if after := dump(st, true); after != before {
			t.Fatalf("replay changed the state:\n%s\nvs\n%s", before, after)
		}
		if len(e.merger.events) != 0 {
			t.Fatalf("replay emitted %d events, first %v", len(e.merger.events), e.merger.events[0].Kind)
		}
	})
}

// resultOK is the result of a successful write of w, for simulations.
func resultOK(w *write) connector.Result { return connector.Result{Key: w.patch.Key} }

// Walking an observation's fields in name order (no inbound transform:
// observation.nativeIsRec) or in its map's order merges the same, for
// whole records (which may lack fields the system held: forgetMissing)
// and partial ones.
func TestMergeFieldOrderIsInvisible(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := propEngine(t, rapid.IntRange(2, 5).Draw(t, "systems"))
		st, now := genState(t, e)
		obs := genObs(t, e, "final", now)
		walked, mapped := make([]*observation, len(obs)), make([]*observation, len(obs))
		for i, o := range obs {
			o.full = rapid.Bool().Draw(t, "full")
			if !o.rec.Deleted {
				fields := maps.Clone(o.rec.Fields)
				for _, f := range propFields {
					if rapid.IntRange(0, 3).Draw(t, "drop "+f) == 0 {
						delete(fields, f)
					}
				}
				o.raw.Fields, o.rec.Fields, o.native = fields, fields, nativeOf(fields)
			}
			w, m := *o, *o
			w.nativeIsRec, m.nativeIsRec = !o.rec.Deleted, false
			walked[i], mapped[i] = &w, &m
		}
		a, b := st.Clone(), st.Clone()
		e.merger.events = e.merger.events[:0]
		if err := e.merger.mergeRecord(context.Background(), a, walked); err != nil {
			t.Fatal(err)
		}
		na := len(e.merger.events)
		e.merger.events = e.merger.events[:0]
		if err := e.merger.mergeRecord(context.Background(), b, mapped); err != nil {
			t.Fatal(err)
		}
		if da, db := dump(a, true), dump(b, true); da != db || na != len(e.merger.events) {
			t.Fatalf("walking the fields in order changed the merge (%d events, %d):\n%s\nvs\n%s", na, len(e.merger.events), da, db)
		}
	})
}
