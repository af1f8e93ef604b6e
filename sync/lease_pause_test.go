package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// pausingConn is a connector whose next Apply, once armed, waits until
// released: a process paused (a GC pause, a stopped VM, a long wait for a
// rate limit) with a write in flight. The write reaches the system before
// the pause (its reply is what waits) or, with late, after it.
type pausingConn struct {
	*fake.System
	armed, late bool
	paused      chan struct{} // closed when the armed Apply starts waiting
	release     chan struct{}
}

func (c *pausingConn) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	if !c.armed {
		return c.System.Apply(ctx, ps)
	}
	c.armed = false
	var res []connector.Result
	var err error
	if !c.late {
		res, err = c.System.Apply(ctx, ps)
	}
	close(c.paused)
	<-c.release
	if c.late {
		res, err = c.System.Apply(ctx, ps)
	}
	return res, err
}

// An instance that pauses past its lease in the middle of its writes must
// not undo what its successor did meanwhile: the successor syncs a newer
// edit of a record the paused instance still has to write, with the value
// that edit replaced. The paused instance must not send it: a system
// without conditional writes would take it over the newer value, and the
// engine would then see a later edit there and spread the old value
// everywhere (the person's last edit lost). A write already in flight
// that lands late is refused by its stale tag where the system has
// conditional writes (late); where it has none that is a limit of the
// engine (README, "One lease per pipeline").
func TestAnInstancePausedPastItsLeaseLosesNoEdit(t *testing.T) {
	for _, c := range []struct{ tagless, late bool }{{false, false}, {true, false}, {false, true}} {
		t.Run(fmt.Sprintf("tagless=%v/late=%v", c.tagless, c.late), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { pausedPastLease(t, c.tagless, c.late) })
		})
	}
}

// leaseInstances returns a constructor of engine instances that share one
// memory store (leases by the bubble's clock) and sync crm with a shop
// reached through the given connector, one record per write.
func leaseInstances(t *testing.T, ttl time.Duration, crm *fake.System) func(name string, shop connector.Connector) *recsync.Engine {
	st := store.NewMemory(store.WithClock(time.Now))
	return func(name string, shop connector.Connector) *recsync.Engine {
		return leaseEngine(t, st, ttl, name, crm, shop)
	}
}

// leaseEngine returns the engine instance name on st, syncing crm with a
// shop reached through the given connector, one record per write.
func leaseEngine(t *testing.T, st store.Store, ttl time.Duration, name string, crm, shop connector.Connector) *recsync.Engine {
	e, err := recsync.New(recsync.Config{
		Systems:  []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop, BatchSize: 1}},
		Resolver: resolve.LastWriterWins(), Store: st, LeaseTTL: ttl, Instance: name,
		Retry: recsync.RetryPolicy{MaxAttempts: 1}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func pausedPastLease(t *testing.T, tagless, late bool) {
	const ttl = time.Minute
	ctx := context.Background()
	var shopOpts []fake.Option
	if tagless {
		shopOpts = append(shopOpts, fake.WithoutTags())
	}
	crm, shop := fake.New("crm"), fake.New("shop", shopOpts...)
	instance := leaseInstances(t, ttl, crm)
	paused := &pausingConn{System: shop, late: late, paused: make(chan struct{}), release: make(chan struct{})}
	a, b := instance("a", paused), instance("b", shop)
	name := func(v string) map[string]concord.Value { return map[string]concord.Value{"name": v} }

	crm.Edit("k1", name("v1"))
	crm.Edit("k2", name("v1"))
	for range 3 {
		if _, err := a.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	crm.Edit("k1", name("v2"))
	crm.Edit("k2", name("v2"))
	paused.armed = true
	done := make(chan *recsync.Report, 1)
	go func() {
		rep, _ := a.RunCycle(ctx) // its commit fails: the lease is another's
		done <- rep
	}()
	<-paused.paused     // a is writing k1 to shop, k2 next
	time.Sleep(2 * ttl) // a's lease lapses

	crm.Edit("k2", name("v3"))
	if _, err := b.RunCycle(ctx); err != nil {
		t.Fatalf("the successor's cycle: %v", err)
	}
	if got, _ := shop.Record("k2"); got.Fields["name"] != "v3" {
		t.Fatalf("after the successor's cycle shop holds k2 = %v; want v3", got.Fields["name"])
	}
	close(paused.release)
	rep := <-done
	if lost := slices.ContainsFunc(rep.Failures, func(f recsync.Failure) bool {
		return f.System == "shop" && f.Key == "k2" && errors.Is(f.Err, recsync.ErrLeaseLost)
	}); !late && !lost {
		t.Errorf("the paused instance's failures: %v; want its write of k2 not sent (ErrLeaseLost)", rep.Failures)
	}
	if got, _ := shop.Record("k2"); !late && got.Fields["name"] != "v3" {
		t.Errorf("after the paused instance resumed shop holds k2 = %v; want v3 (its stale write not sent)", got.Fields["name"])
	}

	time.Sleep(time.Second)
	for range 5 {
		if _, err := b.RunCycle(ctx); err != nil {
			t.Fatalf("a later cycle: %v", err)
		}
	}
	want := map[string]string{"k1": "v2", "k2": "v3"}
	for _, s := range []*fake.System{crm, shop} {
		for k, v := range want {
			if got, _ := s.Record(k); got.Fields["name"] != v {
				t.Errorf("%s holds %s = %v; want the person's last edit, %s", s.Name(), k, got.Fields["name"], v)
			}
		}
	}
}

// slowConn is a connector each of whose Apply calls takes d (a slow or
// rate-limited system).
type slowConn struct {
	*fake.System
	d time.Duration
}

func (c slowConn) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	time.Sleep(c.d)
	return c.System.Apply(ctx, ps)
}

// A cycle whose writes take longer than the lease's TTL keeps its lease
// (confirmed, and renewed in its second half, before each write): no other
// instance runs meanwhile, and every write is sent.
func TestALongPushKeepsItsLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = time.Minute
		ctx := context.Background()
		crm, shop := fake.New("crm"), fake.New("shop")
		instance := leaseInstances(t, ttl, crm)
		a, b := instance("a", slowConn{shop, ttl / 3}), instance("b", shop)
		const n = 7 // 7 × ttl/3: the push outlasts two TTLs
		for i := range n {
			crm.Edit(fmt.Sprintf("k%d", i), map[string]concord.Value{"name": "v1"})
		}
		type result struct {
			rep *recsync.Report
			err error
		}
		done := make(chan result, 1)
		go func() {
			rep, err := a.RunCycle(ctx)
			done <- result{rep, err}
		}()
		// b tries halfway through each of a's writes, never at the
		// instant one ends: at the end of the last, a's cycle may end and
		// give the lease back before b runs (the bubble wakes goroutines
		// due at one instant in any order).
		time.Sleep(ttl / 6)
		for i := range n {
			if i > 0 {
				time.Sleep(ttl / 3)
			}
			if _, err := b.RunCycle(ctx); !errors.Is(err, store.ErrLeaseHeld) {
				t.Errorf("another instance's cycle during the push: %v; want ErrLeaseHeld", err)
				break
			}
		}
		r := <-done
		if r.err != nil {
			t.Fatalf("the long cycle: %v", r.err)
		}
		if w := r.rep.Systems["shop"].Writes; w != n || len(shop.Records()) != n {
			t.Errorf("the long cycle wrote %d records (shop holds %d); want %d", w, len(shop.Records()), n)
		}
	})
}

// leaseFailingStore is a memory store whose AcquireLease fails from the
// second call on: the store cannot be reached to confirm the lease.
type leaseFailingStore struct {
	*store.Memory
	calls int
}

func (s *leaseFailingStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if s.calls++; s.calls > 1 {
		return store.Lease{}, errors.New("store unreachable")
	}
	return s.Memory.AcquireLease(ctx, name, holder, ttl)
}

// A cycle that cannot confirm its lease before a write (the store is
// unreachable) sends no more writes: it cannot know that no other instance
// runs. The writes it did not send fail with ErrLeaseLost, are not counted
// as the records' failed attempts, and go out with the next cycle.
func TestAWriteWaitsForALeaseItCannotConfirm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = time.Minute
		ctx := context.Background()
		crm, shop := fake.New("crm"), fake.New("shop")
		st := &leaseFailingStore{Memory: store.NewMemory(store.WithClock(time.Now))}
		e := leaseEngine(t, st, ttl, "a", crm, slowConn{shop, ttl / 3})
		for i := range 3 {
			crm.Edit(fmt.Sprintf("k%d", i), map[string]concord.Value{"name": "v1"})
		}
		rep, err := e.RunCycle(ctx)
		if err == nil {
			t.Fatal("the cycle succeeded; want its unsent writes reported")
		}
		// k0 goes out at once and takes ttl/3; before k1 a quarter of
		// the TTL has passed: the confirmation fails, and neither k1
		// nor k2 is sent.
		if got := len(shop.Records()); got != 1 {
			t.Errorf("shop holds %d records; want 1 (the other writes wait for a lease the cycle can confirm)", got)
		}
		lost := 0
		for _, f := range rep.Failures {
			if errors.Is(f.Err, recsync.ErrLeaseLost) {
				lost++
			}
		}
		if lost != 2 || rep.Systems["shop"].Writes != 1 {
			t.Errorf("failures %v, %d writes; want two writes failed with ErrLeaseLost and one sent", rep.Failures, rep.Systems["shop"].Writes)
		}
		x, err := e.Explain(ctx, "k1", "name")
		if err != nil {
			t.Fatal(err)
		}
		for _, se := range x.Systems {
			if se.Attempts != 0 {
				t.Errorf("%s: %d failed attempts recorded (%s); want none: the write was not sent", se.System, se.Attempts, se.LastError)
			}
		}
		st.calls = -100 // the store is back
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatalf("the next cycle: %v", err)
		}
		if got := len(shop.Records()); got != 3 {
			t.Errorf("after the next cycle shop holds %d records; want 3", got)
		}
	})
}

// pausingStore is a store whose next write-ahead commit (a commit without
// cursors), once armed, waits until released: a process paused before it
// could store what its cycle planned.
type pausingStore struct {
	store.Store
	armed   bool
	paused  chan struct{}
	release chan struct{}
}

func (s *pausingStore) Commit(ctx context.Context, c *store.Commit) error {
	if s.armed && len(c.Cursors) == 0 {
		s.armed = false
		close(s.paused)
		<-s.release
	}
	return s.Store.Commit(ctx, c)
}

// A process paused before its write-ahead commit loses its lease, and the
// commit fails (ErrStale): nothing of it is stored. Its successor plans the
// same write, stores it as attempted (the same revision the paused
// process's commit would have made), sends it, and its final commit fails.
// The paused process must not take that state for its own and forget the
// attempt as one it never sent: the write was applied, and the shop's
// person then set the value back, which the shop's field times tell from
// the write never landing only while the attempt is known. Forgotten, the
// set-back read as the value the shop held all along, and the write was
// sent again over the person's edit.
func TestAProcessThatLostItsLeaseDoesNotForgetItsSuccessorsWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := store.NewMemory(store.WithClock(time.Now))
		ps := &pausingStore{Store: base, paused: make(chan struct{}), release: make(chan struct{})}
		setBackAfterTheOthersWrite(t, base, ps, func(ctx context.Context, a, b *recsync.Engine) {
			ps.armed = true
			done := make(chan error, 1)
			go func() {
				_, err := a.RunCycle(ctx) // its write-ahead commit fails: the lease is another's
				done <- err
			}()
			<-ps.paused
			time.Sleep(2 * time.Minute) // a's lease lapses
			b.RunCycle(ctx)
			close(ps.release)
			if err := <-done; !errors.Is(err, store.ErrStale) {
				t.Fatalf("the paused process's cycle: %v; want its write-ahead commit refused (store.ErrStale)", err)
			}
		})
	})
}

// setBackAfterTheOthersWrite syncs k = v1 from crm to a shop with field
// times through process a (on aStore, over base), edits k to v2 in crm and
// calls interleave, which runs a's cycle and b's: a's fails before its
// write-ahead commit is stored, b's writes v2 to the shop and fails its
// final commit. Then the shop's person sets k back to v1 and a runs on:
// both systems must end with v1, the person's last edit.
func setBackAfterTheOthersWrite(t *testing.T, base, aStore store.Store, interleave func(ctx context.Context, a, b *recsync.Engine)) {
	const ttl = time.Minute
	ctx := context.Background()
	crm, shop := fake.New("crm"), fake.New("shop", fake.WithFieldTimes())
	a := leaseEngine(t, aStore, ttl, "a", crm, shop)
	ff := &failFinal{Store: base}
	b := leaseEngine(t, ff, ttl, "b", crm, shop)
	name := func(v string) map[string]concord.Value { return map[string]concord.Value{"name": v} }

	crm.Edit("k", name("v1"))
	for range 3 {
		if _, err := a.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	crm.Edit("k", name("v2"))
	ff.fail = true
	interleave(ctx, a, b)
	if ff.fail {
		t.Fatal("the other process's final commit did not fail")
	}
	if got, _ := shop.Record("k"); got.Fields["name"] != "v2" {
		t.Fatalf("the other process's write: shop holds %v, want v2", got.Fields["name"])
	}

	time.Sleep(time.Second)
	shop.Edit("k", name("v1")) // set back after the write, by the shop's person
	time.Sleep(time.Second)
	for range 4 {
		if _, err := a.RunCycle(ctx); err != nil {
			t.Fatalf("a later cycle: %v", err)
		}
	}
	for _, s := range []*fake.System{crm, shop} {
		if got, _ := s.Record("k"); got.Fields["name"] != "v1" {
			t.Errorf("%s holds k = %v; want the shop person's last edit, v1", s.Name(), got.Fields["name"])
		}
	}
}

// failingWriteAhead is a store whose next write-ahead commit, once armed,
// fails without effect: the store could not be reached.
type failingWriteAhead struct {
	store.Store
	armed bool
}

func (s *failingWriteAhead) Commit(ctx context.Context, c *store.Commit) error {
	if s.armed && len(c.Cursors) == 0 {
		s.armed = false
		return errors.New("the store cannot be reached")
	}
	return s.Store.Commit(ctx, c)
}

// The same without a pause: a process's write-ahead commit fails (the
// store cannot be reached, and whether it took effect is not known), the
// other process runs next, plans the same write, stores it as attempted at
// the revision the failed commit would have made, sends it, and fails its
// final commit. The first process must not take that state for the one its
// own commit would have stored: the attempts are the successor's, sent.
func TestAProcessDoesNotTakeAnotherProcesssStateForItsFailedCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := store.NewMemory(store.WithClock(time.Now))
		fa := &failingWriteAhead{Store: base}
		setBackAfterTheOthersWrite(t, base, fa, func(ctx context.Context, a, b *recsync.Engine) {
			fa.armed = true
			if _, err := a.RunCycle(ctx); err == nil {
				t.Fatal("the first process's write-ahead commit did not fail")
			}
			b.RunCycle(ctx)
		})
	})
}
