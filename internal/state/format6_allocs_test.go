//go:build !race

package state_test

import (
	"testing"

	"github.com/concordsync/concord/internal/state"
)

// Decoding a record in format 6 allocates what its maps, tables and slabs
// need and little else: a regression guard for the counts BenchmarkFormat6
// reports (under the race detector the pool drops decoders at random: not
// run). The floor is the maps: a map of more than 8 entries is 4
// allocations (Fields), of up to 8 two; a Table (the record's Units, a
// view's Units, Native and Sent) is one.
func TestFormat6DecodeAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts: not in -short")
	}
	for _, c := range []struct {
		name string
		st   *state.Record
		max  float64
	}{
		// 6 for the maps (Fields 4, Systems 2), 5 for the tables (the
		// record's Units, each view's Units and Native: 1 each), 2 for the
		// Record with its Views and its Unit slab, 1 for its strings, 1 for
		// its version, 15 to box the values (10 strings, 5 ints past 255).
		{"synced", suiteRecord(42), 30},
		// And 3 small Prev maps (2 each), a Sent table (1) and its lists
		// (1), a version, 3 boxed strings (2 in Prev, 1 a bool before).
		{"edited", engineRecord(42), 42},
		// And 2 holds: each the Hold, its candidates, their 2 maps of
		// values and its base (2 each); a version; 5 boxed values.
		{"held", heldRecord(42), 64},
	} {
		b, err := state.EncodeState(nil, c.st)
		if err != nil {
			t.Fatal(err)
		}
		got := testing.AllocsPerRun(200, func() {
			if _, err := state.DecodeState(b); err != nil {
				t.Fatal(err)
			}
		})
		if got > c.max {
			t.Errorf("%s: %.1f allocations per decode; want at most %.0f", c.name, got, c.max)
		}
	}
}
