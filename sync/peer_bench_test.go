package sync

// The in-engine halves of issue 13's comparison with automerge-go: "merge
// alone ≥ 100× faster and the full round ≥ 10× faster than automerge-go on
// the same edits". The automerge figures are BenchmarkPeer/impl=automerge
// in internal/bench/automerge (a module of its own, cgo), which merges two
// automerge documents per record; the records, fields, values and edits
// here are exactly that benchmark's (peerRecord, edits), and
// internal/bench/ratios.sh prints the ratios of the two runs.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
)

const (
	peerRecords = 1000 // records merged per round
	peerFields  = 20
)

// peerRecord is record i as both systems first hold it: the record of
// BenchmarkPeer in internal/bench/automerge.
func peerRecord(i int) map[string]concord.Value {
	f := make(map[string]concord.Value, peerFields)
	for j := range peerFields {
		f[fmt.Sprintf("field%02d", j)] = fmt.Sprintf("value %d of record %d", j, i)
	}
	return f
}

func peerKey(i int) string { return fmt.Sprintf("k%04d", i) }

// peerEdits gives, per case, the fields each system changes in a round, as
// BenchmarkPeer's edits does: different fields (disjoint), or the same
// field to the same value (same). Every round has new values.
func peerEdits(c string, round int) (a, z map[string]concord.Value) {
	v := fmt.Sprintf("round %d", round)
	if c == "disjoint" {
		return map[string]concord.Value{"field02": v + " a"}, map[string]concord.Value{"field03": v + " z"}
	}
	return map[string]concord.Value{"field02": v}, map[string]concord.Value{"field02": v}
}

// newPeerEngine is an engine between systems a and z (in this order in
// e.systems) with last-writer-wins and the memory store, initialised (its
// actors assigned) but never cycled: the benchmarks drive its parts.
func newPeerEngine(b *testing.B, a, z *fake.System) *Engine {
	b.Helper()
	e, err := New(Config{Store: store.NewMemory(), Resolver: resolve.LastWriterWins(),
		Logger:  slog.New(slog.DiscardHandler),
		Systems: []System{{ID: "a", Connector: a}, {ID: "z", Connector: z}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.init(context.Background()); err != nil {
		b.Fatal(err)
	}
	if e.systems[0].id != "a" || e.systems[1].id != "z" {
		b.Fatalf("systems in order %s, %s; want a, z", e.systems[0].id, e.systems[1].id)
	}
	return e
}

// checkPeerFields fails b unless st holds exactly want and nothing is held
// for a person.
func checkPeerFields(b *testing.B, what string, st *state.Record, want map[string]concord.Value) {
	b.Helper()
	if len(st.Fields) != len(want) {
		b.Fatalf("%s: record %s has %d fields, want %d: %v", what, st.Key, len(st.Fields), len(want), st.Fields)
	}
	for f, v := range want {
		if got, ok := st.Fields[f]; !ok || !concord.EqualValues(got, v) {
			b.Fatalf("%s: record %s field %s is %v, want %v", what, st.Key, f, got, v)
		}
	}
	if st.Held() {
		b.Fatalf("%s: record %s has a unit held for a person", what, st.Key)
	}
}

// BenchmarkPeerMerge is the engine's side of the comparison with
// automerge-go (BenchmarkPeer in internal/bench/automerge): two systems
// edit 1,000 20-field records in every round, and the states are kept
// across rounds as automerge keeps its documents.
//
//   - impl=merge is the merge alone: merger.mergeRecord of each record's
//     state with both systems' observations, built outside the timer by
//     the cycle's own cycle.prepare (validation, hashing). Outside the
//     timer too, each round checks the merged values, then plans the
//     writes and marks them made (cycle.plan, cycle.synced), so that every
//     round starts from records in sync and merges two new edits.
//   - impl=round is what a cycle does per record without I/O and without
//     the store: cycle.observe of each system's reported records (as read
//     from the fakes' change feeds, outside the timer), cycle.merge
//     (detect, merge, gates, the audit events), cycle.planWrites, and for
//     every write the bookkeeping of a success (writeSucceeded, synced
//     with the fake's reply) and trackDivergence. Reading the feeds,
//     applying the patches to the fakes, the store's load and commit and
//     the emission of the audit events are outside the timer or not done.
//
// Both report ns/record; the same edits made in automerge-go and merged
// there are BenchmarkPeer/impl=automerge's ns/record:
//
//	go test ./sync -run '^$' -bench PeerMerge -benchmem -count 5
func BenchmarkPeerMerge(b *testing.B) {
	for _, c := range []string{"disjoint", "same"} {
		b.Run("case="+c+"/impl=merge", func(b *testing.B) { benchPeerMergeAlone(b, c) })
		b.Run("case="+c+"/impl=round", func(b *testing.B) { benchPeerRound(b, c) })
	}
}

func benchPeerMergeAlone(b *testing.B, c string) {
	ctx := context.Background()
	e := newPeerEngine(b, fake.New("a"), fake.New("z"))
	m := e.merger
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	want := make([]map[string]concord.Value, peerRecords) // canonical values, as both systems hold them
	states := make([]*state.Record, peerRecords)
	obs := make([][]*observation, peerRecords)
	// observe builds each system's observation of every record as the
	// cycle does (cycle.prepare; full: read from a change feed), each
	// system's record being the canonical one with its edits.
	observe := func(round int, edits ...map[string]concord.Value) {
		cy := e.newCycle()
		at := t0.Add(time.Duration(round) * time.Minute)
		for i := range peerRecords {
			obs[i] = obs[i][:0]
			for j, s := range e.systems {
				f := maps.Clone(want[i])
				maps.Copy(f, edits[j])
				o, err := cy.prepare(ctx, s, concord.Record{Key: peerKey(i), Fields: f, Modified: at,
					Tag: fmt.Sprintf("%s-%d", s.id, round)})
				if err != nil {
					b.Fatal(err)
				}
				o.full = true
				obs[i] = append(obs[i], o)
			}
		}
	}
	merge := func(i int) {
		m.events = m.events[:0]
		if err := m.mergeRecord(ctx, states[i], obs[i]); err != nil {
			b.Fatalf("merging record %s: %v", states[i].Key, err)
		}
	}
	// settle plans each record's writes and marks them made, as a cycle
	// whose writes all succeed does, and returns how many there were.
	settle := func() int {
		cy := e.newCycle()
		writes := 0
		for _, st := range states {
			for _, s := range e.systems {
				w, err := cy.plan(ctx, st, s)
				if err != nil {
					b.Fatalf("planning %s for %s: %v", st.Key, s.id, err)
				}
				if w != nil {
					writes++
					cy.synced(st, s, w.rt, w.native, resultOK(w))
				}
			}
			if st.Pending() {
				b.Fatalf("record %s still has writes outstanding after its writes", st.Key)
			}
		}
		return writes
	}

	// In sync: both systems hold every record; merge once and settle.
	for i := range peerRecords {
		want[i] = peerRecord(i)
		states[i] = &state.Record{Key: peerKey(i), Fields: map[string]concord.Value{},
			Units: state.Table[*state.Unit]{}, Systems: map[concord.SystemID]*state.View{}}
	}
	observe(0, nil, nil)
	for i := range peerRecords {
		merge(i)
		checkPeerFields(b, "initial merge", states[i], want[i])
	}
	settle()

	wantWrites := 0 // a gets z's edit and z gets a's
	if c == "disjoint" {
		wantWrites = 2 * peerRecords
	}
	round := 0
	for b.Loop() {
		b.StopTimer()
		round++
		ea, ez := peerEdits(c, round)
		observe(round, ea, ez)
		b.StartTimer()
		for i := range peerRecords {
			merge(i)
		}
		b.StopTimer()
		for i := range peerRecords {
			maps.Copy(want[i], ea)
			maps.Copy(want[i], ez)
			checkPeerFields(b, fmt.Sprintf("round %d", round), states[i], want[i])
		}
		if n := settle(); n != wantWrites {
			b.Fatalf("round %d: the merges planned %d writes, want %d", round, n, wantWrites)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/peerRecords, "ns/record")
}

// peerRound drives an engine's cycles by parts over two fakes, without a
// store: the states are kept here.
type peerRound struct {
	e       *Engine
	fakes   []*fake.System // by index in e.systems
	cursors []connector.Cursor
	states  map[string]*state.Record
	recs    [][]concord.Record // read in this round, by system
}

// read reads every system's change feed from its cursor (I/O: outside the
// timer).
func (r *peerRound) read(b *testing.B) {
	ctx := context.Background()
	for i, f := range r.fakes {
		batch, err := f.Changes(ctx, r.cursors[i], 4*peerRecords)
		if err != nil {
			b.Fatal(err)
		}
		if batch.More {
			b.Fatalf("%s has more than %d changes", f.Name(), 4*peerRecords)
		}
		r.recs[i], r.cursors[i] = batch.Records, batch.Next
	}
}

// cycle observes what read read, merges and plans: the cycle's steps
// between the reads and the writes.
func (r *peerRound) cycle(b *testing.B) (*cycle, []*state.Record, [][]*write) {
	ctx := context.Background()
	c := r.e.newCycle()
	for i, s := range r.e.systems {
		if err := c.observe(ctx, s, r.recs[i], true); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]string, 0, len(c.obs))
	for k := range c.obs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	merged := c.merge(ctx, keys, r.states)
	return c, merged, c.planWrites(ctx, merged)
}

// apply sends the planned writes to the fakes (I/O: outside the timer) and
// fails b unless every one succeeds.
func (r *peerRound) apply(b *testing.B, per [][]*write) {
	ctx := context.Background()
	for i, ws := range per {
		if len(ws) == 0 {
			continue
		}
		patches := make([]connector.Patch, len(ws))
		for j, w := range ws {
			patches[j] = w.patch
		}
		res, err := r.fakes[i].Apply(ctx, patches)
		if err != nil {
			b.Fatal(err)
		}
		if len(res) != len(ws) {
			b.Fatalf("%s answered %d results for %d patches", r.fakes[i].Name(), len(res), len(ws))
		}
		for j, w := range ws {
			if res[j].Err != nil || res[j].Key != w.patch.Key {
				b.Fatalf("writing %s to %s: %v (answered for %q)", w.patch.Key, r.fakes[i].Name(), res[j].Err, res[j].Key)
			}
			w.result = res[j]
		}
	}
}

// confirm records the succeeded writes in the states, as cycle.send does
// after a successful reply, and tracks divergence.
func (r *peerRound) confirm(c *cycle, merged []*state.Record, per [][]*write) {
	for i, s := range r.e.systems {
		for _, w := range per[i] {
			c.writeSucceeded(w.st, s)
			c.synced(w.st, s, w.rt, w.native, w.result)
		}
	}
	c.trackDivergence(merged)
}

// check fails b unless the cycle merged n records without failures, with
// edits edits per system and writes writes per system, and every record
// is now in sync: the states and both fakes hold want.
func (r *peerRound) check(b *testing.B, what string, c *cycle, merged []*state.Record, per [][]*write, n, edits, writes int, want func(i int) map[string]concord.Value) {
	b.Helper()
	if len(c.report.Failures) > 0 {
		b.Fatalf("%s: %d failures, the first %v", what, len(c.report.Failures), c.report.Failures[0])
	}
	if len(merged) != n {
		b.Fatalf("%s: merged %d records, want %d", what, len(merged), n)
	}
	for i, s := range r.e.systems {
		if got := c.report.Systems[s.id].Edits; got != edits {
			b.Fatalf("%s: %d edits observed in %s, want %d", what, got, s.id, edits)
		}
		if len(per[i]) != writes {
			b.Fatalf("%s: %d writes planned to %s, want %d", what, len(per[i]), s.id, writes)
		}
	}
	for i := range peerRecords {
		k := peerKey(i)
		st := r.states[k]
		if st == nil {
			b.Fatalf("%s: no state of %s", what, k)
		}
		w := want(i)
		checkPeerFields(b, what, st, w)
		if st.Disagree() {
			b.Fatalf("%s: record %s: the systems do not hold the canonical values", what, k)
		}
		for _, f := range r.fakes {
			rec, ok := f.Record(k)
			if !ok {
				b.Fatalf("%s: %s has no record %s", what, f.Name(), k)
			}
			for name, v := range w {
				if !concord.EqualValues(rec.Fields[name], v) {
					b.Fatalf("%s: %s holds %v in %s.%s, want %v", what, f.Name(), rec.Fields[name], k, name, v)
				}
			}
		}
	}
}

func benchPeerRound(b *testing.B, c string) {
	fa, fz := fake.New("a"), fake.New("z")
	r := &peerRound{e: newPeerEngine(b, fa, fz), fakes: []*fake.System{fa, fz},
		cursors: make([]connector.Cursor, 2), states: map[string]*state.Record{}, recs: make([][]concord.Record, 2)}
	want := make([]map[string]concord.Value, peerRecords)
	for i := range peerRecords {
		want[i] = peerRecord(i)
		fa.Edit(peerKey(i), want[i])
	}
	wantOf := func(i int) map[string]concord.Value { return want[i] }
	// In sync: the first cycle creates every record in z, the second
	// reads z's creations back (its echoes).
	for n := range 2 {
		r.read(b)
		cy, merged, per := r.cycle(b)
		r.apply(b, per)
		r.confirm(cy, merged, per)
		for _, st := range merged {
			r.states[st.Key] = st
		}
		if n == 0 { // a created every record (each field and its existence); z has none
			if got := cy.report.Systems["a"].Edits; got != (peerFields+1)*peerRecords || len(per[0]) != 0 || len(per[1]) != peerRecords {
				b.Fatalf("initial cycle: %d edits in a, %d writes to a and %d to z", got, len(per[0]), len(per[1]))
			}
			continue
		}
		r.check(b, "echo of the initial sync", cy, merged, per, peerRecords, 0, 0, wantOf)
	}

	writes := 0 // each system gets the other's edit
	if c == "disjoint" {
		writes = peerRecords
	}
	round := 0
	for b.Loop() {
		b.StopTimer()
		round++
		ea, ez := peerEdits(c, round)
		for i := range peerRecords {
			fa.Edit(peerKey(i), ea)
			fz.Edit(peerKey(i), ez)
			maps.Copy(want[i], ea)
			maps.Copy(want[i], ez)
		}
		r.read(b)
		b.StartTimer()
		cy, merged, per := r.cycle(b)
		b.StopTimer()
		r.apply(b, per)
		b.StartTimer()
		r.confirm(cy, merged, per)
		b.StopTimer()
		r.check(b, fmt.Sprintf("round %d", round), cy, merged, per, peerRecords, peerRecords, writes, wantOf)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/peerRecords, "ns/record")
}
