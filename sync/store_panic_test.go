package sync_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// panickyStore is a memory store whose Cursor panics when cursor is set,
// and whose AcquireLease panics from its second call on when lease is set.
type panickyStore struct {
	*store.Memory
	cursor, lease bool
	calls         int
}

func (s *panickyStore) Cursor(ctx context.Context, id concord.SystemID) (connector.Cursor, error) {
	if s.cursor {
		panic("store bug: Cursor")
	}
	return s.Memory.Cursor(ctx, id)
}

func (s *panickyStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if s.calls++; s.lease && s.calls > 1 {
		panic("store bug: AcquireLease")
	}
	return s.Memory.AcquireLease(ctx, name, holder, ttl)
}

// The engine calls its store from goroutines of its own too (each system's
// cursor as it reads, the lease's confirmation as it writes): a store that
// panics there fails the cycle or the write, as a panicking connector does,
// and never crashes the host.
func TestAStoreThatPanicsOnTheEnginesGoroutines(t *testing.T) {
	for _, where := range []string{"Cursor", "AcquireLease"} {
		t.Run(where, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const ttl = time.Minute
				crm, shop := fake.New("crm"), fake.New("shop")
				st := &panickyStore{Memory: store.NewMemory(store.WithClock(time.Now)), cursor: where == "Cursor", lease: where == "AcquireLease"}
				e := leaseEngine(t, st, ttl, "a", crm, slowConn{shop, ttl / 3})
				for i := range 2 {
					crm.Edit(fmt.Sprintf("k%d", i), map[string]concord.Value{"name": "v1"})
				}
				rep, err := e.RunCycle(context.Background())
				switch where {
				case "Cursor":
					if !errors.Is(err, recsync.ErrPanic) {
						t.Errorf("cycle over a store whose Cursor panics: %v; want ErrPanic", err)
					}
				case "AcquireLease":
					n := 0
					for _, f := range rep.Failures {
						if errors.Is(f.Err, recsync.ErrLeaseLost) && errors.Is(f.Err, recsync.ErrPanic) {
							n++
						}
					}
					if n != 1 || len(shop.Records()) != 1 {
						t.Errorf("failures %v, shop holds %d; want the second write not sent (ErrLeaseLost, ErrPanic)", rep.Failures, len(shop.Records()))
					}
				}
			})
		})
	}
}
