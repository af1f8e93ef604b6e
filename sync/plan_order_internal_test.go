package sync

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
)

// plan takes a record's fields in the order of the last record it planned
// for the system when they are the same names (no sort), and sorts them
// otherwise: either way a write's hashes and names come out sorted, and
// its idempotency key is the one its fields give in any order. Records of
// the same names, of as many other names, of more and fewer, in one cycle.
func TestPlanTakesNamesInOrder(t *testing.T) {
	ctx := context.Background()
	e, err := New(Config{Store: store.NewMemory(), Resolver: resolve.LastWriterWins(), Logger: slog.New(slog.DiscardHandler),
		Systems: []System{{ID: "a", Connector: fake.New("a")}, {ID: "z", Connector: fake.New("z")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.init(ctx); err != nil {
		t.Fatal(err)
	}
	c := e.newCycle()
	rng := rand.New(rand.NewPCG(3, 4))
	ver := concord.MustVersion(concord.Dot{Actor: 1, Counter: 1})
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for i := range 500 {
		n := 1 + rng.IntN(4)
		if rng.IntN(3) == 0 {
			n = 3 // as many names as the last record, often, and often others
		}
		st := &state.Record{Key: fmt.Sprintf("k%d", i), Fields: map[string]concord.Value{}, Units: state.Table[*state.Unit]{},
			Systems: map[concord.SystemID]*state.View{}}
		st.Units.Set(resolve.RecordUnit, &state.Unit{Version: ver})
		for _, j := range rng.Perm(len(names))[:n] {
			st.Fields[names[j]] = fmt.Sprint("v", rng.IntN(3))
			st.Units.Set(names[j], &state.Unit{Version: ver})
		}
		for _, s := range e.systems {
			st.Systems[s.id] = &state.View{} // a create: every field written
		}
		for _, s := range e.systems {
			w, err := c.plan(ctx, st, s)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Sorted(maps.Keys(st.Fields))
			if !slices.Equal(w.fields, want) || !slices.Equal(slices.Sorted(maps.Keys(w.patch.Set)), want) {
				t.Fatalf("record %d to %s: names %q, set %v; want %q", i, s.id, w.fields, w.patch.Set, want)
			}
			if !slices.IsSortedFunc(w.native, func(a, b fieldHash) int { return strings.Compare(a.field, b.field) }) || len(w.native) != len(want) {
				t.Fatalf("record %d to %s: hashes out of order or missing: %v", i, s.id, w.native)
			}
			if key := c.idempotencyKey(st.Key, s.id, st.Systems[s.id], st, w.patch.Set, nil); w.patch.IdempotencyKey != key {
				t.Fatalf("record %d to %s: idempotency key %s; sorted again it is %s", i, s.id, w.patch.IdempotencyKey, key)
			}
		}
	}
}
