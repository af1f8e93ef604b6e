package sync

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
)

// refIdempotencyKey is idempotencyKey as it was before it kept its scratch
// space in the cycle: the keys must stay exactly these (a retried write
// must carry the key of its first attempt, across versions too).
func refIdempotencyKey(key string, s concord.SystemID, epoch uint64, view *state.View, st *state.Record, set map[string]concord.Value, sens *sensitivity) string {
	b := []byte(key)
	b = append(b, 0)
	b = append(b, s...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = append(b, 0)
	b = append(b, view.Tag...)
	b = binary.BigEndian.AppendUint64(b, uint64(view.Modified.UnixNano()))
	for _, f := range sortedFields(set) {
		b = append(b, 0)
		b = append(b, f...)
		if sens.is(f) {
			h, _ := sens.hashValue(f, set[f])
			b = binary.BigEndian.AppendUint64(b, h)
			continue
		}
		b, _ = concord.AppendCanonical(b, set[f])
	}
	names := make([]string, 0, len(st.Units))
	for _, x := range st.Units {
		names = append(names, x.Name)
	}
	slices.Sort(names)
	for _, n := range names {
		b = append(b, 0)
		b = append(b, n...)
		b, _ = st.Units.Value(n).Version.AppendBinary(b)
	}
	return strconv.FormatUint(concord.HashBytes(b), 36)
}

// TestIdempotencyKeyUnchanged: on random records, values and views, one
// cycle computing many keys in a row (its scratch reused) gives exactly the
// keys of the reference, and different inputs different keys.
func TestIdempotencyKeyUnchanged(t *testing.T) {
	e, err := New(Config{Store: store.NewMemory(), Systems: []System{{ID: "a", Connector: fake.New("a")}, {ID: "b", Connector: fake.New("b")}}})
	if err != nil {
		t.Fatal(err)
	}
	e.epoch = 7
	c := e.newCycle()
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]string{}
	for i := range 2000 {
		st := &state.Record{Key: fmt.Sprintf("k%d", rng.IntN(50)), Units: state.Table[*state.Unit]{}}
		for range rng.IntN(6) {
			v, err := concord.NewVersion(concord.Dot{Actor: concord.Actor(1 + rng.IntN(3)), Counter: uint64(1 + rng.IntN(4))})
			if err != nil {
				t.Fatal(err)
			}
			st.Units.Set(fmt.Sprintf("u%d", rng.IntN(8)), &state.Unit{Version: v})
		}
		var set map[string]concord.Value
		if rng.IntN(4) > 0 {
			set = map[string]concord.Value{}
			for range rng.IntN(5) {
				set[fmt.Sprintf("f%d", rng.IntN(8))] = []concord.Value{int64(rng.IntN(3)), "x", nil, 1.5}[rng.IntN(4)]
			}
		}
		view := &state.View{Tag: []string{"", "t1", "t2"}[rng.IntN(3)], Modified: time.Unix(int64(rng.IntN(3)), 0)}
		sys := []concord.SystemID{"a", "b"}[rng.IntN(2)]
		want := refIdempotencyKey(st.Key, sys, e.epoch, view, st, set, e.sens)
		if got := c.idempotencyKey(st.Key, sys, view, st, set, nil); got != want {
			t.Fatalf("case %d: key %s, want %s", i, got, want)
		}
		if len(set) > 0 { // with set's names, sorted, as plan gives them
			names := slices.Sorted(maps.Keys(set))
			if got := c.idempotencyKey(st.Key, sys, view, st, set, names); got != want {
				t.Fatalf("case %d: key %s with the names given, want %s", i, got, want)
			}
		}
		in := fmt.Sprint(st.Key, sys, e.epoch, view.Tag, view.Modified.UnixNano(), set, unitVersions(st))
		if prev, ok := seen[want]; ok && prev != in {
			t.Fatalf("case %d: the same key for %s and %s", i, prev, in)
		}
		seen[want] = in
	}
}

func unitVersions(st *state.Record) string {
	var out []string
	for _, x := range st.Units {
		out = append(out, x.Name+x.Value.Version.String())
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}
