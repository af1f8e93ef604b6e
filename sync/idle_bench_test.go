package sync_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store/boltstore"
)

// BenchmarkIdleCycle measures a cycle with nothing to do (1,000 records in
// sync, no change anywhere) on bbolt: what a pipeline on a short interval
// pays between changes.
//
//	go test ./sync -run '^$' -bench IdleCycle -count 6
func BenchmarkIdleCycle(b *testing.B) {
	bs, err := boltstore.Open(filepath.Join(b.TempDir(), "concord.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	a, z := fake.New("a"), fake.New("z")
	e, err := recsync.New(recsync.Config{Store: bs, Logger: slog.New(slog.DiscardHandler),
		Systems: []recsync.System{{ID: "a", Connector: a}, {ID: "z", Connector: z}}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		a.Edit(fmt.Sprintf("k%04d", i), map[string]concord.Value{"name": "n", "n": i})
	}
	ctx := context.Background()
	for range 4 {
		if _, err := e.RunCycle(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		rep, err := e.RunCycle(ctx)
		if err != nil || rep.Records != 0 {
			b.Fatalf("an idle cycle merged %d records: %v", rep.Records, err)
		}
	}
}
