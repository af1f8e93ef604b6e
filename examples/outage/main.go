// Command outage shows that nothing fails silently in Concord. A web shop's
// portal and its warehouse (two in-memory systems) share orders, and the
// story breaks the warehouse in every way an integration breaks:
//
//  1. Normal sync: orders entered in the portal reach the warehouse.
//  2. The warehouse goes down (every read and write fails with 503) for
//     three cycles while people keep editing orders on both sides: each
//     cycle reports its failures, the integration failure rate climbs, and
//     the alerter (an alert.Grouper) prints one alert per failure, not one
//     per record or per cycle.
//  3. The warehouse comes back: every edit made during the outage syncs,
//     the resolved notices print, and the time to resolution is measured.
//  4. A rate-limit storm: the warehouse answers 429 with a Retry-After; the
//     engine waits and retries within the cycle, nothing is lost and
//     nobody is paged.
//  5. A poison record: the warehouse rejects one order for good. It is
//     dead-lettered and alerted once (critical) while the other orders
//     sync; a person fixes the cause and replays the dead letter by ID.
//
// It ends with both systems side by side and the engine's Stats.
//
// Run it with
//
//	go run ./examples/outage
//
// Its output is deterministic: the systems, the engine and the alert
// grouper share a story clock that stands still until the story moves it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

func main() {
	if _, err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "outage:", err)
		os.Exit(1)
	}
}

// The two systems of the story.
const (
	portal    concord.SystemID = "portal"
	warehouse concord.SystemID = "warehouse"
)

// systems lists the systems in the order the story shows them.
var systems = []concord.SystemID{portal, warehouse}

// fields are the order fields, in display order. Both systems use the
// canonical names: this story is about failures, not mappings (see
// examples/address-sync for those).
var fields = []string{"item", "qty", "ship_to", "status"}

// The faults the warehouse shows, as its connector would classify them.
var (
	// errDown is what every call gets while the warehouse is down.
	errDown = connector.Transient(errors.New("503 Service Unavailable"))
	// errPoison is the warehouse's answer to one order, however often it
	// is sent: its shipping zone table lacks the postcode.
	errPoison = connector.Permanent(errors.New(`422 Unprocessable Entity: no shipping zone for postcode "ZE3 9JW"`))
)

// stormRetryAfter is the wait the warehouse asks for during the rate-limit
// storm: tiny, so that the program finishes at once.
const stormRetryAfter = 20 * time.Millisecond

// policy is the engine's retry policy: up to four attempts per call within
// a cycle, with millisecond backoffs (real waits, kept tiny for the story).
var policy = recsync.RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

// world is the running story: the systems, the engine, and what it
// reported.
type world struct {
	out     io.Writer
	clock   *storyClock
	engine  *recsync.Engine
	fakes   map[concord.SystemID]*fake.System
	grouper *alert.Grouper
	// unprinted are alerts passed on but not printed yet.
	unprinted []alert.Alert
	events    []audit.Event // every audit event, in order
	result    outcome
}

func newWorld(out io.Writer, st store.Store) (*world, error) {
	w := &world{out: out, clock: &storyClock{}, fakes: map[concord.SystemID]*fake.System{}}
	w.clock.Set("09:00")
	// The alerter: a Grouper (one failure, one alert with a count, and a
	// resolved notice when it ends) over a function that prints. A host
	// would put notify.Slack or notify.Email behind an alert.NewAsync queue
	// here instead.
	printer := alert.AlerterFunc(func(_ context.Context, a alert.Alert) error {
		w.result.alerts = append(w.result.alerts, a)
		w.unprinted = append(w.unprinted, a) // printed after the cycle's report
		return nil
	})
	// The default grouping is one group per system and error class: when
	// the warehouse is down its reads and its writes fail, and that is one
	// outage. Dead letters are a group of their own.
	g, err := alert.NewGrouper(printer, alert.GrouperConfig{
		Window: time.Hour,
		Now:    w.clock.Now,
	})
	if err != nil {
		return nil, err
	}
	w.grouper = g
	cfg := recsync.Config{
		Alerter: g,
		Retry:   policy,
		Audit: audit.SinkFunc(func(_ context.Context, events []audit.Event) error {
			w.events = append(w.events, events...)
			return nil
		}),
		Now:   w.clock.Now,
		Store: st,
	}
	for _, id := range systems {
		f := fake.New(string(id), fake.WithClock(w.clock.Now))
		w.fakes[id] = f
		cfg.Systems = append(cfg.Systems, recsync.System{ID: id, Connector: f})
	}
	e, err := recsync.New(cfg)
	if err != nil {
		return nil, err
	}
	w.engine = e
	return w, nil
}

// run tells the story to out and returns what happened, for the test.
func run(out io.Writer) (*outcome, error) {
	store, done, err := tempStore("concord-outage")
	if err != nil {
		return nil, err
	}
	defer done()
	w, err := newWorld(out, store)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	fmt.Fprintln(w.out, "Concord outage: a portal and a warehouse share orders; the warehouse breaks.")
	for _, s := range []func(context.Context) error{w.normal, w.outage, w.comeBack, w.storm, w.poison, w.final} {
		if err := s(ctx); err != nil {
			return &w.result, err
		}
	}
	w.result.events = w.events
	return &w.result, nil
}

// ---- the scenes ----

func (w *world) normal(ctx context.Context) error {
	w.heading("1. Normal sync")
	w.edit("09:00", portal, "ord-101", "a customer orders", map[string]concord.Value{"item": "kettle", "qty": 1, "ship_to": "EH1 1YZ", "status": "new"})
	w.edit("09:00", portal, "ord-102", "a customer orders", map[string]concord.Value{"item": "teapot", "qty": 2, "ship_to": "G2 3AB", "status": "new"})
	w.edit("09:01", portal, "ord-103", "a customer orders", map[string]concord.Value{"item": "mugs", "qty": 6, "ship_to": "AB10 1XG", "status": "new"})
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	w.edit("09:05", warehouse, "ord-101", "a picker starts the order", map[string]concord.Value{"status": "picking"})
	_, err := w.cycle(ctx)
	return err
}

func (w *world) outage(ctx context.Context) error {
	w.heading("2. The warehouse goes down")
	w.clock.Set("09:10")
	// Every call fails with a transient 503 until the story clears it.
	w.fakes[warehouse].FailNext(fake.OpChanges, 1<<20, errDown)
	w.fakes[warehouse].FailNext(fake.OpApply, 1<<20, errDown)
	fmt.Fprintln(w.out, "09:10  warehouse  its API answers 503 to every call (its own screens still work)")
	first, alerts := len(w.result.cycles), len(w.result.alerts)
	w.edit("09:10", portal, "ord-101", "the customer wants two", map[string]concord.Value{"qty": 2})
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	w.edit("09:20", portal, "ord-102", "the customer moves", map[string]concord.Value{"ship_to": "G12 8QQ"})
	w.edit("09:21", warehouse, "ord-103", "a packer marks it packed", map[string]concord.Value{"status": "packed"})
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	w.edit("09:30", portal, "ord-104", "a new customer orders", map[string]concord.Value{"item": "toaster", "qty": 1, "ship_to": "KW15 1HR", "status": "new"})
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w.out, "Three cycles, %d failed calls and records, %d alert.\n", w.failuresSince(first), len(w.result.alerts)-alerts)
	w.printStats("After the outage's three cycles")
	return nil
}

func (w *world) comeBack(ctx context.Context) error {
	w.heading("3. The warehouse comes back")
	w.clock.Set("09:40")
	w.fakes[warehouse].FailNext(fake.OpChanges, 0, nil)
	w.fakes[warehouse].FailNext(fake.OpApply, 0, nil)
	fmt.Fprintln(w.out, "09:40  warehouse  its API works again")
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	w.printStats("Once it is back")
	return nil
}

func (w *world) storm(ctx context.Context) error {
	w.heading("4. A rate-limit storm")
	w.edit("10:00", portal, "ord-101", "the customer adds one more", map[string]concord.Value{"qty": 3})
	w.edit("10:00", warehouse, "ord-102", "a picker starts the order", map[string]concord.Value{"status": "picking"})
	w.fakes[warehouse].RateLimitNext(3, stormRetryAfter)
	fmt.Fprintf(w.out, "10:00  warehouse  answers the next 3 calls with 429 Too Many Requests, Retry-After %s\n", stormRetryAfter)
	start := time.Now()
	rep, err := w.cycle(ctx)
	if err != nil {
		return err
	}
	w.result.stormWait = time.Since(start)
	w.result.storm = *rep.Systems[warehouse]
	fmt.Fprintf(w.out, "The engine honoured Retry-After %d times within the cycle; nothing failed, so nobody was alerted.\n",
		rep.Systems[warehouse].Retries)
	return nil
}

func (w *world) poison(ctx context.Context) error {
	w.heading("5. A poison record")
	w.clock.Set("10:30")
	w.fakes[warehouse].FailKey("ord-104", errPoison)
	fmt.Fprintln(w.out, `10:30  warehouse  rejects ord-104 for good: no shipping zone for "ZE3 9JW"`)
	w.edit("10:30", portal, "ord-104", "the customer changes the address", map[string]concord.Value{"ship_to": "ZE3 9JW"})
	w.edit("10:31", portal, "ord-103", "the customer wants eight", map[string]concord.Value{"qty": 8})
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	dead, err := w.engine.DeadLetters(ctx)
	if err != nil {
		return err
	}
	w.result.deadLetters = dead
	for _, d := range dead {
		fmt.Fprintf(w.out, "Dead letter %d: %s, record %s, class %s, after %d attempt(s): %s\n",
			d.ID, d.System, d.Key, d.Class, d.Attempts, d.Reason)
	}
	if len(dead) != 1 {
		return fmt.Errorf("after the poison cycle: %d dead letters; want 1", len(dead))
	}

	// A person fixes the cause in the warehouse, then replays the dead
	// letter by its ID.
	w.clock.Set("11:15")
	w.fakes[warehouse].ClearFailKey("ord-104")
	fmt.Fprintln(w.out, `11:15  warehouse  an admin adds "ZE3" to the shipping zones`)
	if err := w.engine.Replay(ctx, recsync.DeadLetterAction{ID: dead[0].ID, Person: "ops@shop.example"}); err != nil {
		return fmt.Errorf("replaying dead letter %d: %w", dead[0].ID, err)
	}
	fmt.Fprintf(w.out, "11:15  ops@shop.example replays dead letter %d\n", dead[0].ID)
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	left, err := w.engine.DeadLetters(ctx)
	if err != nil {
		return err
	}
	w.result.deadLettersAfter = left
	fmt.Fprintf(w.out, "Dead letters left: %d\n", len(left))
	return nil
}

func (w *world) final(ctx context.Context) error {
	w.heading("6. Final state")
	// A host runs Grouper.Run, which sends summaries when their windows
	// end; the story flushes once, at the end, an hour after the last
	// alert.
	w.clock.Set("12:30")
	if err := w.grouper.Flush(ctx); err != nil {
		return err
	}
	if len(w.unprinted) == 0 {
		fmt.Fprintln(w.out, "12:30  alert grouper: no summary left to send")
	}
	w.printAlerts()
	if err := w.printRecords(); err != nil {
		return err
	}
	w.result.stats = w.engine.Stats()
	w.printStats("Engine.Stats()")
	return nil
}
