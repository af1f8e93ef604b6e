package sync

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/sync/store"
)

// An event whose values JSON cannot carry (NaN) is kept in the audit log
// without its values, with the reason, rather than stall the commit; the
// events around it keep theirs, and the chain verifies.
// Both routes: an engine without a sink stages stored forms only
// (Chain.AppendStored), one with a sink keeps the entries to deliver.
func TestStageKeepsAnUnencodableEventWithoutItsValues(t *testing.T) {
	t.Run("sinkless", func(t *testing.T) { testStageUnencodable(t, nil) })
	t.Run("sink", func(t *testing.T) { testStageUnencodable(t, audit.Discard) })
}

func testStageUnencodable(t *testing.T, sink audit.Sink) {
	ctx := context.Background()
	e, err := New(Config{Store: store.NewMemory(), Audit: sink, Systems: []System{{ID: "a", Connector: fake.New("a")}, {ID: "b", Connector: fake.New("b")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.loadAudit(ctx); err != nil {
		t.Fatal(err)
	}
	evs := []audit.Event{
		{Kind: audit.EditObserved, Key: "k1", Unit: "n", To: map[string]concord.Value{"n": int64(1)}},
		{Kind: audit.EditObserved, Key: "k2", Unit: "x", Reason: "odd", To: map[string]concord.Value{"x": math.NaN()}},
		{Kind: audit.EditObserved, Key: "k3", Unit: "n", To: map[string]concord.Value{"n": int64(3)}},
	}
	b := &batch{}
	if err := e.stage(b, evs); err != nil {
		t.Fatal(err)
	}
	if len(b.Audit) != 3 {
		t.Fatalf("%d entries staged, want 3", len(b.Audit))
	}
	for i, en := range b.Audit {
		if en.Seq != uint64(i+1) {
			t.Fatalf("staged entry %d has Seq %d", i, en.Seq)
		}
	}
	var toDeliver int
	for _, part := range b.entries {
		for j, en := range part {
			if en.Seq != b.Audit[toDeliver+j].Seq {
				t.Fatalf("entry to deliver has Seq %d, stored %d", en.Seq, b.Audit[toDeliver+j].Seq)
			}
		}
		toDeliver += len(part)
	}
	if want := map[bool]int{true: 0, false: 3}[sink == nil]; toDeliver != want {
		t.Fatalf("%d entries kept to deliver, want %d", toDeliver, want)
	}
	if err := e.store.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	e.committed(b)
	var got []audit.Entry
	for en, err := range e.auditEntries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, en)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries in the log, want 3", len(got))
	}
	if got[0].Event.To == nil || got[2].Event.To == nil {
		t.Errorf("the encodable events lost their values: %+v, %+v", got[0].Event, got[2].Event)
	}
	if ev := got[1].Event; ev.To != nil || ev.Key != "k2" || !strings.HasPrefix(ev.Reason, "odd (values left out of the audit log: ") {
		t.Errorf("unencodable event stored as %+v", ev)
	}
	if _, err := e.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}

// An event about several units (coalesced) with one value JSON cannot
// carry keeps the others' values: only the bad one is left out, and the
// reason names its field.
func TestStageLeavesOutOnlyTheUnencodableValueOfAJoinedEvent(t *testing.T) {
	ctx := context.Background()
	e, err := New(Config{Store: store.NewMemory(), Systems: []System{{ID: "a", Connector: fake.New("a")}, {ID: "b", Connector: fake.New("b")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.loadAudit(ctx); err != nil {
		t.Fatal(err)
	}
	ev := audit.Event{Kind: audit.EditObserved, Key: "k1", Units: []string{"n", "s", "x"}, Fields: []string{"n", "s", "x"},
		From: map[string]concord.Value{"n": int64(0), "x": math.Inf(1)},
		To:   map[string]concord.Value{"n": int64(1), "s": "ok", "x": math.NaN()}}
	b := &batch{}
	if err := e.stage(b, []audit.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	e.committed(b)
	var got []audit.Entry
	for en, err := range e.auditEntries(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, en)
	}
	if len(got) != 1 {
		t.Fatalf("%d entries, want 1", len(got))
	}
	g := got[0].Event
	if len(g.To) != 2 || g.To["s"] != "ok" || len(g.From) != 1 || g.From["x"] != nil {
		t.Errorf("stored values from %v to %v; want n and s kept, x left out", g.From, g.To)
	}
	if !strings.Contains(g.Reason, "values of x left out of the audit log") || len(g.Units) != 3 {
		t.Errorf("stored event %+v; want its three units and a reason naming x", g)
	}
	if _, ok := ev.To["x"]; !ok {
		t.Error("the event given to stage was changed")
	}
}
