package sync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
)

// benchRig is one 20-field record across 4 systems, all in sync.
type benchRig struct {
	e   *Engine
	st  *state.Record
	obs []*observation
}

func newBenchRig(b *testing.B) *benchRig {
	var cfg Config
	for i := range 4 {
		id := concord.SystemID(fmt.Sprintf("s%d", i))
		cfg.Systems = append(cfg.Systems, System{ID: id, Connector: fake.New(string(id))})
	}
	cfg.Resolver = resolve.LastWriterWins()
	cfg.Store = store.NewMemory()
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.init(context.Background()); err != nil {
		b.Fatal(err)
	}
	fields := map[string]concord.Value{}
	for i := range 20 {
		fields[fmt.Sprintf("field%02d", i)] = fmt.Sprintf("value %d", i)
	}
	fields["field00"] = 42
	fields["field01"] = true
	r := &benchRig{e: e, st: &state.Record{Key: "k", Fields: map[string]concord.Value{}, Units: state.Table[*state.Unit]{}, Systems: map[concord.SystemID]*state.View{}}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, s := range e.systems {
		r.obs = append(r.obs, observe(s, fields, t0.Add(time.Duration(i)*time.Second)))
	}
	// Sync: merge everything once and mark every system as holding it.
	if err := e.merger.mergeRecord(context.Background(), r.st, r.obs); err != nil {
		b.Fatal(err)
	}
	c := e.newCycle()
	for _, s := range e.systems {
		if w, err := c.plan(context.Background(), r.st, s); err != nil {
			b.Fatal(err)
		} else if w != nil {
			c.synced(r.st, s, w.rt, w.native, resultOK(w))
		}
	}
	if r.st.Pending() {
		b.Fatal("bench record not in sync")
	}
	return r
}

func observe(s *system, fields map[string]concord.Value, at time.Time) *observation {
	f := make(map[string]concord.Value, len(fields))
	for k, v := range fields {
		f[k] = v
	}
	rec := concord.Record{Key: "k", Fields: f, Modified: at}
	// full: read from a change feed, as a cycle reads (a pushed state no
	// newer than the one known would be left to the feed, unmerged).
	return &observation{sys: s, raw: rec, rec: rec, native: nativeOf(f), nativeIsRec: true, full: true}
}

// nativeOf returns the hashes of fields, as cycle.prepare computes them.
func nativeOf(fields map[string]concord.Value) []fieldHash {
	out := make([]fieldHash, 0, len(fields))
	for k, v := range fields {
		h, _ := concord.HashValue(v)
		out = append(out, fieldHash{k, h, v})
	}
	slices.SortFunc(out, func(a, b fieldHash) int { return strings.Compare(a.field, b.field) }) // as prepare sorts them
	return out
}

// setNative sets field f of hs to v and its hash.
func setNative(hs []fieldHash, f string, v concord.Value) {
	h, _ := concord.HashValue(v)
	for i := range hs {
		if hs[i].field == f {
			hs[i].hash, hs[i].value = h, v
			return
		}
	}
	panic("setNative: no field " + f)
}

func (r *benchRig) merge(b *testing.B) {
	r.e.merger.events = r.e.merger.events[:0]
	if err := r.e.merger.mergeRecord(context.Background(), r.st, r.obs); err != nil {
		b.Fatal(err)
	}
}

// lwwFloor is what a record-level last-writer-wins sync does with the same
// observations: take the record of the most recently modified system, and
// compare every system's fields with it to know what to write where. It
// detects no conflicts, keeps no versions and loses concurrent edits.
func lwwFloor(canonical map[string]concord.Value, obs []*observation) int {
	latest := obs[0]
	for _, o := range obs[1:] {
		if o.rec.Modified.After(latest.rec.Modified) {
			latest = o
		}
	}
	maps.Copy(canonical, latest.rec.Fields)
	writes := 0
	for _, o := range obs {
		for f, v := range canonical {
			if !concord.EqualValues(o.rec.Fields[f], v) {
				writes++
			}
		}
	}
	return writes
}

// BenchmarkMerge merges one 20-field record across 4 systems, beside a
// last-writer-wins loop over the same data as the floor.
//
//	go test ./sync -run '^$' -bench Merge -benchmem -count 10 | benchstat -col /impl -
func BenchmarkMerge(b *testing.B) {
	vals := []concord.Value{"alpha", "beta"}
	for _, path := range []string{"no-change", "one-field-change", "conflict"} {
		r := newBenchRig(b)
		canonical := concord.Record{Fields: r.st.Fields}.Clone().Fields
		i := 0
		step := func() {
			i++
			switch path {
			case "one-field-change":
				// One system edits one field; the others still hold
				// the value before.
				r.obs[1].rec.Fields["field05"] = vals[i%2]
				setNative(r.obs[1].native, "field05", vals[i%2])
				r.obs[1].rec.Modified = r.obs[1].rec.Modified.Add(time.Minute)
			case "conflict":
				// Two systems edit the same field concurrently.
				r.obs[1].rec.Fields["field05"] = vals[i%2]
				setNative(r.obs[1].native, "field05", vals[i%2])
				r.obs[2].rec.Fields["field05"] = vals[(i+1)%2]
				setNative(r.obs[2].native, "field05", vals[(i+1)%2])
				r.obs[1].rec.Modified = r.obs[1].rec.Modified.Add(time.Minute)
				r.obs[2].rec.Modified = r.obs[2].rec.Modified.Add(time.Minute)
			}
		}
		b.Run("path="+path+"/impl=concord", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				step()
				r.merge(b)
			}
			// The path merged what it is named for: an observation whose
			// values and hashes disagree would measure nothing.
			kind, want := audit.EditObserved, path != "no-change"
			if path == "conflict" {
				kind = audit.ConflictDetected
			}
			if got := slices.ContainsFunc(r.e.merger.events, func(ev audit.Event) bool { return ev.Kind == kind }); got != want {
				b.Fatalf("path %s: an event of kind %s in the last merge is %v, want %v: %v", path, kind, got, want, r.e.merger.events)
			}
		})
		b.Run("path="+path+"/impl=lww-floor", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				step()
				lwwFloor(canonical, r.obs)
			}
		})
	}
}
