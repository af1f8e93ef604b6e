package storetest_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/storetest"
)

// countingStore is a store someone wrote outside this module: it counts
// commits for a dashboard and leaves the rest to the store it wraps. Small
// as it is, it must keep every promise of the Store contract, and
// storetest says whether it does.
type countingStore struct {
	store.Store
	commits atomic.Int64
}

func (s *countingStore) Commit(ctx context.Context, c *store.Commit) error {
	if err := s.Store.Commit(ctx, c); err != nil {
		return err
	}
	s.commits.Add(1)
	return nil
}

// open returns a fresh, empty store for one check, taking leases by the
// suite's clock. A store over a database would create a scratch schema here
// and drop it in t.Cleanup.
func open(_ testing.TB, now func() time.Time) store.Store {
	return &countingStore{Store: store.NewMemory(store.WithClock(now))}
}

// A store author runs the whole suite from one test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, open)
//	}
//
// (TestExampleStore in this file does exactly that.) Each check opens a
// fresh store and drives it as the engine does; storetest.State builds the
// opaque states it commits.
func ExampleRun() {
	s := open(nil, time.Now).(*countingStore) // the suite passes the check's t and its clock
	ctx := context.Background()
	st := storetest.State("c1", true, false) // pending: one system has not received it
	if err := s.Commit(ctx, &store.Commit{States: []store.State{st}}); err != nil {
		panic(err)
	}
	got, err := s.Load(ctx, []string{"c1", "c2"})
	if err != nil {
		panic(err)
	}
	pending, err := s.Pending(ctx, 10)
	if err != nil {
		panic(err)
	}
	fmt.Println("loaded:", len(got), "revision:", got["c1"].Rev, "pending:", pending, "commits:", s.commits.Load())
	// Output:
	// loaded: 1 revision: 1 pending: [c1] commits: 1
}

func TestExampleStore(t *testing.T) {
	storetest.Run(t, open)
}
