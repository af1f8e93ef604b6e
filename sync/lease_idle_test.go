package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/boltstore"
)

// generation reads the bbolt store's witness: the number of write
// transactions it has committed (each one records the new generation).
func generation(t *testing.T, bs *boltstore.Store) uint64 {
	t.Helper()
	b, err := os.ReadFile(bs.Witness())
	if err != nil {
		t.Fatal(err)
	}
	g, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Under Run, idle cycles on bbolt make at most one write transaction each,
// lease included (issue 13): a cycle that acquired the lease keeps it, the
// next reuses it without a write and releases it. Another instance gets its
// turn meanwhile, and once Run returns the lease is free.
func TestIdleCyclesUnderRunMakeAtMostOneWriteTransaction(t *testing.T) {
	ctx := context.Background()
	bs, err := boltstore.Open(filepath.Join(t.TempDir(), "concord.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	a, z := fake.New("a"), fake.New("z")
	cfg := recsync.Config{Store: bs, Logger: slog.New(slog.DiscardHandler), Instance: "host-1",
		Systems: []recsync.System{{ID: "a", Connector: a}, {ID: "z", Connector: z}}}
	e, err := recsync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		a.Edit(fmt.Sprintf("k%02d", i), map[string]concord.Value{"name": "n"})
	}
	for range 3 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Direct RunCycle calls release after each cycle: two writes.
	before := generation(t, bs)
	if rep, err := e.RunCycle(ctx); err != nil || rep.Records != 0 {
		t.Fatalf("idle cycle: %v, %v", rep, err)
	}
	if n := generation(t, bs) - before; n != 2 {
		t.Errorf("a direct idle RunCycle made %d write transactions; want 2 (acquire, release)", n)
	}

	runCtx, stop := context.WithCancel(ctx)
	cycles0, gen0 := e.Stats().Cycles, generation(t, bs)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx, time.Millisecond) }()
	for e.Stats().Cycles < cycles0+40 {
		time.Sleep(time.Millisecond)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	cycles, writes := e.Stats().Cycles-cycles0, int(generation(t, bs)-gen0)
	// Each cycle one write (acquire and keep, or reuse and release),
	// plus at most two at the end: the acquire of a cycle the
	// cancellation cut short (not counted in Stats) and Run's final
	// release.
	if writes > cycles+2 || writes < cycles-1 {
		t.Errorf("%d idle cycles under Run made %d write transactions; want one each", cycles, writes)
	}

	// Run released what it kept: another instance runs at once.
	other := cfg
	other.Instance = "host-2"
	e2, err := recsync.New(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.RunCycle(ctx); err != nil {
		t.Fatalf("another instance after Run returned: %v", err)
	}

	// Two instances under Run take turns.
	runCtx, stop = context.WithCancel(ctx)
	var wg gosync.WaitGroup
	c1, c2 := e.Stats().Cycles, e2.Stats().Cycles
	for _, eng := range []*recsync.Engine{e, e2} {
		wg.Go(func() { _ = eng.Run(runCtx, time.Millisecond) })
	}
	deadline := time.Now().Add(20 * time.Second)
	for (e.Stats().Cycles < c1+5 || e2.Stats().Cycles < c2+5) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	if e.Stats().Cycles < c1+5 || e2.Stats().Cycles < c2+5 {
		t.Errorf("two instances under Run: %d and %d cycles in 20s; want both to run", e.Stats().Cycles-c1, e2.Stats().Cycles-c2)
	}
}

// A direct RunCycle (whose caller may never call again) releases the lease
// after every cycle, idle or not: a new engine on the store runs at once.
func TestRunCycleReleasesAfterIdleCycle(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	a, z := fake.New("a"), fake.New("z")
	cfg := recsync.Config{Store: mem, Logger: slog.New(slog.DiscardHandler),
		Systems: []recsync.System{{ID: "a", Connector: a}, {ID: "z", Connector: z}}}
	for range 3 {
		e, err := recsync.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := e.RunCycle(ctx); err != nil {
				t.Fatalf("a new engine with a random name: %v", err)
			}
		}
	}
}
