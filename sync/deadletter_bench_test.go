package sync_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/boltstore"
)

// BenchmarkCycleWithDeadLetters measures a cycle that reads 10 edited
// records (of 1,000) and writes them to the other system, over a store that
// holds no dead letters and over one holding 10^4 (quarantined inbound
// records of other keys, as a long-running pipeline accumulates): what a
// cycle pays per stored dead letter (issue 13).
//
//	go test ./sync -run '^$' -bench CycleWithDeadLetters -count 6 | benchstat -col /dead -
func BenchmarkCycleWithDeadLetters(b *testing.B) {
	for _, backend := range []string{"memory", "bolt"} {
		for _, dead := range []int{0, 10_000} {
			b.Run(fmt.Sprintf("store=%s/dead=%d", backend, dead), func(b *testing.B) {
				benchEditCycles(b, editRig{backend: backend, edits: 10, fill: func(ctx context.Context, st store.Store) {
					if err := fillDeadLetters(ctx, st, dead); err != nil {
						b.Fatal(err)
					}
				}})
			})
		}
	}
}

// editRig is what benchEditCycles measures: cycles that each read edits
// edited records (of 1,000 in system a) and write them to system z, over a
// store of backend ("memory" or "bolt") that fill (if not nil) filled
// first, with resolver (last-writer-wins if nil); tune (if not nil) adjusts
// the engine once built, and settle (if not nil) runs once the 1,000
// records are in sync, before the timer.
type editRig struct {
	backend  string
	edits    int
	resolver resolve.Resolver
	fill     func(context.Context, store.Store)
	tune     func(*recsync.Engine)
	settle   func(e *recsync.Engine, a, z *fake.System)
}

func benchEditCycles(b *testing.B, r editRig) {
	var st store.Store = store.NewMemory()
	if r.backend == "bolt" {
		bs, err := boltstore.Open(filepath.Join(b.TempDir(), "concord.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer bs.Close()
		st = bs
	}
	ctx := context.Background()
	if r.fill != nil {
		r.fill(ctx, st)
	}
	res := r.resolver
	if res == nil {
		res = resolve.LastWriterWins()
	}
	a, z := fake.New("a"), fake.New("z")
	e, err := recsync.New(recsync.Config{Store: st, Resolver: res,
		Logger:  slog.New(slog.DiscardHandler),
		Systems: []recsync.System{{ID: "a", Connector: a}, {ID: "z", Connector: z}}})
	if err != nil {
		b.Fatal(err)
	}
	if r.tune != nil {
		r.tune(e)
	}
	for i := range 1000 {
		a.Edit(fmt.Sprintf("k%04d", i), map[string]concord.Value{"name": "n", "city": "c", "n": i})
	}
	for range 4 {
		if _, err := e.RunCycle(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if r.settle != nil {
		r.settle(e, a, z)
	}
	round := 0
	for b.Loop() {
		round++
		b.StopTimer()
		for i := range r.edits {
			a.Edit(fmt.Sprintf("k%04d", (round*r.edits+i)%1000), map[string]concord.Value{"city": fmt.Sprintf("c%d", round)})
		}
		b.StartTimer()
		rep, err := e.RunCycle(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Systems["z"].Writes != r.edits {
			b.Fatalf("cycle wrote %d records to z, want %d", rep.Systems["z"].Writes, r.edits)
		}
	}
}

// fillDeadLetters commits n dead letters as the engine encodes them:
// quarantined inbound records of keys no system holds.
func fillDeadLetters(ctx context.Context, st store.Store, n int) error {
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for start := 0; start < n; start += 1000 {
		c := &state.Commit{}
		for i := start; i < min(n, start+1000); i++ {
			key := fmt.Sprintf("dead%05d", i)
			d := state.DeadLetter{System: "a", Key: key, Inbound: true, When: when, Reason: "refused by the dictionary",
				Class: "invalid", Record: concord.Record{Key: key, Fields: map[string]concord.Value{"name": "x", "n": i}, Modified: when}}
			c.DeadLetters = append(c.DeadLetters, d)
		}
		if err := c.Apply(ctx, st); err != nil {
			return err
		}
	}
	return nil
}
