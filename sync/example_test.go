package sync_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// Two systems edit the same customer between cycles: different fields both
// survive; the same field is settled by its system of record.
func Example() {
	var ticks atomic.Int64 // the systems' shared clock; they are called concurrently
	now := func() time.Time { return time.Date(2026, 1, 1, 9, 0, int(ticks.Add(1)), 0, time.UTC) }
	portal := fake.New("portal", fake.WithClock(now))
	warehouse := fake.New("warehouse", fake.WithClock(now))

	engine, err := recsync.New(recsync.Config{
		Systems: []recsync.System{
			{ID: "portal", Connector: portal},
			{ID: "warehouse", Connector: warehouse},
		},
		Resolver: resolve.Chain(
			resolve.SystemOfRecord(map[string]concord.SystemID{"stock": "warehouse"}),
			resolve.LastWriterWins(),
		),
		Now:   now,
		Store: store.NewMemory(), // state kept in memory; a durable store survives restarts
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	portal.Edit("c1", map[string]any{"phone": "+44 1", "company": "Acme", "stock": 5})
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	portal.Edit("c1", map[string]any{"phone": "+44 2", "stock": 7})         // the portal may not set stock
	warehouse.Edit("c1", map[string]any{"company": "Acme Ltd", "stock": 4}) // the warehouse owns it
	for range 2 {
		if _, err := engine.RunCycle(ctx); err != nil {
			panic(err)
		}
	}
	p, _ := portal.Record("c1")
	w, _ := warehouse.Record("c1")
	fmt.Println("portal:   ", p.Fields)
	fmt.Println("warehouse:", w.Fields)
	// Output:
	// portal:    map[company:Acme Ltd phone:+44 2 stock:4]
	// warehouse: map[company:Acme Ltd phone:+44 2 stock:4]
}
