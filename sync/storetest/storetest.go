// Package storetest checks a [recsync.Store] against everything the engine
// relies on, as testing/fstest does for file systems:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t testing.TB) recsync.Store {
//			s, err := mystore.Open(...) // a fresh, empty store
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Every store in this module runs it: the in-memory one, the embedded bbolt
// one and the PostgreSQL one.
package storetest

import (
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
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// Run runs every check as a subtest, each against a fresh store from open.
func Run(t *testing.T, open func(t testing.TB) recsync.Store) {
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

var checks = []struct {
	name string
	fn   func(t *testing.T, s recsync.Store)
}{
	{"Actors", checkActors},
	{"Epoch", checkEpoch},
	{"CommitAndLoad", checkCommitAndLoad},
	{"Revisions", checkRevisions},
	{"CommitIsAtomic", checkAtomic},
	{"CopiesNotShared", checkCopies},
	{"PendingAndHeld", checkIndexes},
	{"DeadLetters", checkDeadLetters},
	{"Leases", checkLeases},
	{"FencedCommit", checkFence},
	{"ConcurrentCommits", checkConcurrent},
	{"CancelledContext", checkCancelled},
}

var ctx = context.Background()

func v(dots ...uint64) concord.Version {
	var ds []concord.Dot
	for i := 0; i+1 < len(dots); i += 2 {
		ds = append(ds, concord.Dot{Actor: concord.Actor(dots[i]), Counter: dots[i+1]})
	}
	return concord.MustVersion(ds...)
}

// State returns a record state with every kind of content the engine
// stores: typed values, units with history, a hold, and system views. If
// pending, one system has not received the record yet.
func State(key string, pending, held bool) *recsync.RecordState {
	at := time.Date(2026, 5, 1, 12, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	st := &recsync.RecordState{
		Key: key,
		Fields: map[string]concord.Value{
			"name": "Ada", "n": int64(3), "price": 19.99, "ok": true, "none": nil, "at": at,
			"tags": []any{"a", int64(1)}, "meta": map[string]any{"x": "y"},
		},
		Units: map[string]*recsync.UnitState{
			resolve.RecordUnit: {Version: v(1, 1, 2, 1), Winner: "a", Rule: "equal-values", Changed: at, Modified: at},
			"name":             {Version: v(1, 2), Winner: "a", Rule: "fast-forward", Prev: map[string]concord.Value{"name": "Ad"}, PrevVersion: v(1, 1)},
		},
		Systems: map[concord.SystemID]*recsync.SystemView{
			"a": {Seen: true, Tag: "7", Modified: at, Units: map[string]recsync.HeldUnit{resolve.RecordUnit: {Hash: 1, Version: v(1, 1, 2, 1)}, "name": {Hash: 42, Version: v(1, 2)}},
				Native: map[string]uint64{"name": 99}},
			"b": {Seen: !pending, Units: map[string]recsync.HeldUnit{resolve.RecordUnit: {Hash: 1, Version: v(1, 1, 2, 1)}, "name": {Hash: 42, Version: v(1, 2)}},
				Native: map[string]uint64{}},
		},
	}
	if held {
		st.Units["phone"] = &recsync.UnitState{Hold: &recsync.Hold{
			Candidates: []resolve.Candidate{
				{System: "a", Values: map[string]concord.Value{"phone": "1"}, Version: v(1, 3)},
				{System: "b", Values: map[string]concord.Value{"phone": "2"}, Version: v(2, 2)},
			},
			BaseKnown: true, Base: map[string]concord.Value{"phone": "0"}, Rule: "hold", Reason: "a person decides", Since: at,
		}}
	}
	return st
}

// cmpState compares states by meaning: values by concord.EqualValues,
// versions by Compare, times as instants.
var cmpState = cmp.Options{
	cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b map[string]concord.Value) bool {
		return (a == nil) == (b == nil) && concord.EqualValues(a, b) && sameTypes(a, b)
	}),
}

// sameTypes checks that times stayed times (a store that turns them into
// strings would make every stored time look edited).
func sameTypes(a, b map[string]concord.Value) bool {
	for k, x := range a {
		if _, ok := x.(time.Time); ok {
			if _, ok := b[k].(time.Time); !ok {
				return false
			}
		}
	}
	return true
}

func commit(t *testing.T, s recsync.Store, c *recsync.Commit) {
	t.Helper()
	if err := s.Commit(ctx, c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func load(t *testing.T, s recsync.Store, keys ...string) map[string]*recsync.RecordState {
	t.Helper()
	m, err := s.Load(ctx, keys)
	if err != nil {
		t.Fatalf("Load(%q): %v", keys, err)
	}
	return m
}

func checkActors(t *testing.T, s recsync.Store) {
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.Actor(ctx, "system/racing")
		}()
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
}

func checkEpoch(t *testing.T, s recsync.Store) {
	e1, err := s.Epoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e2, _ := s.Epoch(ctx); e2 != e1 {
		t.Fatalf("Epoch changed by itself: %d then %d", e1, e2)
	}
	n, err := s.NewEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n == e1 {
		t.Fatalf("NewEpoch = %d, the old epoch", n)
	}
	if e3, _ := s.Epoch(ctx); e3 != n {
		t.Fatalf("Epoch after NewEpoch = %d; want %d", e3, n)
	}
}

func checkCommitAndLoad(t *testing.T, s recsync.Store) {
	if cur, err := s.Cursor(ctx, "a"); err != nil || cur != "" {
		t.Fatalf("Cursor of a new store = %q, %v; want empty", cur, err)
	}
	if m := load(t, s, "nope"); len(m) != 0 {
		t.Fatalf("Load of a missing key = %v; want nothing", m)
	}
	st := State("k1", true, true)
	want := State("k1", true, true)
	commit(t, s, &recsync.Commit{Cursors: map[concord.SystemID]connector.Cursor{"a": "c-1", "b": "c-9"}, States: []*recsync.RecordState{st}})
	want.Rev = 1
	if st.Rev != 1 {
		t.Fatalf("after Commit the given state has Rev %d; want 1", st.Rev)
	}
	got := load(t, s, "k1", "missing")
	if len(got) != 1 {
		t.Fatalf("Load = %d states; want 1", len(got))
	}
	if diff := cmp.Diff(want, got["k1"], cmpState); diff != "" {
		t.Fatalf("loaded state (-want +got):\n%s", diff)
	}
	for sys, wantCur := range map[concord.SystemID]connector.Cursor{"a": "c-1", "b": "c-9", "c": ""} {
		if cur, err := s.Cursor(ctx, sys); err != nil || cur != wantCur {
			t.Fatalf("Cursor(%s) = %q, %v; want %q", sys, cur, err, wantCur)
		}
	}
}

func checkRevisions(t *testing.T, s recsync.Store) {
	st := State("k", false, false)
	commit(t, s, &recsync.Commit{States: []*recsync.RecordState{st}})
	st.Fields["name"] = "Grace"
	commit(t, s, &recsync.Commit{States: []*recsync.RecordState{st}})
	if st.Rev != 2 {
		t.Fatalf("Rev after two commits = %d; want 2", st.Rev)
	}
	stale := State("k", false, false)
	stale.Rev = 1
	err := s.Commit(ctx, &recsync.Commit{States: []*recsync.RecordState{stale}})
	if !errors.Is(err, recsync.ErrStale) {
		t.Fatalf("Commit at an old Rev = %v; want ErrStale", err)
	}
	fresh := State("k", false, false) // Rev 0: "new", but it exists
	if err := s.Commit(ctx, &recsync.Commit{States: []*recsync.RecordState{fresh}}); !errors.Is(err, recsync.ErrStale) {
		t.Fatalf("Commit of an existing key as new = %v; want ErrStale", err)
	}
	if got := load(t, s, "k")["k"]; got.Rev != 2 || got.Fields["name"] != "Grace" {
		t.Fatalf("after refused commits: Rev %d name %v; want 2 Grace", got.Rev, got.Fields["name"])
	}
}

func checkAtomic(t *testing.T, s recsync.Store) {
	base := State("exists", false, false)
	commit(t, s, &recsync.Commit{States: []*recsync.RecordState{base}, Cursors: map[concord.SystemID]connector.Cursor{"a": "1"}})
	stale := State("exists", false, false) // Rev 0, but stored at 1
	err := s.Commit(ctx, &recsync.Commit{
		Cursors:     map[concord.SystemID]connector.Cursor{"a": "2"},
		States:      []*recsync.RecordState{State("new1", true, false), stale, State("new2", false, true)},
		DeadLetters: []recsync.DeadLetter{{System: "a", Key: "bad", Reason: "r"}},
	})
	if !errors.Is(err, recsync.ErrStale) {
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
}

func checkCopies(t *testing.T, s recsync.Store) {
	st := State("k", false, false)
	commit(t, s, &recsync.Commit{States: []*recsync.RecordState{st}})
	// Changing what was committed, or what was loaded, changes nothing
	// stored.
	st.Fields["name"] = "changed after commit"
	st.Systems["a"].Native["name"] = 1
	got := load(t, s, "k")["k"]
	got.Fields["name"] = "changed after load"
	got.Units["name"].Winner = "x"
	again := load(t, s, "k")["k"]
	if again.Fields["name"] != "Ada" || again.Units["name"].Winner != "a" || again.Systems["a"].Native["name"] != 99 {
		t.Fatalf("stored state shares memory with a caller: name %v winner %v native %v",
			again.Fields["name"], again.Units["name"].Winner, again.Systems["a"].Native["name"])
	}
}

func checkIndexes(t *testing.T, s recsync.Store) {
	var states []*recsync.RecordState
	for i := range 5 {
		states = append(states, State(fmt.Sprintf("k%d", 4-i), i%2 == 0, i == 1 || i == 4))
	}
	commit(t, s, &recsync.Commit{States: states})
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
	h, err := s.Held(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"k0", "k3"}, h); diff != "" {
		t.Fatalf("Held (-want +got):\n%s", diff)
	}
	// Once delivered and settled, they leave the indexes.
	m := load(t, s, "k0")
	k0 := m["k0"]
	k0.Systems["b"].Seen = true
	delete(k0.Units, "phone")
	commit(t, s, &recsync.Commit{States: []*recsync.RecordState{k0}})
	if p, _ := s.Pending(ctx, 10); slices.Contains(p, "k0") {
		t.Fatalf("Pending still has k0: %v", p)
	}
	if h, _ := s.Held(ctx); slices.Contains(h, "k0") {
		t.Fatalf("Held still has k0: %v", h)
	}
}

func checkDeadLetters(t *testing.T, s recsync.Store) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	want := []recsync.DeadLetter{
		{System: "a", Key: "k1", Inbound: true, Record: concord.Record{Key: "k1", Fields: map[string]concord.Value{"n": "x", "at": at}, Tag: "3"}, Reason: "bad", Class: "invalid", When: at},
		{System: "b", Key: "", Inbound: true, Record: concord.Record{Fields: map[string]concord.Value{"n": 1.5}}, Reason: "no key", Class: "invalid", When: at.Add(time.Second)},
	}
	commit(t, s, &recsync.Commit{DeadLetters: want[:1]})
	commit(t, s, &recsync.Commit{DeadLetters: want[1:]})
	got, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID == 0 || got[1].ID <= got[0].ID {
		t.Fatalf("dead letter IDs %+v; want increasing, from 1", got)
	}
	want[0].ID, want[1].ID = got[0].ID, got[1].ID
	if diff := cmp.Diff(want, got, cmpState); diff != "" {
		t.Fatalf("dead letters, oldest first (-want +got):\n%s", diff)
	}
	// Settling one removes it in the same commit that adds another; a
	// second removal of the same ID is harmless; IDs are never reused.
	third := recsync.DeadLetter{System: "a", Key: "k3", Reason: "r", When: at}
	commit(t, s, &recsync.Commit{DeadLetters: []recsync.DeadLetter{third}, RemoveDeadLetters: []uint64{got[0].ID}})
	commit(t, s, &recsync.Commit{RemoveDeadLetters: []uint64{got[0].ID}})
	after, err := s.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || after[0].ID != got[1].ID || after[1].Key != "k3" || after[1].ID <= got[1].ID {
		t.Fatalf("after settling the first: %+v", after)
	}
}

func checkLeases(t *testing.T, s recsync.Store) {
	l1, err := s.AcquireLease(ctx, "p", "one", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "p", "two", time.Minute); !errors.Is(err, recsync.ErrLeaseHeld) {
		t.Fatalf("second holder: %v; want ErrLeaseHeld", err)
	}
	if other, err := s.AcquireLease(ctx, "q", "two", time.Minute); err != nil || other.Holder != "two" {
		t.Fatalf("another lease name: %+v, %v", other, err)
	}
	renewed, err := s.AcquireLease(ctx, "p", "one", time.Minute)
	if err != nil || renewed.Token != l1.Token {
		t.Fatalf("renewal = %+v, %v; want token %d kept", renewed, err, l1.Token)
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
	// Expiry: a short lease lapses and may be taken over.
	short, err := s.AcquireLease(ctx, "r", "one", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond)
	taken, err := s.AcquireLease(ctx, "r", "two", time.Minute)
	if err != nil || taken.Token <= short.Token {
		t.Fatalf("after expiry: %+v, %v; want a new token", taken, err)
	}
}

func checkFence(t *testing.T, s recsync.Store) {
	old, err := s.AcquireLease(ctx, "p", "one", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, &recsync.Commit{Lease: &old, Cursors: map[concord.SystemID]connector.Cursor{"a": "1"}})
	time.Sleep(120 * time.Millisecond) // "one" pauses past its lease
	if _, err := s.AcquireLease(ctx, "p", "two", time.Minute); err != nil {
		t.Fatal(err)
	}
	err = s.Commit(ctx, &recsync.Commit{Lease: &old, Cursors: map[concord.SystemID]connector.Cursor{"a": "stale"}, States: []*recsync.RecordState{State("k", false, false)}})
	if !errors.Is(err, recsync.ErrStale) {
		t.Fatalf("commit under a superseded lease = %v; want ErrStale", err)
	}
	if cur, _ := s.Cursor(ctx, "a"); cur != "1" {
		t.Fatalf("fenced commit moved the cursor to %q", cur)
	}
}

// Several goroutines increment one counter through load-modify-commit with
// retries: no increment is lost.
func checkConcurrent(t *testing.T, s recsync.Store) {
	st := State("counter", false, false)
	st.Fields["n"] = int64(0)
	commit(t, s, &recsync.Commit{States: []*recsync.RecordState{st}})
	const workers, each = 4, 10
	var wg gosync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < each; {
				m, err := s.Load(ctx, []string{"counter"})
				if err != nil {
					errs <- err
					return
				}
				c := m["counter"]
				n, _ := c.Fields["n"].(int64)
				c.Fields["n"] = n + 1
				switch err := s.Commit(ctx, &recsync.Commit{States: []*recsync.RecordState{c}}); {
				case err == nil:
					done++
				case !errors.Is(err, recsync.ErrStale):
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := load(t, s, "counter")["counter"].Fields["n"]; !concord.EqualValues(n, workers*each) {
		t.Fatalf("counter = %v; want %d (an update was lost)", n, workers*each)
	}
}

func checkCancelled(t *testing.T, s recsync.Store) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Load(c, []string{"k"}); err == nil {
		t.Error("Load with a cancelled context succeeded")
	}
	if err := s.Commit(c, &recsync.Commit{States: []*recsync.RecordState{State("k", false, false)}}); err == nil {
		t.Error("Commit with a cancelled context succeeded")
	}
	if m := load(t, s, "k"); len(m) != 0 {
		t.Error("a cancelled commit stored a state")
	}
}
