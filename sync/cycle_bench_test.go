package sync_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/boltstore"
)

// BenchmarkEditCycle measures a cycle that reads 100 edited records (of
// 1,000) from one system and writes them to the other, with and without the
// write-ahead commit, on the memory store and on bbolt:
//
//	go test ./sync -run '^$' -bench EditCycle -count 6 | benchstat -col /commit -
func BenchmarkEditCycle(b *testing.B) {
	for _, backend := range []string{"memory", "bolt"} {
		for _, mode := range []string{"write-ahead", "final-only"} {
			b.Run(fmt.Sprintf("store=%s/commit=%s", backend, mode), func(b *testing.B) {
				var st store.Store = store.NewMemory()
				if backend == "bolt" {
					bs, err := boltstore.Open(filepath.Join(b.TempDir(), "concord.db"))
					if err != nil {
						b.Fatal(err)
					}
					defer bs.Close()
					st = bs
				}
				a, z := fake.New("a"), fake.New("z")
				e, err := recsync.New(recsync.Config{Store: st, Resolver: resolve.LastWriterWins(),
					Logger:  slog.New(slog.DiscardHandler),
					Systems: []recsync.System{{ID: "a", Connector: a}, {ID: "z", Connector: z}}})
				if err != nil {
					b.Fatal(err)
				}
				if mode == "final-only" {
					recsync.SkipWriteAheadForBenchmark(e)
				}
				ctx := context.Background()
				for i := range 1000 {
					a.Edit(fmt.Sprintf("k%04d", i), map[string]concord.Value{"name": "n", "city": "c", "n": i})
				}
				for range 4 {
					if _, err := e.RunCycle(ctx); err != nil {
						b.Fatal(err)
					}
				}
				round := 0
				b.ResetTimer()
				for b.Loop() {
					round++
					b.StopTimer()
					for i := range 100 {
						a.Edit(fmt.Sprintf("k%04d", (round*100+i)%1000), map[string]concord.Value{"city": fmt.Sprintf("c%d", round)})
					}
					b.StartTimer()
					rep, err := e.RunCycle(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if rep.Systems["z"].Writes != 100 {
						b.Fatalf("cycle wrote %d records to z, want 100", rep.Systems["z"].Writes)
					}
				}
			})
		}
	}
}
