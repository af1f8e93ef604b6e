package sync_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

func exampleEngine() (*recsync.Engine, *fake.System, *fake.System) {
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
	return engine, portal, warehouse
}

// Trace lists every step a record took, from the audit log: who changed
// what, the decisions, the writes.
func ExampleEngine_Trace() {
	engine, portal, _ := exampleEngine()
	ctx := context.Background()
	portal.EditBy("ana", "c1", map[string]any{"city": "York"})
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	tr, err := engine.Trace(ctx, "c1")
	if err != nil {
		panic(err)
	}
	for _, step := range tr.Steps {
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s %s %s %v %s", step.System, step.Kind, step.Unit, step.To, step.By)))
	}
	// Output:
	// portal edit.observed (record) map[] ana
	// portal edit.observed city map[city:York] ana
	// portal merge.decided city map[city:York]
	// portal merge.decided (record) map[]
	// warehouse write.attempted  map[city:York]
	// warehouse write.succeeded  map[]
}

// Explain says why a field has its value and whether each system holds it.
func ExampleEngine_Explain() {
	engine, portal, _ := exampleEngine()
	ctx := context.Background()
	portal.Edit("c1", map[string]any{"city": "York"})
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	x, err := engine.Explain(ctx, "c1", "city")
	if err != nil {
		panic(err)
	}
	fmt.Println(x.Value, x.Winner, x.Rule)
	for _, s := range x.Systems {
		fmt.Println(s.System, s.State)
	}
	// Output:
	// York portal fast-forward
	// portal in sync
	// warehouse in sync
}

// Plan is a dry run: what the next cycle would write, with nothing written.
func ExampleEngine_Plan() {
	engine, portal, warehouse := exampleEngine()
	portal.Edit("c1", map[string]any{"city": "York"})
	p, err := engine.Plan(context.Background())
	if err != nil {
		panic(err)
	}
	for _, pt := range p.Patches["warehouse"] {
		fmt.Println(pt.Key, pt.Create, pt.Set)
	}
	fmt.Println("warehouse records:", warehouse.Len())
	// Output:
	// c1 true map[city:York]
	// warehouse records: 0
}
