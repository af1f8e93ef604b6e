package sync_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// With no Resolver, concurrent edits of one field wait for a person: Holds
// lists them, and Settle applies the person's choice, named by a
// Settlement made from what the person saw.
func ExampleEngine_Settle() {
	var ticks atomic.Int64
	now := func() time.Time { return time.Date(2026, 1, 1, 9, 0, int(ticks.Add(1)), 0, time.UTC) }
	portal := fake.New("portal", fake.WithClock(now))
	crm := fake.New("crm", fake.WithClock(now))
	engine, err := recsync.New(recsync.Config{
		Store:   store.NewMemory(),
		Systems: []recsync.System{{ID: "portal", Connector: portal}, {ID: "crm", Connector: crm}},
		Audit: audit.SinkFunc(func(_ context.Context, events []audit.Event) error {
			for _, ev := range events {
				if ev.Kind == audit.ConflictHeld || ev.Kind == audit.MergeDecided && ev.Rule == recsync.RulePerson {
					fmt.Printf("audit: %s %s/%s by %s (%s)\n", ev.Kind, ev.Key, ev.Unit, ev.System, ev.Reason)
				}
			}
			return nil
		}),
		Now: now,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	portal.Edit("c1", map[string]any{"email": "ada@example.com"})
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	// Both systems change the e-mail address before the next cycle.
	portal.Edit("c1", map[string]any{"email": "ada@home.example"})
	crm.Edit("c1", map[string]any{"email": "ada@work.example"})
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}

	holds, err := engine.Holds(ctx)
	if err != nil {
		panic(err)
	}
	h := holds[0]
	for i, c := range h.Candidates {
		fmt.Printf("candidate %d: %s %v canonical=%v\n", i, c.System, c.Values["email"], c.Canonical)
	}
	// The person picks the CRM's address. Revision says which listing
	// they decided on: had a cycle changed the hold since, Settle would
	// refuse with ErrHoldChanged.
	pick := -1
	for i, c := range h.Candidates {
		if c.System == "crm" {
			pick = i
		}
	}
	err = engine.Settle(ctx, recsync.Settlement{
		Key: h.Key, Unit: h.Unit, Revision: h.Revision,
		Candidate: pick, Person: "ana@example.com", Reason: "confirmed by phone",
	})
	if err != nil {
		panic(err)
	}
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	p, _ := portal.Record("c1")
	fmt.Println("portal now has", p.Fields["email"])
	// Output:
	// audit: conflict.held c1/email by crm (no resolver decided)
	// candidate 0: crm ada@work.example canonical=false
	// candidate 1: portal ada@home.example canonical=false
	// audit: merge.decided c1/email by crm (settled by ana@example.com: confirmed by phone)
	// portal now has ada@work.example
}
