// Package storetest checks a [store.Store] against everything the engine
// relies on, as testing/fstest does for file systems:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t testing.TB, now func() time.Time) store.Store {
//			s, err := mystore.Open(..., mystore.WithClock(now)) // a fresh, empty store
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The store must take leases by the clock now it is given: the suite moves
// it to expire leases, instead of sleeping. Every store in this module runs
// the suite (store.Memory, boltstore, pgstore), and so does a store written
// from scratch against the exported API only (sync/store's
// thirdparty_test.go).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/sync/store"
)

// Opener returns a fresh, empty store whose leases follow the clock now.
type Opener func(t testing.TB, now func() time.Time) store.Store

// Run runs every check as a subtest, each against a fresh store from open.
func Run(t *testing.T, open Opener) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
			c.fn(t, open(t, clk.now), clk)
		})
	}
}

// clock is the suite's clock: it moves only when a check advances it.
type clock struct {
	mu gosync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var checks = []struct {
	name string
	fn   func(t *testing.T, s store.Store, clk *clock)
}{
	{"Actors", checkActors},
	{"Epoch", checkEpoch},
	{"CommitAndLoad", checkCommitAndLoad},
	{"DataIsOpaque", checkOpaque},
	{"Revisions", checkRevisions},
	{"CommitIsAtomic", checkAtomic},
	{"CopiesNotShared", checkCopies},
	{"PendingAndHeld", checkIndexes},
	{"DeadLetters", checkDeadLetters},
	{"DeadLetterByID", checkDeadLetterByID},
	{"DeadLettersByKeyAndClass", checkDeadLettersOf},
	{"DeadLettersByKeyAndClassCopies", checkDeadLettersOfCopies},
	{"Leases", checkLeases},
	{"LeaseRenewedInItsSecondHalf", checkLeaseRenewal},
	{"FencedCommit", checkFence},
	{"ConcurrentCommits", checkConcurrent},
	{"CancelledContext", checkCancelled},
	{"Values", checkValues},
	{"AuditSeq", checkAuditSeq},
	{"AuditPaging", checkAuditPaging},
	{"ValuesAndAuditAreAtomic", checkAtomicValuesAndAudit},
	{"ConcurrentAudit", checkConcurrentAudit},
	{"ValueAndAuditCopiesNotShared", checkValueAndAuditCopies},
	{"Keys", checkKeys},
	{"CancelledContextNewMethods", checkCancelledNew},
	{"LongKeys", checkLongKeys},
	{"CursorsAreAnyBytes", checkCursorBytes},
}

var ctx = context.Background()

// Data returns opaque bytes standing for the engine's encoding of a state
// or dead letter: every byte value, and the key's own bytes, so that a
// store that alters, truncates, trims or shares them is caught.
func Data(key string, n int) []byte {
	b := make([]byte, 0, 256+len(key)+n)
	for i := range 256 {
		b = append(b, byte(i))
	}
	b = append(b, key...)
	for i := range n {
		b = append(b, byte(i*7+len(key)))
	}
	return b
}

// State returns a state for key with [Data] and the given flags.
func State(key string, pending, held bool) store.State {
	return store.State{Key: key, Pending: pending, Held: held, Data: Data(key, 40)}
}

func commit(t *testing.T, s store.Store, c *store.Commit) {
	t.Helper()
	if err := s.Commit(ctx, c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func load(t *testing.T, s store.Store, keys ...string) map[string]store.State {
	t.Helper()
	m, err := s.Load(ctx, keys)
	if err != nil {
		t.Fatalf("Load(%q): %v", keys, err)
	}
	return m
}

// cmpData compares byte slices exactly, nil and empty alike.
var cmpData = cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })

func checkActors(t *testing.T, s store.Store, _ *clock) {
	seen := map[concord.Actor]string{}
	for _, name := range []string{"system/a", "system/b", "concord/engine@1"} {
		a, err := s.Actor(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if a == 0 {
			t.Fatalf("Actor(%q) = 0; actors start at 1", name)
		}
		if other, dup := seen[a]; dup {
			t.Fatalf("Actor(%q) = %d, already given to %q", name, a, other)
		}
		seen[a] = name
		again, err := s.Actor(ctx, name)
		if err != nil || again != a {
			t.Fatalf("Actor(%q) again = %d, %v; want %d", name, again, err, a)
		}
	}
	// Concurrent first use of one name gets one number.
	var wg gosync.WaitGroup
	got := make([]concord.Actor, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = s.Actor(ctx, "system/racing") })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("concurrent Actor: %v", errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("concurrent Actor gave %v; want one number", got)
		}
	}
	if other, dup := seen[got[0]]; dup {
		t.Fatalf("Actor(system/racing) = %d, already given to %q", got[0], other)
	}
}

func checkEpoch(t *testing.T, s store.Store, _ *clock) {
	e1, err := s.Epoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e1 == 0 {
		t.Fatal("a new store's epoch is 0; want a random one (store.NextEpoch)")
	}
	if e2, _ := s.Epoch(ctx); e2 != e1 {
		t.Fatalf("Epoch changed by itself: %d then %d", e1, e2)
	}
	n, err := s.NewEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n == e1 || n == 0 {
		t.Fatalf("NewEpoch = %d after %d; want another, not 0", n, e1)
	}
	if e3, _ := s.Epoch(ctx); e3 != n {
		t.Fatalf("Epoch after NewEpoch = %d; want %d", e3, n)
	}
}

func checkCommitAndLoad(t *testing.T, s store.Store, _ *clock) {
	if cur, err := s.Cursor(ctx, "a"); err != nil || cur != "" {
		t.Fatalf("Cursor of a new store = %q, %v; want empty", cur, err)
	}
	if m := load(t, s, "nope"); len(m) != 0 {
		t.Fatalf("Load of a missing key = %v; want nothing", m)
	}
	if m := load(t, s); len(m) != 0 {
		t.Fatalf("Load of no keys = %v; want nothing", m)
	}
	st := State("k1", true, true)
	c := &store.Commit{Cursors: map[concord.SystemID]connector.Cursor{"a": "c-1", "b": "c-9"}, States: []store.State{st}}
	commit(t, s, c)
	if c.States[0].Rev != 0 {
		t.Fatalf("Commit changed the given state's Rev to %d; the commit is the caller's", c.States[0].Rev)
	}
	got := load(t, s, "k1", "missing")
	if len(got) != 1 {
		t.Fatalf("Load = %d states; want 1", len(got))
	}
	want := st
	want.Rev = 1
	if diff := cmp.Diff(want, got["k1"], cmpData); diff != "" {
		t.Fatalf("loaded state (-want +got):\n%s", diff)
	}
	for sys, wantCur := range map[concord.SystemID]connector.Cursor{"a": "c-1", "b": "c-9", "c": ""} {
		if cur, err := s.Cursor(ctx, sys); err != nil || cur != wantCur {
			t.Fatalf("Cursor(%s) = %q, %v; want %q", sys, cur, err, wantCur)
		}
	}
	commit(t, s, &store.Commit{Cursors: map[concord.SystemID]connector.Cursor{"a": "c-2"}})
	if cur, _ := s.Cursor(ctx, "a"); cur != "c-2" {
		t.Fatalf("Cursor(a) after a second commit = %q; want c-2", cur)
	}
}

// checkOpaque stores data of every shape: empty, one byte, every byte
// value, large, and bytes that look like a store's own framing.
func checkOpaque(t *testing.T, s store.Store, _ *clock) {
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 31 >> 3)
	}
	cases := map[string][]byte{
		"empty": {}, "zero": {0}, "ff": {0xff, 0xff, 0xff, 0xff}, "every": Data("", 0), "big": big,
		"framed": append([]byte("CSR\x02"), make([]byte, 12)...),
		"ключ":   []byte("значение"),
	}
	var states []store.State
	for k, d := range cases {
		states = append(states, store.State{Key: k, Data: slices.Clone(d)})
	}
	commit(t, s, &store.Commit{States: states})
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range cases {
			if !yield(k) {
				return
			}
		}
	})
	got := load(t, s, keys...)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			t.Errorf("Load lost %q", k)
			continue
		}
		if g.Key != k || g.Rev != 1 || !bytes.Equal(g.Data, cases[k]) {
			t.Errorf("Load(%q) = key %q rev %d, %d bytes; want rev 1 and the %d bytes committed, unchanged", k, g.Key, g.Rev, len(g.Data), len(cases[k]))
		}
	}
	// The same holds for dead letters.
	var dls []store.DeadLetter
	for _, k := range keys {
		dls = append(dls, store.DeadLetter{System: "a", Key: k, Data: slices.Clone(cases[k])})
	}
	commit(t, s, &store.Commit{DeadLetters: dls})
	all, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(keys) {
		t.Fatalf("DeadLetters = %d; want %d", len(all), len(keys))
	}
	for i, d := range all {
		if !bytes.Equal(d.Data, cases[keys[i]]) {
			t.Errorf("dead letter %d (%s): %d bytes back; want the %d committed, unchanged", d.ID, keys[i], len(d.Data), len(cases[keys[i]]))
		}
	}
}

func checkRevisions(t *testing.T, s store.Store, _ *clock) {
	st := State("k", false, false)
	commit(t, s, &store.Commit{States: []store.State{st}})
	st.Rev, st.Data = 1, []byte("second")
	commit(t, s, &store.Commit{States: []store.State{st}})
	if got := load(t, s, "k")["k"]; got.Rev != 2 {
		t.Fatalf("Rev after two commits = %d; want 2", got.Rev)
	}
	stale := State("k", false, false)
	stale.Rev = 1
	err := s.Commit(ctx, &store.Commit{States: []store.State{stale}})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("Commit at an old Rev = %v; want ErrStale", err)
	}
	ahead := State("k", false, false)
	ahead.Rev = 7
	if err := s.Commit(ctx, &store.Commit{States: []store.State{ahead}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Commit at a Rev the store never had = %v; want ErrStale", err)
	}
	fresh := State("k", false, false) // Rev 0: "new", but it exists
	if err := s.Commit(ctx, &store.Commit{States: []store.State{fresh}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Commit of an existing key as new = %v; want ErrStale", err)
	}
	ghost := State("ghost", false, false)
	ghost.Rev = 3
	if err := s.Commit(ctx, &store.Commit{States: []store.State{ghost}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("Commit of a missing key at Rev 3 = %v; want ErrStale", err)
	}
	if got := load(t, s, "k", "ghost"); got["k"].Rev != 2 || string(got["k"].Data) != "second" || len(got) != 1 {
		t.Fatalf("after refused commits: %+v; want only k, Rev 2, data \"second\"", got)
	}
}

func checkAtomic(t *testing.T, s store.Store, _ *clock) {
	base := State("exists", false, false)
	commit(t, s, &store.Commit{States: []store.State{base}, Cursors: map[concord.SystemID]connector.Cursor{"a": "1"}})
	stale := State("exists", false, false) // Rev 0, but stored at 1
	err := s.Commit(ctx, &store.Commit{
		Cursors:           map[concord.SystemID]connector.Cursor{"a": "2"},
		States:            []store.State{State("new1", true, false), stale, State("new2", false, true)},
		DeadLetters:       []store.DeadLetter{{System: "a", Key: "bad", Data: []byte("r")}},
		RemoveDeadLetters: []uint64{1},
	})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("Commit with one stale state = %v; want ErrStale", err)
	}
	if cur, _ := s.Cursor(ctx, "a"); cur != "1" {
		t.Errorf("cursor moved to %q by a failed commit", cur)
	}
	if m := load(t, s, "new1", "new2"); len(m) != 0 {
		t.Errorf("a failed commit stored %d states", len(m))
	}
	if dl, _ := s.DeadLetters(ctx); len(dl) != 0 {
		t.Errorf("a failed commit stored %d dead letters", len(dl))
	}
	if p, _ := s.Pending(ctx, 10); len(p) != 0 {
		t.Errorf("a failed commit left pending keys %v", p)
	}
	if h, _ := s.Held(ctx); len(h) != 0 {
		t.Errorf("a failed commit left held keys %v", h)
	}
	// The dead letter sequence did not move either: the next one is 1.
	commit(t, s, &store.Commit{DeadLetters: []store.DeadLetter{{System: "a", Data: []byte("x")}}})
	if dl, _ := s.DeadLetters(ctx); len(dl) != 1 || dl[0].ID == 0 {
		t.Errorf("after a failed commit, dead letters %+v; want one with an ID", dl)
	}
}

func checkCopies(t *testing.T, s store.Store, _ *clock) {
	st := State("k", false, false)
	dl := store.DeadLetter{System: "a", Key: "k", Data: Data("dl", 10)}
	commit(t, s, &store.Commit{States: []store.State{st}, DeadLetters: []store.DeadLetter{dl}})
	// Changing what was committed, or what was loaded, changes nothing
	// stored.
	st.Data[0], dl.Data[0] = 'X', 'X'
	got := load(t, s, "k")["k"]
	all, err := s.DeadLetters(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("DeadLetters = %v, %v", all, err)
	}
	one, err := s.DeadLetter(ctx, all[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Data) < 3 || len(all[0].Data) < 3 || len(one.Data) < 3 {
		t.Fatalf("data came back truncated: %d, %d and %d bytes", len(got.Data), len(all[0].Data), len(one.Data))
	}
	got.Data[1], all[0].Data[1], one.Data[2] = 'Y', 'Y', 'Z'
	if again := load(t, s, "k")["k"]; !bytes.Equal(again.Data, Data("k", 40)) {
		t.Fatal("stored state shares memory with a caller")
	}
	if again, _ := s.DeadLetter(ctx, all[0].ID); !bytes.Equal(again.Data, Data("dl", 10)) {
		t.Fatal("stored dead letter shares memory with a caller")
	}
}

func checkIndexes(t *testing.T, s store.Store, _ *clock) {
	if p, err := s.Pending(ctx, 10); err != nil || len(p) != 0 {
		t.Fatalf("Pending of a new store = %v, %v; want none", p, err)
	}
	var states []store.State
	for i := range 5 {
		states = append(states, State(fmt.Sprintf("k%d", 4-i), i%2 == 0, i == 1 || i == 4))
	}
	commit(t, s, &store.Commit{States: states})
	p, err := s.Pending(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"k0", "k2", "k4"}, p); diff != "" {
		t.Fatalf("Pending (-want +got):\n%s", diff)
	}
	if p, _ := s.Pending(ctx, 2); !slices.Equal(p, []string{"k0", "k2"}) {
		t.Fatalf("Pending(2) = %v; want [k0 k2]", p)
	}
	if p, _ := s.Pending(ctx, 0); len(p) != 0 {
		t.Fatalf("Pending(0) = %v; want none", p)
	}
	h, err := s.Held(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"k0", "k3"}, h); diff != "" {
		t.Fatalf("Held (-want +got):\n%s", diff)
	}
	// Byte order, not a collation: "B" < "a" < "b" < "é".
	commit(t, s, &store.Commit{States: []store.State{State("é", true, true), State("B", true, true), State("a", true, true)}})
	if p, _ := s.Pending(ctx, 10); !slices.Equal(p, []string{"B", "a", "k0", "k2", "k4", "é"}) {
		t.Fatalf("Pending = %v; want byte order [B a k0 k2 k4 é]", p)
	}
	// Once delivered and settled, they leave the indexes; Load reports
	// the flags as stored.
	k0 := load(t, s, "k0")["k0"]
	if !k0.Pending || !k0.Held {
		t.Fatalf("Load(k0) flags pending=%v held=%v; want both", k0.Pending, k0.Held)
	}
	k0.Pending, k0.Held = false, false
	commit(t, s, &store.Commit{States: []store.State{k0}})
	if p, _ := s.Pending(ctx, 10); slices.Contains(p, "k0") {
		t.Fatalf("Pending still has k0: %v", p)
	}
	if h, _ := s.Held(ctx); slices.Contains(h, "k0") {
		t.Fatalf("Held still has k0: %v", h)
	}
	if k0 := load(t, s, "k0")["k0"]; k0.Pending || k0.Held {
		t.Fatalf("Load(k0) flags pending=%v held=%v after clearing; want neither", k0.Pending, k0.Held)
	}
}

func checkDeadLetters(t *testing.T, s store.Store, _ *clock) {
	if dl, err := s.DeadLetters(ctx); err != nil || len(dl) != 0 {
		t.Fatalf("DeadLetters of a new store = %v, %v; want none", dl, err)
	}
	want := []store.DeadLetter{
		{System: "a", Key: "k1", Data: Data("first", 3), ID: 99}, // the ID given is ignored
		{System: "b", Key: "", Data: Data("second", 5)},
	}
	commit(t, s, &store.Commit{DeadLetters: want[:1]})
	commit(t, s, &store.Commit{DeadLetters: want[1:]})
	got, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID == 0 || got[1].ID <= got[0].ID {
		t.Fatalf("dead letter IDs %+v; want increasing, from 1", got)
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("dead letter %d: data %q; want %q (oldest first)", i, got[i].Data, want[i].Data)
		}
		if (got[i].System != "" || got[i].Key != "") && (got[i].System != want[i].System || got[i].Key != want[i].Key) {
			t.Fatalf("dead letter %d: system %q key %q; want %q %q (or both empty)", i, got[i].System, got[i].Key, want[i].System, want[i].Key)
		}
	}
	// Settling one removes it in the same commit that adds another; a
	// second removal of the same ID, and of one never given, is harmless;
	// IDs are never reused.
	third := store.DeadLetter{System: "a", Key: "k3", Data: []byte("third")}
	commit(t, s, &store.Commit{DeadLetters: []store.DeadLetter{third}, RemoveDeadLetters: []uint64{got[0].ID}})
	commit(t, s, &store.Commit{RemoveDeadLetters: []uint64{got[0].ID, 1 << 40}})
	after, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || after[0].ID != got[1].ID || string(after[1].Data) != "third" || after[1].ID <= got[1].ID {
		t.Fatalf("after settling the first: %+v", after)
	}
	// Removing the newest does not let its ID come back.
	commit(t, s, &store.Commit{RemoveDeadLetters: []uint64{after[1].ID}})
	commit(t, s, &store.Commit{DeadLetters: []store.DeadLetter{{System: "a", Data: []byte("fourth")}}})
	last, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(last); n != 2 || last[n-1].ID <= after[1].ID {
		t.Fatalf("after removing the newest and adding one: %+v; want a new ID above %d", last, after[1].ID)
	}
}

func checkDeadLetterByID(t *testing.T, s store.Store, _ *clock) {
	for _, id := range []uint64{0, 1, 1 << 63, ^uint64(0)} {
		if _, err := s.DeadLetter(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeadLetter(%d) of a new store = %v; want ErrNotFound", id, err)
		}
	}
	var dls []store.DeadLetter
	for i := range 5 {
		dls = append(dls, store.DeadLetter{System: "a", Key: fmt.Sprint("k", i), Data: Data(fmt.Sprint("d", i), i)})
	}
	commit(t, s, &store.Commit{DeadLetters: dls})
	all, err := s.DeadLetters(ctx)
	if err != nil || len(all) != 5 {
		t.Fatalf("DeadLetters = %d, %v; want 5", len(all), err)
	}
	for i, d := range all {
		got, err := s.DeadLetter(ctx, d.ID)
		if err != nil {
			t.Fatalf("DeadLetter(%d): %v", d.ID, err)
		}
		if got.ID != d.ID || !bytes.Equal(got.Data, dls[i].Data) {
			t.Fatalf("DeadLetter(%d) = ID %d data %q; want the %d-th committed", d.ID, got.ID, got.Data, i)
		}
	}
	commit(t, s, &store.Commit{RemoveDeadLetters: []uint64{all[2].ID}})
	if _, err := s.DeadLetter(ctx, all[2].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeadLetter of a removed ID = %v; want ErrNotFound", err)
	}
	if _, err := s.DeadLetter(ctx, all[4].ID+1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeadLetter of an ID not given yet = %v; want ErrNotFound", err)
	}
}

func checkLeases(t *testing.T, s store.Store, clk *clock) {
	l1, err := s.AcquireLease(ctx, "p", "one", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l1.Name != "p" || l1.Holder != "one" || l1.Token == 0 || !l1.Expires.Equal(clk.now().Add(time.Minute)) {
		t.Fatalf("AcquireLease = %+v; want p held by one, a token, expiring in a minute by the store's clock", l1)
	}
	if _, err := s.AcquireLease(ctx, "p", "two", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("second holder: %v; want ErrLeaseHeld", err)
	}
	for _, bad := range []struct {
		holder string
		ttl    time.Duration
	}{{"", time.Minute}, {"three", 0}, {"three", -time.Second}} {
		if _, err := s.AcquireLease(ctx, "fresh", bad.holder, bad.ttl); err == nil {
			t.Fatalf("AcquireLease(holder %q, ttl %v) succeeded; want an error", bad.holder, bad.ttl)
		}
	}
	if other, err := s.AcquireLease(ctx, "q", "two", time.Minute); err != nil || other.Holder != "two" {
		t.Fatalf("another lease name: %+v, %v", other, err)
	}
	clk.advance(30 * time.Second)
	renewed, err := s.AcquireLease(ctx, "p", "one", time.Minute)
	if err != nil || renewed.Token != l1.Token || !renewed.Expires.After(l1.Expires) {
		t.Fatalf("renewal = %+v, %v; want token %d kept and a later expiry", renewed, err, l1.Token)
	}
	// Releasing with a wrong token or holder does nothing.
	if err := s.ReleaseLease(ctx, store.Lease{Name: "p", Holder: "two", Token: renewed.Token}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "p", "two", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("after a release by the wrong holder: %v; want ErrLeaseHeld", err)
	}
	if err := s.ReleaseLease(ctx, renewed); err != nil {
		t.Fatal(err)
	}
	l2, err := s.AcquireLease(ctx, "p", "two", time.Minute)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if l2.Token <= l1.Token {
		t.Fatalf("new holder's token %d not after %d", l2.Token, l1.Token)
	}
	// Expiry, by the store's clock: not a nanosecond early.
	short, err := s.AcquireLease(ctx, "r", "one", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(50*time.Millisecond - time.Microsecond)
	if _, err := s.AcquireLease(ctx, "r", "two", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("just before expiry: %v; want ErrLeaseHeld", err)
	}
	clk.advance(time.Microsecond)
	taken, err := s.AcquireLease(ctx, "r", "two", time.Minute)
	if err != nil || taken.Token <= short.Token || taken.Holder != "two" {
		t.Fatalf("at expiry: %+v, %v; want two with a new token", taken, err)
	}
	// The expired holder coming back gets a new token too, not its old one.
	clk.advance(2 * time.Minute)
	back, err := s.AcquireLease(ctx, "r", "one", time.Minute)
	if err != nil || back.Token <= taken.Token {
		t.Fatalf("old holder after expiry: %+v, %v; want a token after %d", back, err, taken.Token)
	}
}

func checkFence(t *testing.T, s store.Store, clk *clock) {
	old, err := s.AcquireLease(ctx, "p", "one", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, &store.Commit{Lease: &old, Cursors: map[concord.SystemID]connector.Cursor{"a": "1"}})
	clk.advance(time.Second) // "one" pauses past its lease
	next, err := s.AcquireLease(ctx, "p", "two", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Commit(ctx, &store.Commit{Lease: &old, Cursors: map[concord.SystemID]connector.Cursor{"a": "stale"}, States: []store.State{State("k", false, false)}})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("commit under a superseded lease = %v; want ErrStale", err)
	}
	if cur, _ := s.Cursor(ctx, "a"); cur != "1" {
		t.Fatalf("fenced commit moved the cursor to %q", cur)
	}
	if m := load(t, s, "k"); len(m) != 0 {
		t.Fatal("fenced commit stored a state")
	}
	// Same token, other holder: refused as well.
	forged := store.Lease{Name: "p", Holder: "one", Token: next.Token, Expires: next.Expires}
	if err := s.Commit(ctx, &store.Commit{Lease: &forged, Cursors: map[concord.SystemID]connector.Cursor{"a": "x"}}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("commit under the current token by another holder = %v; want ErrStale", err)
	}
	commit(t, s, &store.Commit{Lease: &next, Cursors: map[concord.SystemID]connector.Cursor{"a": "2"}})
	if cur, _ := s.Cursor(ctx, "a"); cur != "2" {
		t.Fatalf("commit under the current lease: cursor %q; want 2", cur)
	}
}

// Several goroutines increment one counter through load-modify-commit with
// retries: no increment is lost.
func checkConcurrent(t *testing.T, s store.Store, _ *clock) {
	commit(t, s, &store.Commit{States: []store.State{{Key: "counter", Data: []byte{0}}}})
	const workers, each = 4, 10
	var wg gosync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for done := 0; done < each; {
				m, err := s.Load(ctx, []string{"counter"})
				if err != nil {
					errs <- err
					return
				}
				c, ok := m["counter"]
				if !ok || len(c.Data) != 1 {
					errs <- fmt.Errorf("Load(counter) = %+v, found %v; want one byte of data", c, ok)
					return
				}
				c.Data = []byte{c.Data[0] + 1}
				switch err := s.Commit(ctx, &store.Commit{States: []store.State{c}}); {
				case err == nil:
					done++
				case !errors.Is(err, store.ErrStale):
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := load(t, s, "counter")["counter"]
	if len(got.Data) != 1 {
		t.Fatalf("counter data %q; want one byte", got.Data)
	}
	if n := got.Data[0]; n != workers*each || got.Rev != workers*each+1 {
		t.Fatalf("counter = %d at Rev %d; want %d at %d (an update was lost)", n, got.Rev, workers*each, workers*each+1)
	}
}

func checkCancelled(t *testing.T, s store.Store, _ *clock) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Load(c, []string{"k"}); err == nil {
		t.Error("Load with a cancelled context succeeded")
	}
	if err := s.Commit(c, &store.Commit{States: []store.State{State("k", false, false)}}); err == nil {
		t.Error("Commit with a cancelled context succeeded")
	}
	if _, err := s.DeadLetter(c, 1); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeadLetter with a cancelled context = %v; want the context's error", err)
	}
	if m := load(t, s, "k"); len(m) != 0 {
		t.Error("a cancelled commit stored a state")
	}
}
