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
	"testing"

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

// An idle cycle on bbolt makes at most one write transaction, lease
// included (issue 13): a named instance keeps the lease after an idle
// cycle that acquired it, and releases it after one that reused it. Busy
// cycles still release, and another instance gets its turn.
func TestIdleCycleMakesAtMostOneWriteTransaction(t *testing.T) {
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
	const cycles = 20
	total := 0
	for i := range cycles {
		before := generation(t, bs)
		rep, err := e.RunCycle(ctx)
		if err != nil || rep.Records != 0 {
			t.Fatalf("idle cycle %d: %d records, %v", i, rep.Records, err)
		}
		n := int(generation(t, bs) - before)
		if n > 1 {
			t.Fatalf("idle cycle %d made %d write transactions; want at most 1", i, n)
		}
		total += n
	}
	if total > cycles || total < cycles/2-1 {
		t.Errorf("%d idle cycles made %d write transactions; want between %d and %d (keep, then release)", cycles, total, cycles/2-1, cycles)
	}

	// Another instance waits at most one cycle of the holder.
	other := cfg
	other.Instance = "host-2"
	e2, err := recsync.New(other)
	if err != nil {
		t.Fatal(err)
	}
	turns := 0
	for range 4 {
		if _, err := e2.RunCycle(ctx); err == nil {
			turns++
		} else if !errors.Is(err, recsync.ErrLeaseHeld) {
			t.Fatal(err)
		}
		if _, err := e.RunCycle(ctx); err != nil && !errors.Is(err, recsync.ErrLeaseHeld) {
			t.Fatal(err)
		}
	}
	if turns < 1 {
		t.Error("the second instance never got the lease in four turns")
	}

	// A busy cycle releases: the other instance runs right after it.
	a.Edit("k00", map[string]concord.Value{"name": "busy"})
	for {
		rep, err := e.RunCycle(ctx)
		if errors.Is(err, recsync.ErrLeaseHeld) {
			if _, err := e2.RunCycle(ctx); err != nil && !errors.Is(err, recsync.ErrLeaseHeld) {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if rep.Records > 0 {
			break
		}
	}
	if _, err := e2.RunCycle(ctx); err != nil {
		t.Fatalf("the second instance right after a busy cycle of the first: %v", err)
	}
}

// An engine without a configured Instance (a random name, which nothing
// could take back after a restart) releases the lease after every cycle,
// idle or not: a new engine on the store runs at once.
func TestRandomInstanceReleasesAfterIdleCycle(t *testing.T) {
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
