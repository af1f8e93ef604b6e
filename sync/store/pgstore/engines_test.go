package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// Three engine instances, each with its own Store on one schema, sync the
// same three systems while people edit them. Every field is edited by one
// system only, so its final value is known: the last edit. At the end every
// system must hold exactly those values: no edit lost, no divergence.
func TestThreeEngines(t *testing.T) {
	schema := newSchema(t)
	var ticks atomic.Int64 // the systems' shared clock, strictly increasing
	clock := func() time.Time {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(ticks.Add(1)) * time.Millisecond)
	}
	ids := []concord.SystemID{"crm", "erp", "shop"}
	fakes := map[concord.SystemID]*fake.System{}
	var systems []recsync.System
	for _, id := range ids {
		fakes[id] = fake.New(string(id), fake.WithClock(clock))
		systems = append(systems, recsync.System{ID: id, Connector: fakes[id], BatchSize: 7})
	}
	engines := make([]*recsync.Engine, 3)
	for i := range engines {
		e, err := recsync.New(recsync.Config{
			Systems:  systems,
			Resolver: resolve.LastWriterWins(),
			Store:    openStore(t, schema),
			Instance: fmt.Sprintf("instance-%d", i),
			Logger:   slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		engines[i] = e
	}

	// The instances run cycles concurrently until the edits are done
	// and each has committed at least once.
	var editing atomic.Bool
	editing.Store(true)
	var mu sync.Mutex
	committed := make([]int, len(engines))
	var leaseHeld, failedCycles atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, err := e.RunCycle(ctx)
				var ce *recsync.CycleError
				switch {
				case err == nil || errors.As(err, &ce):
					// A CycleError comes after the commit: some writes
					// were refused by a fake's tag check (a concurrent
					// edit) and are retried next cycle.
					if ce != nil {
						failedCycles.Add(1)
					}
					mu.Lock()
					committed[i]++
					done := !editing.Load() && min(committed[0], committed[1], committed[2]) > 0
					mu.Unlock()
					if done {
						return
					}
				case errors.Is(err, recsync.ErrLeaseHeld):
					leaseHeld.Add(1)
				case ctx.Err() != nil:
					return
				default:
					t.Errorf("instance %d: cycle: %v", i, err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}

	// The edits: each field is owned by one system; each edit writes a
	// unique value, and the last one per field is what must survive.
	want := map[string]map[string]concord.Value{}
	rnd := rand.New(rand.NewPCG(1, 2))
	const records, edits = 16, 400
	for n := range edits {
		key := fmt.Sprintf("r%02d", rnd.IntN(records))
		id := ids[rnd.IntN(len(ids))]
		field := "by_" + string(id)
		value := fmt.Sprintf("%s/%s/%d", id, key, n)
		fakes[id].Edit(key, map[string]concord.Value{field: value})
		if want[key] == nil {
			want[key] = map[string]concord.Value{}
		}
		want[key][field] = value
		if n%2 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	editing.Store(false)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the instances did not all commit within a minute: %v", committed)
	}
	t.Logf("cycles committed per instance %v (%d of them with failed writes), refused for the lease %d",
		committed, failedCycles.Load(), leaseHeld.Load())

	// Quiesce: cycles until one changes nothing.
	for n := 0; ; n++ {
		rep, err := engines[n%3].RunCycle(context.Background())
		if err != nil {
			t.Fatalf("quiescing cycle %d: %v", n, err)
		}
		busy := 0
		for _, sr := range rep.Systems {
			busy += sr.Edits + sr.Writes + sr.Failed
		}
		if busy == 0 {
			break
		}
		if n == 20 {
			t.Fatal("still busy after 20 cycles")
		}
	}
	for _, id := range ids {
		got := map[string]map[string]concord.Value{}
		for _, r := range fakes[id].Records() {
			got[r.Key] = r.Fields
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("system %s holds (-want +got):\n%s", id, diff)
		}
	}
}
