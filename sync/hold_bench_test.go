package sync_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// BenchmarkCycleWithHolds is BenchmarkCycleWithDeadLetters with held
// conflicts instead of dead letters: a cycle that reads 10 edited records
// (of 1,000) and writes them to the other system, over a store holding no
// hold and over one holding 10^4 (records whose city the two systems
// changed differently, held for a person by resolve.Hold). The systems
// disagree on a held unit, but it is no write outstanding (state.Behind
// skips it), so a cycle neither lists nor loads held records: what it pays
// per stored hold is what this measures (issue 13).
//
//	go test ./sync -run '^$' -bench CycleWithHolds -count 6 | benchstat -col /holds -
func BenchmarkCycleWithHolds(b *testing.B) {
	res := resolve.PerUnit(map[string]resolve.Resolver{"city": resolve.Hold("the systems disagree")}, resolve.LastWriterWins())
	for _, backend := range []string{"memory", "bolt"} {
		for _, holds := range []int{0, 10_000} {
			b.Run(fmt.Sprintf("store=%s/holds=%d", backend, holds), func(b *testing.B) {
				benchEditCycles(b, editRig{backend: backend, edits: 10, resolver: res, settle: func(e *recsync.Engine, a, z *fake.System) {
					for i := range holds {
						a.Edit(fmt.Sprintf("h%05d", i), map[string]concord.Value{"name": "n", "city": "c", "n": i})
					}
					runUntilIdle(b, e)
					for i := range holds {
						key := fmt.Sprintf("h%05d", i)
						a.Edit(key, map[string]concord.Value{"city": "from a"})
						z.Edit(key, map[string]concord.Value{"city": "from z"})
					}
					runUntilIdle(b, e)
					held, err := e.Holds(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					if len(held) != holds {
						b.Fatalf("%d holds, want %d", len(held), holds)
					}
				}})
			})
		}
	}
}

// runUntilIdle runs cycles until one reads and writes nothing (at most
// 100).
func runUntilIdle(b *testing.B, e *recsync.Engine) {
	b.Helper()
	for range 100 {
		rep, err := e.RunCycle(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, s := range rep.Systems {
			n += s.Read + s.Writes
		}
		if n == 0 {
			return
		}
	}
	b.Fatal("100 cycles and the systems still have changes")
}
