package sync_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/sync/store"
)

// countingStore counts the states each commit carries.
type countingStore struct {
	store.Store
	states []int // per commit
}

func (c *countingStore) Commit(ctx context.Context, cm *store.Commit) error {
	c.states = append(c.states, len(cm.States))
	return c.Store.Commit(ctx, cm)
}

func (c *countingStore) committed() (states int) {
	for _, n := range c.states {
		states += n
	}
	c.states = nil
	return states
}

// A cycle that reads back what the engine wrote, and nothing else,
// commits no state: it changed none. One that reads an edit of one record
// commits that record's state only, not the other records it read.
func TestUnchangedStatesAreNotCommitted(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "z"})
	cs := &countingStore{Store: r.store}
	r.cfg.Store = cs
	r.engine = r.newEngine()
	for i := range 40 {
		r.sys["a"].Edit(fmt.Sprintf("k%02d", i), map[string]concord.Value{"n": int64(i), "s": "x"})
	}
	r.cycle() // a's records written to z
	if n := cs.committed(); n < 40 {
		t.Fatalf("first cycle committed %d states, want every one of the 40 new records", n)
	}
	rep := r.cycle() // z reports the engine's writes back
	if rep.Echoes != 40 || rep.Records != 0 {
		t.Fatalf("echo cycle: %d echoes recognised, %d records merged; want 40 and 0", rep.Echoes, rep.Records)
	}
	if n := cs.committed(); n != 0 {
		t.Errorf("echo cycle committed %d states, want 0 (nothing changed)", n)
	}
	r.sys["z"].Edit("k07", map[string]concord.Value{"s": "y"})
	r.cycle()
	if n := cs.committed(); n == 0 || n > 2 {
		t.Errorf("cycle with one edit committed %d states, want that record's (once or twice: before and after its write)", n)
	}
	r.settle()
	r.requireAll("k07", map[string]any{"n": 7, "s": "y"})
	r.requireAll("k08", map[string]any{"n": 8, "s": "x"})
	// And a new engine on the same store sees the same state: nothing
	// skipped was needed.
	r.engine = r.newEngine()
	r.sys["a"].Edit("k08", map[string]concord.Value{"s": "a"})
	r.settle()
	r.requireAll("k08", map[string]any{"n": 8, "s": "a"})
}

// A cycle with more audit events than one chunk of the engine's event log
// stages and delivers every one, in order, with consecutive Seq.
func TestManyEventsInOneCycleAreDeliveredInOrder(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "z"})
	const n = 700 // > 512 events per chunk, several times over
	for i := range n {
		r.sys["a"].Edit(fmt.Sprintf("k%04d", i), map[string]concord.Value{"n": int64(i), "s": "x", "t": true})
	}
	r.cfg.MaxBatches = 1
	for i := range r.cfg.Systems {
		r.cfg.Systems[i].BatchSize = n
	}
	r.engine = r.newEngine()
	r.cycle()
	evs := r.audit.Events()
	if len(evs) < 3*n {
		t.Fatalf("%d events for %d records, want at least %d", len(evs), n, 3*n)
	}
	edits := 0
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d, want %d", i, ev.Seq, i+1)
		}
		if ev.Kind == audit.EditObserved {
			edits += len(ev.UnitNames()) // a record's new fields are one event
		}
	}
	if edits != 4*n { // three fields and the record's existence
		t.Errorf("%d edits observed, want %d", edits, 4*n)
	}
	if _, err := r.engine.VerifyAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The engine recognises the echoes of its last cycle's writes without
// loading their states, but only while nothing else committed since, and
// only for reports that match what it wrote exactly.
func TestEchoesAreRecognisedOnlyWhenExact(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "z"})
	for i := range 10 {
		r.sys["a"].Edit(fmt.Sprintf("k%d", i), map[string]concord.Value{"n": int64(i)})
	}
	r.cycle()
	// A person edits one record in z right after the engine's write: a
	// new tag, merged; the other nine are echoes.
	r.sys["z"].Edit("k3", map[string]concord.Value{"n": int64(33)})
	// A dry run in between (Plan) leaves the memory to the next cycle.
	if _, err := r.engine.Plan(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep := r.cycle()
	if rep.Echoes != 9 || rep.Records != 1 {
		t.Fatalf("echoes %d, records merged %d; want 9 and 1", rep.Echoes, rep.Records)
	}
	r.settle()
	r.requireAll("k3", map[string]any{"n": 33})

	// Another engine on the same store commits between this engine's
	// write and its read of the echoes: the memory is not trusted.
	for i := range 10 {
		r.sys["a"].Edit(fmt.Sprintf("k%d", i), map[string]concord.Value{"n": int64(100 + i)})
	}
	if rep := r.cycle(); rep.Systems["z"].Writes != 10 { // written to z, remembered
		t.Fatalf("%d writes to z, want 10", rep.Systems["z"].Writes)
	}
	other := r.newEngine()
	if err := other.ResetCursor(context.Background(), "z", "", "ops", "test"); err != nil {
		t.Fatal(err) // a commit with an audit event, by someone else
	}
	rep = r.cycle()
	if rep.Echoes != 0 || rep.Records < 10 {
		t.Errorf("after another engine's commit: %d echoes taken on trust, %d records merged; want 0 and every one", rep.Echoes, rep.Records)
	}
	r.sys["a"].Edit("k9", map[string]concord.Value{"s": "from a"})
	r.settle()
	r.requireAll("k9", map[string]any{"n": 109, "s": "from a"})
	r.requireAll("k0", map[string]any{"n": 100})
}
