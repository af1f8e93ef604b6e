package sync_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/transform"
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

// mappedZ is a rig of a and z whose z names n "z_n" (a Mapping behind a
// Func that counts its inbound calls and refuses z_n = 5 while refuse is
// set), with a's records k0…k(n-1) written to z.
type mappedZ struct {
	*rig
	calls  atomic.Int64
	refuse atomic.Bool
}

func newMappedZ(t *testing.T, n int) *mappedZ {
	t.Helper()
	r := &mappedZ{rig: newRig(t, []concord.SystemID{"a", "z"})}
	m := transform.MustMapping(transform.Rename("z_n", "n"))
	in := transform.Func(func(ctx context.Context, rec concord.Record) (concord.Record, error) {
		r.calls.Add(1)
		if r.refuse.Load() && rec.Fields["z_n"] == int64(5) {
			return concord.Record{}, errors.New("z_n 5 refused")
		}
		return m.Inbound().Transform(ctx, rec)
	})
	r.cfg.Systems[1].Inbound, r.cfg.Systems[1].Outbound = in, m.Outbound()
	r.engine = r.newEngine()
	for i := range n {
		r.sys["a"].Edit(fmt.Sprintf("k%d", i), map[string]concord.Value{"n": int64(i)})
	}
	r.cycle() // written to z
	r.calls.Store(0)
	return r
}

// zHolds fails t unless z holds n of key.
func (r *mappedZ) zHolds(t *testing.T, key string, n int64) {
	t.Helper()
	if got, _ := r.sys["z"].Record(key); got.Fields["z_n"] != n {
		t.Errorf("z holds %s %v, want z_n %d", key, got.Fields, n)
	}
}

// A report exactly as the engine's last write left it waits for its
// inbound transform: recognised as an echo it never needs one; merged
// after all (another system edited the record in the same cycle) it is
// transformed then, and one whose transform fails then is quarantined as
// it would have been on reading.
func TestAnEchosInboundTransformRunsOnlyIfItIsMerged(t *testing.T) {
	r := newMappedZ(t, 10)
	r.sys["a"].Edit("k3", map[string]concord.Value{"n": int64(33)})
	rep := r.cycle()
	if rep.Echoes != 9 || rep.Records != 1 {
		t.Fatalf("echoes %d, records merged %d; want 9 and 1", rep.Echoes, rep.Records)
	}
	// k3's report from z, transformed once merged, and the round trip of
	// the write of 33 to z; not the nine echoes. (Nor the record without
	// the field written, which plan asks a Func only where z holds a
	// unit in a notation of its own.)
	if n := r.calls.Load(); n != 2 {
		t.Errorf("%d inbound transforms, want 2", n)
	}
	r.settle()
	r.zHolds(t, "k3", 33)

	r.sys["a"].Edit("k6", map[string]concord.Value{"n": int64(5)})
	r.cycle() // 5 written to k6 in z
	r.refuse.Store(true)
	r.sys["a"].Edit("k6", map[string]concord.Value{"n": int64(7)})
	rep = r.cycle() // z reports k6 = 5, a's edit makes it merged: refused
	if q := rep.Systems["z"].Quarantined; q != 1 {
		t.Fatalf("%d records of z quarantined, want k6's", q)
	}
	dead, err := r.engine.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Key != "k6" || dead[0].System != "z" || !dead[0].Inbound || !strings.Contains(dead[0].Reason, "z_n 5 refused") {
		t.Fatalf("dead letters %+v, want z's k6 refused by the transform", dead)
	}
	r.refuse.Store(false)
	r.settle()
	r.zHolds(t, "k6", 7)
}

// A webhook that delivers the engine's own write is recognised as its echo
// without the inbound transform too; one that delivers a person's edit is
// transformed and merged.
func TestAWebhookEchoTakesNoInboundTransform(t *testing.T) {
	r := newMappedZ(t, 5)
	r.sys["z"].Edit("k4", map[string]concord.Value{"z_n": int64(44)})
	var pushed []concord.Record
	for i := range 5 {
		rec, _ := r.sys["z"].Record(fmt.Sprintf("k%d", i))
		pushed = append(pushed, rec)
	}
	rep, err := r.engine.Ingest(context.Background(), "z", pushed)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Echoes != 4 || rep.Records != 1 {
		t.Fatalf("echoes %d, records merged %d; want 4 and k4", rep.Echoes, rep.Records)
	}
	// k4's edit, and the round trip of writing it to a? a has no
	// transform: k4's report alone.
	if n := r.calls.Load(); n != 1 {
		t.Errorf("%d inbound transforms, want 1 (k4's edit)", n)
	}
	r.settle()
	if got, _ := r.sys["a"].Record("k4"); got.Fields["n"] != int64(44) {
		t.Errorf("a holds k4 %v, want n 44", got.Fields)
	}
}

// A record pushed twice in one call, one of the two an echo the transform
// refuses once it must be merged after all (its canonical form was
// deferred): the refused one is quarantined, the other merged, and the
// records after it in the same call are observed too.
func TestARecordReadTwiceWithOneReportRefused(t *testing.T) {
	r := newMappedZ(t, 4)
	for key, n := range map[string]int64{"k0": 5, "k1": 5, "k2": 22} {
		r.sys["a"].Edit(key, map[string]concord.Value{"n": n})
	}
	r.cycle() // written to z: the echo memory holds k0, k1, k2
	r.refuse.Store(true)
	echo := func(key string) concord.Record {
		got, _ := r.sys["z"].Record(key)
		return got
	}
	edit := func(key string, n int64) concord.Record {
		// A person's edit after the write, as a webhook pushes it.
		got := echo(key)
		got.Fields, got.Tag, got.Modified = map[string]concord.Value{"z_n": n}, got.Tag+"'", got.Modified.Add(time.Minute)
		return got
	}
	rep, err := r.engine.Ingest(context.Background(), "z", []concord.Record{
		echo("k0"), edit("k0", 10), // the first refused: the second kept
		edit("k1", 11), echo("k1"), // the second refused
		echo("k2"), // an echo, after both
		edit("k3", 13),
	})
	if rep == nil || err == nil || !strings.Contains(err.Error(), "2 failures") {
		t.Fatalf("Ingest: %v; want the two refusals as its failures", err)
	}
	if q := rep.Systems["z"].Quarantined; q != 2 {
		t.Errorf("%d reports quarantined, want 2", q)
	}
	if rep.Echoes != 1 || rep.Records != 3 {
		t.Errorf("echoes %d, records merged %d; want k2, and k0, k1, k3", rep.Echoes, rep.Records)
	}
	r.refuse.Store(false)
	r.settle()
	for key, n := range map[string]int64{"k0": 10, "k1": 11, "k2": 22, "k3": 13} {
		if got, _ := r.sys["a"].Record(key); got.Fields["n"] != n {
			t.Errorf("a holds %s %v, want n %d", key, got.Fields, n)
		}
	}
}

// A write to a system whose outbound transform is a Mapping takes one
// outbound transform of the record: which of the system's fields the
// units it lacks make is asked of the Mapping's lineage, not of a second
// transform of those units' fields. The counting converter sees each
// record's vip once per write; with a Func of the same mapping (no
// lineage) it sees it twice, and the write is the same.
func TestAWriteToAMappingSystemTransformsOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls int64 // converter calls for a write of one changed field
		wrap  bool
	}{{"mapping", 1, false}, {"func", 2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			yn := transform.BoolString("Y", "N")
			counting := transform.Converter{In: yn.In, Out: func(v concord.Value) (concord.Value, error) {
				calls.Add(1)
				return yn.Out(v)
			}}
			m := transform.MustMapping(transform.RenameWith("z_vip", "vip", counting), transform.Rename("z_name", "name"))
			r := newRig(t, []concord.SystemID{"a", "z"})
			out := m.Outbound()
			if tc.wrap {
				out = transform.Func(m.Outbound().Transform)
			}
			r.cfg.Systems[1].Inbound, r.cfg.Systems[1].Outbound = m.Inbound(), out
			r.engine = r.newEngine()
			r.sys["a"].Edit("k1", map[string]concord.Value{"name": "Ada", "vip": true})
			r.cycle()
			r.cycle()
			calls.Store(0)
			r.sys["a"].Edit("k1", map[string]concord.Value{"vip": false})
			r.cycle()
			if got := calls.Load(); got != tc.calls {
				t.Errorf("the vip converter ran %d times for one write, want %d", got, tc.calls)
			}
			if got, _ := r.sys["z"].Record("k1"); got.Fields["z_vip"] != "N" || got.Fields["z_name"] != "Ada" {
				t.Errorf("z holds %v, want z_vip N and z_name Ada", got.Fields)
			}
		})
	}
}
