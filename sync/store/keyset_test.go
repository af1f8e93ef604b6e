package store

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// keySet against a plain map, sorted on every read, through random adds
// and removals (with keys re-added after removal, and removals of keys not
// in the set) and reads of random limits, over sets small and large enough
// to rebuild many times.
func TestKeySetMatchesSortedMap(t *testing.T) {
	for _, universe := range []int{3, 40, 2000} {
		t.Run(fmt.Sprint("keys=", universe), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(universe), 7))
			ks, want := newKeySet(), map[string]bool{}
			check := func(step int) {
				limit := rng.IntN(universe+2) - 1
				if rng.IntN(4) == 0 {
					limit = universe + 1
				}
				all := slices.Sorted(maps.Keys(want))
				exp := all[:min(max(limit, 0), len(all))]
				if got := ks.first(limit); !slices.Equal(got, exp) || got == nil {
					t.Fatalf("step %d: first(%d) = %q; want %q", step, limit, got, exp)
				}
			}
			for step := range 20 * universe {
				key := fmt.Sprintf("k%05d", rng.IntN(universe))
				on := rng.IntN(3) > 0
				if step > 10*universe {
					on = rng.IntN(3) == 0 // mostly removals: the front goes stale
				}
				ks.set(key, on)
				if on {
					want[key] = true
				} else {
					delete(want, key)
				}
				if rng.IntN(5) == 0 {
					check(step)
				}
				if rng.IntN(500) == 0 {
					c := ks.clone()
					c.set("zzz-only-in-clone", true)
					check(step)
				}
			}
			check(-1)
		})
	}
}
