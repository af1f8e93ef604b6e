package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// backfillEngine is an engine over st between the given systems, with
// batches of 10 (so a backfill takes several cycles: 100 keys each).
func backfillEngine(t *testing.T, st store.Store, systems ...*fake.System) *recsync.Engine {
	t.Helper()
	cfg := recsync.Config{Resolver: resolve.LastWriterWins(), Store: st, Logger: slog.New(slog.DiscardHandler)}
	for _, s := range systems {
		cfg.Systems = append(cfg.Systems, recsync.System{ID: concord.SystemID(s.Name()), Connector: s, BatchSize: 10})
	}
	e, err := recsync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func runCycles(t *testing.T, e *recsync.Engine, n int) {
	t.Helper()
	for range n {
		if _, err := e.RunCycle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// A system added to a pipeline that already holds records gets every one
// of them, not only those that change from then on: after its own first
// read (its records are merged first: one it already holds is not created
// again), the engine backfills it, 100 stored records per cycle here,
// resuming after a restart where the last commit left it. Before, the ERP
// added here never got the 250 customers the CRM and the shop had agreed
// on, and nothing said so.
func TestAnAddedSystemGetsEveryStoredRecord(t *testing.T) {
	crm, shop, erp := fake.New("crm"), fake.New("shop"), fake.New("erp")
	st := store.NewMemory()
	e := backfillEngine(t, st, crm, shop)
	const n = 250
	for i := range n {
		crm.Edit(fmt.Sprintf("c%03d", i), map[string]concord.Value{"name": fmt.Sprint("customer ", i)})
	}
	runCycles(t, e, 6)
	if shop.Len() != n {
		t.Fatalf("shop holds %d records; want %d", shop.Len(), n)
	}
	erp.Edit("c007", map[string]concord.Value{"vat": "FR1"}) // the ERP knew this customer already
	erp.Edit("e001", map[string]concord.Value{"name": "only in the ERP"})

	e = backfillEngine(t, st, crm, shop, erp)
	runCycles(t, e, 2) // the ERP's first read, then a first part of the backfill
	if got := erp.Len(); got == 2 || got >= n {
		t.Fatalf("after two cycles the ERP holds %d records; want part of the backfill done", got)
	}
	e = backfillEngine(t, st, crm, shop, erp) // a restart in the middle
	runCycles(t, e, 5)
	for _, s := range []*fake.System{crm, shop, erp} {
		if s.Len() != n+1 {
			t.Errorf("%s holds %d records; want %d", s.Name(), s.Len(), n+1)
		}
		if r, _ := s.Record("c007"); r.Fields["vat"] != "FR1" || r.Fields["name"] != "customer 7" {
			t.Errorf("%s holds c007 = %v; want the CRM's name and the ERP's VAT number", s.Name(), r.Fields)
		}
	}
	if n := len(erp.Applied()); n > 250 {
		t.Errorf("the ERP was sent %d patches; want each record once", n)
	}
}

// A system removed from the configuration is not waited for: the records
// that change meanwhile are not pending for it (loaded again every cycle,
// for ever). Added back, it is backfilled, and gets what changed.
func TestARemovedSystemIsForgottenAndCaughtUpWhenBack(t *testing.T) {
	ctx := context.Background()
	crm, shop, erp := fake.New("crm"), fake.New("shop"), fake.New("erp")
	st := store.NewMemory()
	e := backfillEngine(t, st, crm, shop, erp)
	crm.Edit("k", map[string]concord.Value{"a": "1"})
	runCycles(t, e, 2)

	e = backfillEngine(t, st, crm, shop)
	crm.Edit("k", map[string]concord.Value{"a": "2"})
	runCycles(t, e, 1)
	if p, err := st.Pending(ctx, 10); err != nil || len(p) > 0 {
		t.Fatalf("pending %v (%v); want none: the ERP is not configured", p, err)
	}
	rep, err := e.RunCycle(ctx)
	if err != nil || rep.Records != 0 {
		t.Fatalf("an idle cycle merged %d records (%v); want none", rep.Records, err)
	}

	e = backfillEngine(t, st, crm, shop, erp)
	runCycles(t, e, 2)
	if r, _ := erp.Record("k"); r.Fields["a"] != "2" {
		t.Errorf("the ERP, back, holds k = %v; want the change made while it was away", r.Fields)
	}
}

// System IDs are any text: one with a line break is known like another,
// and an idle cycle writes nothing. (Stored one per line, it was split
// in two, and every cycle backfilled it again and committed.)
func TestKnownSystemsWithAnyIDs(t *testing.T) {
	ctx := context.Background()
	crm, odd := fake.New("crm"), fake.New("odd\nid \"quoted\"")
	cs := &countingStore{Store: store.NewMemory()}
	e := backfillEngine(t, cs, crm, odd)
	crm.Edit("k", map[string]concord.Value{"a": "1"})
	runCycles(t, e, 2)
	e = backfillEngine(t, cs, crm, odd)
	runCycles(t, e, 1)
	cs.states = nil
	rep, err := e.RunCycle(ctx)
	if err != nil || rep.Records != 0 || len(cs.states) != 0 {
		t.Fatalf("an idle cycle merged %d records and made %d commits (%v); want none", rep.Records, len(cs.states), err)
	}
	if r, _ := odd.Record("k"); r.Fields["a"] != "1" {
		t.Errorf("the system holds k = %v", r.Fields)
	}
}

// A system added, removed and added again is backfilled from the first
// key both times (the first backfill's progress is not where the second
// starts), and a damaged known-systems value stops nothing.
func TestABackfillStartsAfreshAndSurvivesADamagedValue(t *testing.T) {
	ctx := context.Background()
	crm, shop, erp := fake.New("crm"), fake.New("shop"), fake.New("erp")
	st := store.NewMemory()
	e := backfillEngine(t, st, crm, shop)
	crm.Edit("a", map[string]concord.Value{"v": "1"})
	crm.Edit("z", map[string]concord.Value{"v": "1"})
	runCycles(t, e, 2)
	runCycles(t, backfillEngine(t, st, crm, shop, erp), 2) // erp gets a and z
	erp.Delete("a")                                        // (its person deletes a: a delete, synced everywhere)
	runCycles(t, backfillEngine(t, st, crm, shop, erp), 2)
	crm.Edit("b", map[string]concord.Value{"v": "1"})
	e = backfillEngine(t, st, crm, shop) // erp removed ...
	runCycles(t, e, 2)
	e = backfillEngine(t, st, crm, shop, erp)
	runCycles(t, e, 3) // ... and back: it gets b, which sorts before z, where the first backfill ended
	if r, _ := erp.Record("b"); r.Fields["v"] != "1" {
		t.Errorf("erp, back, holds b = %v; want it backfilled", r.Fields)
	}
	if err := st.Commit(ctx, &store.Commit{Values: map[string][]byte{"systems": []byte("{damaged")}}); err != nil {
		t.Fatal(err)
	}
	crm.Edit("c", map[string]concord.Value{"v": "1"})
	runCycles(t, e, 2)
	if r, _ := erp.Record("c"); r.Fields["v"] != "1" {
		t.Errorf("erp holds c = %v; want it synced despite the damaged value", r.Fields)
	}
	if v, err := st.Value(ctx, "systems"); err != nil || string(v) != `["crm","erp","shop"]` {
		t.Errorf("the known systems are stored as %q (%v); want them stored again", v, err)
	}
}

// A record whose state cannot be read while a system is backfilled (here
// damaged on load; a state sealed under a retired key or of a newer
// format reads the same) fails alone, as in any cycle, and the backfill
// goes on past it; but the pass does not end with the record missing from
// the new system. It starts again from the first key, and ends once a pass
// met no such state: the record reaches the system once it reads again.
// The miss is committed with the progress, so a restart in the middle of
// the pass keeps it. Before, the pass ended, the system was taken as
// having every record, and that record never reached it unless it changed
// again.
func TestABackfillPassThatCouldNotReadARecordStartsAgain(t *testing.T) {
	crm, shop, erp := fake.New("crm"), fake.New("shop"), fake.New("erp")
	st := &damaging{Store: store.NewMemory(), key: "c005"}
	e := backfillEngine(t, st, crm, shop)
	const n = 250 // a pass of three cycles: 100 keys each
	for i := range n {
		crm.Edit(fmt.Sprintf("c%03d", i), map[string]concord.Value{"name": fmt.Sprint("customer ", i)})
	}
	runCycles(t, e, 6)
	if shop.Len() != n {
		t.Fatalf("shop holds %d records; want %d", shop.Len(), n)
	}

	st.on = true
	failed := 0
	cycle := func(e *recsync.Engine) {
		t.Helper()
		_, err := e.RunCycle(context.Background())
		var ce *recsync.CycleError
		if errors.As(err, &ce) {
			for _, f := range ce.Failures {
				if f.Key != "c005" || !errors.Is(f.Err, store.ErrDamaged) {
					t.Fatalf("cycle failure %v; want only c005's, damaged", f)
				}
				failed++
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	e = backfillEngine(t, st, crm, shop, erp)
	cycle(e) // the ERP's first read
	cycle(e) // the pass's first part, c000 to c099: c005 missed
	if failed == 0 {
		t.Fatal("no cycle reported c005's damaged state")
	}
	e = backfillEngine(t, st, crm, shop, erp) // a restart in the middle of the pass
	for range 4 {
		cycle(e)
	}
	if erp.Len() != n-1 {
		t.Fatalf("erp holds %d records; want every one but c005 (%d)", erp.Len(), n-1)
	}
	st.on = false // repaired (the key put back, the file restored)
	runCycles(t, e, 4)
	if r, ok := erp.Record("c005"); !ok || r.Fields["name"] != "customer 5" {
		t.Errorf("erp holds c005 = %v (%v); want it backfilled once its state reads again", r.Fields, ok)
	}
	if erp.Len() != n {
		t.Errorf("erp holds %d records; want %d", erp.Len(), n)
	}
	if got := len(erp.Applied()); got > n+2 {
		t.Errorf("erp was sent %d patches; want about one per record (%d), not a backfill of every record again", got, n)
	}
}
