package sync_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// A resolver's decision is user code's output: one the engine cannot apply
// fails the merge of that record only (a merge dead letter, merged again
// next cycle), with the reason, and the other records sync. A Merge without
// values crashed the host (a nil dereference on the engine's goroutine).
func TestABadDecisionFailsOnlyItsRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    resolve.Decision
		why  string
	}{
		{"merge without values", resolve.Decision{Outcome: resolve.Merge}, "merged no values"},
		{"pick out of range", resolve.Decision{Outcome: resolve.Pick, Winner: 2}, "picked candidate 2 of 2"},
		{"pick negative", resolve.Decision{Outcome: resolve.Pick, Winner: -1}, "picked candidate -1 of 2"},
		{"merge NaN", resolve.Decision{Outcome: resolve.Merge, Values: map[string]concord.Value{"city": math.NaN()}}, "unsupported value"},
		{"merge a channel", resolve.Decision{Outcome: resolve.Merge, Values: map[string]concord.Value{"city": make(chan int)}}, "unsupported value"},
		{"merge another unit's field", resolve.Decision{Outcome: resolve.Merge, Values: map[string]concord.Value{"zip": "1"}}, "not in unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			crm, shop := fake.New("crm"), fake.New("shop")
			d := tc.d
			d.Rule = "bad"
			e, err := recsync.New(recsync.Config{Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop}},
				Resolver: resolve.Func(func(context.Context, resolve.Conflict) (resolve.Decision, error) { return d, nil }),
				Store:    store.NewMemory(), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"k", "k2"} {
				crm.Edit(k, map[string]concord.Value{"city": "A"})
			}
			for range 2 {
				if _, err := e.RunCycle(ctx); err != nil {
					t.Fatal(err)
				}
			}
			crm.Edit("k", map[string]concord.Value{"city": "B"})
			shop.Edit("k", map[string]concord.Value{"city": "C"}) // a conflict
			crm.Edit("k2", map[string]concord.Value{"city": "B"})
			_, err = e.RunCycle(ctx)
			var ce *recsync.CycleError
			if !errors.As(err, &ce) || !slices.ContainsFunc(ce.Failures, func(f recsync.Failure) bool {
				return f.Key == "k" && f.Op == recsync.OpMerge && strings.Contains(f.Error(), tc.why)
			}) {
				t.Fatalf("cycle: %v; want k's merge failed, saying %q", err, tc.why)
			}
			if r, _ := shop.Record("k2"); r.Fields["city"] != "B" {
				t.Errorf("shop holds k2 = %v; want B: the other record syncs", r.Fields)
			}
			for s, want := range map[*fake.System]string{crm: "B", shop: "C"} {
				if r, _ := s.Record("k"); r.Fields["city"] != want {
					t.Errorf("%s holds k = %v; want its own edit %s, untouched", s.Name(), r.Fields, want)
				}
			}
		})
	}
}
