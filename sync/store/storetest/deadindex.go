package storetest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/concordsync/concord/sync/store"
)

// letterModel is what a store should hold: the dead letters by ID, as
// committed.
type letterModel map[uint64]store.DeadLetter

// of returns the IDs the model expects for the keys, or for the class.
func (m letterModel) of(match func(store.DeadLetter) bool) []uint64 {
	var ids []uint64
	for id, d := range m {
		if match(d) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// checkLetters compares what a lookup returned with the model's IDs: in ID
// order, each once, with its Data byte for byte.
func checkLetters(t *testing.T, what string, got []store.DeadLetter, err error, m letterModel, want []uint64) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	ids := make([]uint64, len(got))
	for i, d := range got {
		ids[i] = d.ID
		if w, ok := m[d.ID]; ok && !bytes.Equal(d.Data, w.Data) {
			t.Fatalf("%s: dead letter %d has Data %q; want %q", what, d.ID, d.Data, w.Data)
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("%s = IDs %v; want %v", what, ids, want)
	}
}

// checkDeadLettersOf: the lookups by key and by class return exactly the
// stored letters of those keys or that class, before and after removals,
// for keys with none, repeated keys, the empty key and class, keys that
// are prefixes of one another, and many keys at once.
func checkDeadLettersOf(t *testing.T, s store.Store, _ *clock) {
	m := letterModel{}
	if got, err := s.DeadLettersOf(ctx, []string{"a", ""}); err != nil || len(got) != 0 {
		t.Fatalf("DeadLettersOf of a new store = %v, %v; want none", got, err)
	}
	if got, err := s.DeadLettersOfClass(ctx, "merge"); err != nil || len(got) != 0 {
		t.Fatalf("DeadLettersOfClass of a new store = %v, %v; want none", got, err)
	}
	// Keys that share prefixes and lengths, odd bytes, the empty key.
	keys := []string{"", "k", "k1", "k10", "k\x00", "k\x001", "\xff", "é", "k1 "}
	classes := []string{"", "merge", "invalid", "merge2", "m"}
	var next uint64 // the ID the store gives next, learnt from DeadLetters
	add := func(ds ...store.DeadLetter) {
		t.Helper()
		commit(t, s, &store.Commit{DeadLetters: ds})
		all, err := s.DeadLetters(ctx)
		if err != nil || len(all) < len(ds) {
			t.Fatalf("DeadLetters = %d, %v", len(all), err)
		}
		for i, d := range ds {
			id := all[len(all)-len(ds)+i].ID
			d.ID, d.Data = id, slices.Clone(d.Data)
			m[id] = d
			next = id
		}
	}
	var first []store.DeadLetter
	for i := range 3 * len(keys) {
		k, c := keys[i%len(keys)], classes[i%len(classes)]
		first = append(first, store.DeadLetter{System: "a", Key: k, Class: c, Data: Data(fmt.Sprint(k, "/", c, "/", i), i)})
	}
	add(first...)
	verify := func(step string) {
		t.Helper()
		for _, k := range keys {
			got, err := s.DeadLettersOf(ctx, []string{k})
			checkLetters(t, fmt.Sprintf("%s: DeadLettersOf(%q)", step, k), got, err, m, m.of(func(d store.DeadLetter) bool { return d.Key == k }))
		}
		for _, c := range append(classes, "none", "merg") {
			got, err := s.DeadLettersOfClass(ctx, c)
			checkLetters(t, fmt.Sprintf("%s: DeadLettersOfClass(%q)", step, c), got, err, m, m.of(func(d store.DeadLetter) bool { return d.Class == c }))
		}
		some := []string{"k10", "nobody", "k", "k10", "k\x00"}
		got, err := s.DeadLettersOf(ctx, some)
		checkLetters(t, step+": DeadLettersOf(several, one repeated)", got, err, m, m.of(func(d store.DeadLetter) bool { return slices.Contains(some, d.Key) }))
		got, err = s.DeadLettersOf(ctx, nil)
		checkLetters(t, step+": DeadLettersOf(none)", got, err, m, nil)
		got, err = s.DeadLettersOf(ctx, []string{"nobody", "k2", "k1\x00"})
		checkLetters(t, step+": DeadLettersOf(keys with none)", got, err, m, nil)
	}
	verify("after adding")

	// Removal keeps the indexes right: the first and last of a key, IDs
	// removed twice and IDs never given are ignored.
	byK := m.of(func(d store.DeadLetter) bool { return d.Key == "k1" })
	remove := []uint64{byK[0], byK[len(byK)-1], byK[0], next + 1000}
	commit(t, s, &store.Commit{RemoveDeadLetters: remove})
	for _, id := range remove {
		delete(m, id)
	}
	verify("after removing")
	// Every letter of a key and of a class removed: the key has none.
	var gone []uint64
	for id, d := range m {
		if d.Key == "k" || d.Class == "m" {
			gone = append(gone, id)
		}
	}
	// In the same commit, one added for a key whose last letter goes.
	commit(t, s, &store.Commit{RemoveDeadLetters: gone, DeadLetters: []store.DeadLetter{{System: "b", Key: "k", Class: "merge", Data: []byte("again")}}})
	for _, id := range gone {
		delete(m, id)
	}
	all, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := all[len(all)-1]
	if last.ID <= next {
		t.Fatalf("a new dead letter got ID %d after %d", last.ID, next)
	}
	m[last.ID] = store.DeadLetter{ID: last.ID, System: "b", Key: "k", Class: "merge", Data: []byte("again")}
	next = last.ID
	verify("after removing a key's every letter and adding one")

	// Random commits of additions and removals, against the model.
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		var c store.Commit
		for range rng.IntN(4) {
			ids := m.of(func(store.DeadLetter) bool { return true })
			if len(ids) > 0 {
				c.RemoveDeadLetters = append(c.RemoveDeadLetters, ids[rng.IntN(len(ids))])
			}
		}
		for i := range rng.IntN(4) {
			k, cl := keys[rng.IntN(len(keys))], classes[rng.IntN(len(classes))]
			c.DeadLetters = append(c.DeadLetters, store.DeadLetter{System: "a", Key: k, Class: cl, Data: Data(fmt.Sprint(round, i), round+i)})
		}
		commit(t, s, &c)
		for _, id := range c.RemoveDeadLetters {
			delete(m, id)
		}
		if n := len(c.DeadLetters); n > 0 {
			all, err := s.DeadLetters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range c.DeadLetters {
				d.ID = all[len(all)-n+i].ID
				m[d.ID] = d
			}
		}
	}
	verify("after random commits")

	// Many keys at once, most without letters.
	many := make([]string, 0, 3000)
	for i := range 3000 {
		many = append(many, fmt.Sprintf("many%04d", i))
	}
	var lots []store.DeadLetter
	for i := 0; i < len(many); i += 7 {
		lots = append(lots, store.DeadLetter{System: "a", Key: many[i], Class: "invalid", Data: Data(many[i], 3)})
	}
	add(lots...)
	got, err := s.DeadLettersOf(ctx, append(many, keys...))
	checkLetters(t, "DeadLettersOf(3,000 keys and the others)", got, err, m, m.of(func(store.DeadLetter) bool { return true }))
	verify("with many letters")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.DeadLettersOf(cancelled, []string{"k"}); err == nil {
		t.Error("DeadLettersOf with a cancelled context succeeded")
	}
	if _, err := s.DeadLettersOfClass(cancelled, "merge"); err == nil {
		t.Error("DeadLettersOfClass with a cancelled context succeeded")
	}
}

// checkDeadLettersOfCopies: what the lookups return is the caller's.
func checkDeadLettersOfCopies(t *testing.T, s store.Store, _ *clock) {
	commit(t, s, &store.Commit{DeadLetters: []store.DeadLetter{{System: "a", Key: "k", Class: "c", Data: Data("dl", 5)}}})
	for _, get := range []func() ([]store.DeadLetter, error){
		func() ([]store.DeadLetter, error) { return s.DeadLettersOf(ctx, []string{"k"}) },
		func() ([]store.DeadLetter, error) { return s.DeadLettersOfClass(ctx, "c") },
	} {
		got, err := get()
		if err != nil || len(got) != 1 {
			t.Fatalf("lookup = %v, %v; want one letter", got, err)
		}
		got[0].Data[0] ^= 0xff
		again, err := get()
		if err != nil || len(again) != 1 || !bytes.Equal(again[0].Data, Data("dl", 5)) {
			t.Fatalf("after changing what a lookup returned, it returns %v, %v", again, err)
		}
	}
}

// checkLeaseRenewal: the holder's lease is renewed once at most half its
// ttl remains, not before: until then AcquireLease returns it unchanged.
func checkLeaseRenewal(t *testing.T, s store.Store, clk *clock) {
	l1, err := s.AcquireLease(ctx, "p", "one", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(29 * time.Second)
	same, err := s.AcquireLease(ctx, "p", "one", time.Minute)
	if err != nil || !same.Same(l1) {
		t.Fatalf("renewal with 31s of 60s left = %+v, %v; want the lease unchanged: %+v", same, err, l1)
	}
	clk.advance(time.Second)
	renewed, err := s.AcquireLease(ctx, "p", "one", time.Minute)
	if err != nil || renewed.Token != l1.Token || !renewed.Expires.Equal(clk.now().Add(time.Minute)) {
		t.Fatalf("renewal with 30s of 60s left = %+v, %v; want token %d and expiry in a minute", renewed, err, l1.Token)
	}
	// An unchanged lease still fences: it commits, and another holder
	// still waits.
	commit(t, s, &store.Commit{Lease: &same, Values: map[string][]byte{"v": {1}}})
	if _, err := s.AcquireLease(ctx, "p", "two", time.Minute); err == nil {
		t.Fatal("another holder took a lease renewed a moment ago")
	}
	clk.advance(59 * time.Second)
	if _, err := s.AcquireLease(ctx, "p", "two", time.Minute); err == nil {
		t.Fatal("another holder took the lease a second before the renewed expiry")
	}
	l := store.Lease{Name: "x", Holder: "h", Token: 1, Expires: clk.now()}
	if !l.Same(store.Lease{Name: "x", Holder: "h", Token: 1, Expires: clk.now().In(time.FixedZone("z", 3600))}) || l.Same(store.Lease{Name: "x", Holder: "h", Token: 2, Expires: l.Expires}) {
		t.Fatal("Lease.Same compares wrongly")
	}
}
