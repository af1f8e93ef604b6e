package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// exampleClock is the systems' and the engine's clock in the examples: a
// second later at every reading, so output is reproducible. Safe for
// concurrent use (the engine calls systems in parallel).
func exampleClock() func() time.Time {
	var ticks atomic.Int64
	return func() time.Time { return time.Date(2026, 3, 2, 9, 0, int(ticks.Add(1)), 0, time.UTC) }
}

// A system that pushes its changes (a webhook, a queue message) hands them
// to Ingest: they are merged and written to the other systems at once,
// without waiting for the next cycle to read them.
func ExampleEngine_Ingest() {
	now := exampleClock()
	portal := fake.New("portal", fake.WithClock(now))
	warehouse := fake.New("warehouse", fake.WithClock(now))
	engine, err := recsync.New(recsync.Config{
		Store: store.NewMemory(), // a durable store in production: sync/store/boltstore or pgstore
		Systems: []recsync.System{
			{ID: "portal", Connector: portal},
			{ID: "warehouse", Connector: warehouse},
		},
		Now: now,
	})
	if err != nil {
		panic(err)
	}
	// The portal's webhook delivered this record (decoded by the host).
	pushed := concord.Record{Key: "c1", Modified: now(),
		Fields: map[string]concord.Value{"name": "Ada", "city": "Leeds"}}
	rep, err := engine.Ingest(context.Background(), "portal", []concord.Record{pushed})
	if err != nil {
		panic(err)
	}
	w, _ := warehouse.Record("c1")
	fmt.Println("merged:", rep.Records, "written to the warehouse:", rep.Systems["warehouse"].Writes)
	fmt.Println("warehouse:", w.Fields)

	// A system that is not configured is refused, and says which.
	_, err = engine.Ingest(context.Background(), "billing", []concord.Record{pushed})
	fmt.Println(errors.Is(err, recsync.ErrUnknownSystem), err)
	// Output:
	// merged: 1 written to the warehouse: 1
	// warehouse: map[city:Leeds name:Ada]
	// true concord: unknown system: Ingest from "billing"
}

// A write the system refuses for good (a permanent error) is dead-lettered:
// the record stops being retried and waits for a person. Once the cause is
// fixed, Replay releases it and the next cycle writes it again.
func ExampleEngine_Replay() {
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

	erp.FailKey("acct-7", connector.Permanent(errors.New("422: VAT number rejected")))
	crm.Edit("acct-7", map[string]any{"name": "Globex", "vat": "GB123"})
	rep, err := engine.RunCycle(ctx)
	fmt.Println("cycle failed:", err != nil, "dead-lettered:", rep.Systems["erp"].DeadLettered)

	letters, err := engine.DeadLetters(ctx)
	if err != nil {
		panic(err)
	}
	d := letters[0]
	fmt.Printf("dead letter %d: %s %s, %s: %s\n", d.ID, d.System, d.Key, d.Class, d.Reason)

	// Someone fixes the ERP's VAT validation, then replays the letter.
	erp.ClearFailKey("acct-7")
	if err := engine.Replay(ctx, recsync.DeadLetterAction{ID: d.ID, Person: "ops@example.com"}); err != nil {
		panic(err)
	}
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	r, _ := erp.Record("acct-7")
	letters, _ = engine.DeadLetters(ctx)
	fmt.Println("erp:", r.Fields, "dead letters left:", len(letters))

	// A dead letter replays once.
	fmt.Println(errors.Is(engine.Replay(ctx, recsync.DeadLetterAction{ID: d.ID, Person: "ops@example.com"}), recsync.ErrNoDeadLetter))
	// Output:
	// cycle failed: true dead-lettered: 1
	// dead letter 1: erp acct-7, permanent: fake erp: record "acct-7": permanent failure: 422: VAT number rejected
	// erp: map[name:Globex vat:GB123] dead letters left: 0
	// true
}

// Run is the host's loop: a cycle now and then every interval, until ctx
// is cancelled. A failed cycle is logged and tried again; Run returns only
// ctx's error. Here the host stops it once the edit has arrived.
func ExampleEngine_Run() {
	portal, warehouse := fake.New("portal"), fake.New("warehouse")
	engine, err := recsync.New(recsync.Config{
		Store:   store.NewMemory(),
		Systems: []recsync.System{{ID: "portal", Connector: portal}, {ID: "warehouse", Connector: warehouse}},
	})
	if err != nil {
		panic(err)
	}
	portal.Edit("c1", map[string]any{"email": "ada@example.com"})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- engine.Run(ctx, 10*time.Millisecond) }()
	for {
		if r, ok := warehouse.Record("c1"); ok {
			fmt.Println("warehouse:", r.Fields)
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel() // the host shuts down: Run ends after the cycle in flight
	err = <-done
	fmt.Println("Run returned:", err)
	// Output:
	// warehouse: map[email:ada@example.com]
	// Run returned: context canceled
}

// A cycle's Report says what happened in it, per system; Stats adds the
// cycles up since the engine started (and is safe to read from another
// goroutine, for a health endpoint).
func ExampleEngine_Stats() {
	now := exampleClock()
	portal := fake.New("portal", fake.WithClock(now))
	warehouse := fake.New("warehouse", fake.WithClock(now))
	engine, err := recsync.New(recsync.Config{
		Store:   store.NewMemory(),
		Systems: []recsync.System{{ID: "portal", Connector: portal}, {ID: "warehouse", Connector: warehouse}},
		Now:     now,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	portal.Edit("c1", map[string]any{"name": "Ada"})
	portal.Edit("c2", map[string]any{"name": "Grace"})
	warehouse.FailKey("c2", connector.Transient(errors.New("503 busy")))
	rep, err := engine.RunCycle(ctx) // err lists the same failures as rep
	fmt.Println("cycle error:", err != nil)
	for _, f := range rep.Failures {
		fmt.Println("failure:", f.System, f.Key, f.Op, connector.Classify(f.Err) == connector.ErrTransient)
	}
	fmt.Printf("cycle %d: %d records; portal read %d; warehouse wrote %d, failed %d\n",
		rep.Cycle, rep.Records, rep.Systems["portal"].Read,
		rep.Systems["warehouse"].Writes, rep.Systems["warehouse"].Failed)

	warehouse.ClearFailKey("c2")
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	st := engine.Stats()
	ws := st.Systems["warehouse"]
	fmt.Printf("cycles %d; warehouse writes %d, write failures %d, failure rate %.2f, resolved %d\n",
		st.Cycles, ws.Writes, ws.WriteFailures, ws.FailureRate, ws.Resolved)
	// Output:
	// cycle error: true
	// failure: warehouse c2 write true
	// cycle 1: 2 records; portal read 2; warehouse wrote 1, failed 1
	// cycles 2; warehouse writes 2, write failures 1, failure rate 0.33, resolved 1
}
