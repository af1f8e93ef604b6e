package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// RunCycle is one cycle: read every system's changes, merge them field by
// field, write the patches. Edits of different fields in two systems both
// survive.
func ExampleEngine_RunCycle() {
	now := exampleClock()
	portal := fake.New("portal", fake.WithClock(now))
	warehouse := fake.New("warehouse", fake.WithClock(now))
	engine, err := recsync.New(recsync.Config{
		Store:   store.NewMemory(),
		Systems: []recsync.System{{ID: "portal", Connector: portal}, {ID: "warehouse", Connector: warehouse}},
		Now:     now,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	portal.Edit("c1", map[string]any{"name": "Ada", "city": "Leeds"})
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	portal.Edit("c1", map[string]any{"city": "York"})
	warehouse.Edit("c1", map[string]any{"name": "Ada Lovelace"})
	rep, err := engine.RunCycle(ctx)
	if err != nil {
		panic(err)
	}
	p, _ := portal.Record("c1")
	w, _ := warehouse.Record("c1")
	fmt.Println("writes:", rep.Systems["portal"].Writes, rep.Systems["warehouse"].Writes)
	fmt.Println("portal:", p.Fields)
	fmt.Println("warehouse:", w.Fields)
	// Output:
	// writes: 1 1
	// portal: map[city:York name:Ada Lovelace]
	// warehouse: map[city:York name:Ada Lovelace]
}

// A dead letter no one will replay is discarded, with a reason: it leaves
// DeadLetters, and the audit trail says who and why.
func ExampleEngine_Discard() {
	now := exampleClock()
	crm := fake.New("crm", fake.WithClock(now))
	erp := fake.New("erp", fake.WithClock(now))
	engine, err := recsync.New(recsync.Config{
		Store:   store.NewMemory(),
		Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "erp", Connector: erp}},
		Now:     now,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	erp.FailKey("test-1", connector.Permanent(errors.New("422: test accounts are refused")))
	crm.Edit("test-1", map[string]any{"name": "Test account"})
	_, _ = engine.RunCycle(ctx)

	letters, err := engine.DeadLetters(ctx)
	if err != nil {
		panic(err)
	}
	err = engine.Discard(ctx, recsync.DeadLetterAction{ID: letters[0].ID, Person: "ops@example.com", Reason: "a test account"})
	fmt.Println("discarded:", err == nil)
	letters, _ = engine.DeadLetters(ctx)
	fmt.Println("dead letters left:", len(letters))
	// A reason is required.
	err = engine.Discard(ctx, recsync.DeadLetterAction{ID: 99, Person: "ops@example.com"})
	fmt.Println(errors.Is(err, recsync.ErrNoReason))
	// Output:
	// discarded: true
	// dead letters left: 0
	// true
}

// ResetCursor is the operator's way out of a cursor a connector no longer
// accepts: the system is read again from the given position ("" is the
// start); what was already known is recognised, nothing is written twice.
func ExampleEngine_ResetCursor() {
	now := exampleClock()
	portal := fake.New("portal", fake.WithClock(now))
	warehouse := fake.New("warehouse", fake.WithClock(now))
	engine, err := recsync.New(recsync.Config{
		Store:   store.NewMemory(),
		Systems: []recsync.System{{ID: "portal", Connector: portal}, {ID: "warehouse", Connector: warehouse}},
		Now:     now,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	portal.Edit("c1", map[string]any{"name": "Ada"})
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	if err := engine.ResetCursor(ctx, "portal", "", "ops@example.com", "cursor refused after the portal's upgrade"); err != nil {
		panic(err)
	}
	rep, err := engine.RunCycle(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("read again:", rep.Systems["portal"].Read, "written:", rep.Systems["warehouse"].Writes)
	fmt.Println(errors.Is(engine.ResetCursor(ctx, "billing", "", "ops@example.com", "typo"), recsync.ErrUnknownSystem))
	// Output:
	// read again: 1 written: 0
	// true
}

// DeadLetters lists what the engine could not use or deliver, oldest first,
// each with its system, record, class and reason.
func ExampleEngine_DeadLetters() {
	now := exampleClock()
	crm := fake.New("crm", fake.WithClock(now))
	erp := fake.New("erp", fake.WithClock(now))
	engine, err := recsync.New(recsync.Config{
		Store:   store.NewMemory(),
		Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "erp", Connector: erp}},
		Now:     now,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	erp.FailKey("acct-9", connector.Permanent(errors.New("422: currency not enabled")))
	crm.Edit("acct-9", map[string]any{"currency": "CHF"})
	_, _ = engine.RunCycle(ctx)
	letters, err := engine.DeadLetters(ctx)
	if err != nil {
		panic(err)
	}
	for _, d := range letters {
		fmt.Printf("%d %s %s inbound=%v %s\n", d.ID, d.System, d.Key, d.Inbound, d.Class)
	}
	// Output:
	// 1 erp acct-9 inbound=false permanent
}

// Holds lists the changes waiting for a person: here two systems changed
// one field at once and no resolver is configured.
func ExampleEngine_Holds() {
	now := exampleClock()
	portal := fake.New("portal", fake.WithClock(now))
	crm := fake.New("crm", fake.WithClock(now))
	engine, err := recsync.New(recsync.Config{
		Store:   store.NewMemory(),
		Systems: []recsync.System{{ID: "portal", Connector: portal}, {ID: "crm", Connector: crm}},
		Now:     now,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	portal.Edit("c1", map[string]any{"phone": "+44 1"})
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	portal.Edit("c1", map[string]any{"phone": "+44 2"})
	crm.Edit("c1", map[string]any{"phone": "+44 3"})
	_, _ = engine.RunCycle(ctx)
	holds, err := engine.Holds(ctx)
	if err != nil {
		panic(err)
	}
	for _, h := range holds {
		fmt.Printf("%s/%s: %d candidates\n", h.Key, h.Unit, len(h.Candidates))
	}
	// Output:
	// c1/phone: 2 candidates
}
