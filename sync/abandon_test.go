package sync_test

import (
	"context"
	"errors"
	"log/slog"
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

// hanging is a connector whose Apply, while hang is open, waits for it to
// close and ignores its context (a connector bug: an HTTP call without
// the context), then applies the patches.
type hanging struct {
	*fake.System
	hang chan struct{}
}

func (c *hanging) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	if c.hang != nil {
		<-c.hang
	}
	return c.System.Apply(ctx, ps)
}

// A connector call that ignores its context cannot hang the engine: once
// the host cancels the cycle (a shutdown), the engine waits AbandonAfter
// for the call, then gives up on it (ErrAbandoned) and finishes the cycle.
// Until the call returns, the system is not called again (the engine never
// calls a connector concurrently with itself): later cycles report it and
// sync the rest. Once it returns, the system syncs again, the abandoned
// write's outcome read back like any write of unknown outcome. Before,
// RunCycle (and Run, and the host's shutdown) waited forever.
func TestACallThatIgnoresItsContextIsAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		crm, base := fake.New("crm"), fake.New("shop")
		shop := &hanging{System: base, hang: make(chan struct{})}
		e, err := recsync.New(recsync.Config{Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop}},
			Resolver: resolve.LastWriterWins(), Store: store.NewMemory(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		crm.Edit("k1", map[string]concord.Value{"name": "Ada"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := e.RunCycle(ctx)
			done <- err
		}()
		synctest.Wait() // the engine waits in the shop's Apply
		cancel()
		err = <-done
		if !errors.Is(err, recsync.ErrAbandoned) || !errors.Is(err, context.Canceled) {
			t.Fatalf("the cancelled cycle: %v; want the write abandoned", err)
		}
		if took := time.Since(start); took != recsync.AbandonAfter {
			t.Errorf("the cancelled cycle took %s; want AbandonAfter, %s", took, recsync.AbandonAfter)
		}

		crm.Edit("k2", map[string]concord.Value{"name": "Bob"})
		_, err = e.RunCycle(context.Background())
		if !errors.Is(err, recsync.ErrAbandoned) {
			t.Fatalf("a cycle while the call still runs: %v; want the shop refused", err)
		}
		if _, ok := base.Record("k2"); ok {
			t.Fatal("the shop was called while its abandoned call still ran")
		}

		close(shop.hang) // the call returns, and applies k1
		synctest.Wait()
		for range 3 {
			if _, err := e.RunCycle(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		for k, want := range map[string]string{"k1": "Ada", "k2": "Bob"} {
			if r, _ := base.Record(k); r.Fields["name"] != want {
				t.Errorf("shop holds %s = %v; want name %s", k, r.Fields, want)
			}
		}
		if dead, err := e.DeadLetters(context.Background()); err != nil || len(dead) > 0 {
			t.Errorf("dead letters %v (%v); want none", dead, err)
		}
	})
}
