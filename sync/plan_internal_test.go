package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/transform"
)

// A write to a system behind a transform.Func (no lineage) keeps the
// system's own copy (its notation) of every unit it holds whose canonical
// values the round trip gives back: the system then reports its notation
// or the canonical values, in sync either way. Where the round trip gives
// other values (lossy: the inbound Func here trims the values, whose
// canonical ones end in a space), it records anew the units the write can
// change, found by asking the Func what it makes of the record without the
// fields written, and keeps the copies of the others. The Funcs put street
// and city into one native field, addr: a write of a new street rewrites
// addr, so the city's copy is recorded as the round trip gives it, while
// the name's, which addr does not feed, keeps the system's notation. A
// Func that fails on the record without addr tells nothing: then every
// unit that needed its answer is recorded, and the others (zone, whose
// round trip is never lossy) keep their copies.
func TestAFuncWriteRecordsTheUnitsItsFieldsFeed(t *testing.T) {
	for _, lossy := range []bool{false, true} {
		for _, fails := range []bool{false, true} {
			t.Run(fmt.Sprintf("lossy=%v/fails=%v", lossy, fails), func(t *testing.T) { testFuncWriteRecords(t, lossy, fails) })
		}
	}
}

func testFuncWriteRecords(t *testing.T, lossy, fails bool) {
	ctx := context.Background()
	out := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		f := map[string]concord.Value{}
		for k, v := range r.Fields {
			switch k {
			case "street", "city":
			default:
				f[k] = v
			}
		}
		if _, ok := r.Fields["street"]; ok {
			f["addr"] = fmt.Sprint(r.Fields["street"]) + "|" + fmt.Sprint(r.Fields["city"])
		}
		r.Fields = f
		return r, nil
	})
	asked := 0 // calls without addr: plan's question
	in := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		if _, ok := r.Fields["addr"]; !ok {
			asked++
		}
		if _, ok := r.Fields["addr"]; fails && !ok {
			return concord.Record{}, errors.New("no addr")
		}
		f := map[string]concord.Value{}
		for k, v := range r.Fields {
			if k == "addr" {
				street, city, _ := strings.Cut(v.(string), "|")
				f["street"], f["city"] = street, city
				continue
			}
			f[k] = v
		}
		if lossy {
			for k, v := range f {
				if s, ok := v.(string); ok {
					f[k] = strings.TrimSpace(s)
				}
			}
		}
		r.Fields = f
		return r, nil
	})
	e, err := New(Config{Store: store.NewMemory(), Resolver: resolve.LastWriterWins(), Systems: []System{
		{ID: "a", Connector: fake.New("a")},
		{ID: "w", Connector: fake.New("w"), Inbound: in, Outbound: out},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.init(ctx); err != nil {
		t.Fatal(err)
	}
	a, w := e.systems[0], e.systems[1]
	if a.id != "a" {
		a, w = w, a
	}
	st := &state.Record{Key: "k", Fields: map[string]concord.Value{}, Units: state.Table[*state.Unit]{}, Systems: map[concord.SystemID]*state.View{}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// zone's round trip is never lossy (no space to trim), and it sorts
	// after the city: a Func that fails on the city's question still
	// leaves it its copy.
	fields := map[string]concord.Value{"street": "1 Main St", "city": "Leeds ", "name": "Ada ", "zone": "Z1"}
	if err := e.merger.mergeRecord(ctx, st, []*observation{observe(a, fields, t0)}); err != nil {
		t.Fatal(err)
	}
	c := e.newCycle()
	for _, s := range e.systems {
		if wr, err := c.plan(ctx, st, s); err != nil {
			t.Fatal(err)
		} else if wr != nil {
			c.synced(st, s, wr.rt, wr.native, resultOK(wr))
		}
	}
	// w holds every unit at the canonical version, the city, the name
	// and the zone in its own notation.
	view := st.Systems[w.id]
	for _, name := range []string{"city", "name", "zone"} {
		u := st.Units.Value(name)
		if !view.HoldsAt(-1, name, u.Version) {
			t.Fatalf("w does not hold %s after its create", name)
		}
		view.Units.Set(name, state.Copy{Hash: 7, Version: u.Version})
	}
	fields["street"] = "2 High St"
	if err := e.merger.mergeRecord(ctx, st, []*observation{observe(a, fields, t0.Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	asked = 0
	wr, err := c.plan(ctx, st, w)
	if err != nil {
		t.Fatal(err)
	}
	if wr == nil {
		t.Fatal("no write of the new street to w")
	}
	// Once per write where a held unit's round trip is lossy (also when
	// the answer is a failure), never where it is not.
	if want := map[bool]int{true: 1}[lossy]; asked != want {
		t.Errorf("the Func was asked %d times without addr, want %d", asked, want)
	}
	var units []string
	for _, x := range wr.rt {
		units = append(units, x.unit)
	}
	slices.Sort(units)
	want := []string{"street"} // the round trip gives the city and the name back: kept without asking
	switch {
	case lossy && fails:
		want = []string{"city", "name", "street"}
	case lossy:
		want = []string{"city", "street"} // addr feeds the city, not the name
	}
	if !slices.Equal(units, want) {
		t.Fatalf("the write records %v anew, want %v", units, want)
	}
}
