package sync_test

import (
	"fmt"
	"testing"

	recsync "github.com/concordsync/concord/sync"
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
				benchEditCycles(b, editRig{backend: backend, edits: 100, tune: func(e *recsync.Engine) {
					if mode == "final-only" {
						recsync.SkipWriteAheadForBenchmark(e)
					}
				}})
			})
		}
	}
}
