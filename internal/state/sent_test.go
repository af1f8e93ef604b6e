package state_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
)

// TestAddSentFromIsAddSent: a view fed the same attempts through
// AddSentFrom (with spare room, some of it too little) and AddSent ends
// the same, and lists taken from the spare room never share memory.
func TestAddSentFromIsAddSent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var a, b state.View
		units := 1 + r.IntN(6)
		spare := make([]state.Copy, r.IntN(units+2))
		for i := range 3 * units {
			u := fmt.Sprintf("u%d", r.IntN(units))
			h := state.Copy{Hash: uint64(r.IntN(4)), Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: uint64(1 + i)})}
			a.AddSent(u, h)
			b.AddSentFrom(u, h, &spare)
			if r.IntN(5) == 0 {
				// A confirmation takes a unit's attempts away.
				a.Sent.Delete(u)
				b.Sent.Delete(u)
			}
		}
		if d := cmp.Diff(a.Sent, b.Sent, cmp.Comparer(func(x, y concord.Version) bool { return x.Compare(y) == concord.Equal })); d != "" {
			t.Fatalf("round %d: AddSentFrom differs from AddSent (-AddSent +AddSentFrom):\n%s", round, d)
		}
		seen := map[*state.Copy]string{}
		for _, e := range b.Sent {
			u, l := e.Name, e.Value
			for i := range l {
				if other, ok := seen[&l[i]]; ok {
					t.Fatalf("round %d: units %s and %s share an attempt's memory", round, u, other)
				}
				seen[&l[i]] = u
			}
		}
	}
}
