package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// replyLostStore stores the commit numbered lose (counting from 1), then
// reports it failed: the reply was lost. The commit numbered fail fails
// without effect.
type replyLostStore struct {
	*store.Memory
	commits, lose, fail int
}

func (s *replyLostStore) Commit(ctx context.Context, c *store.Commit) error {
	if s.commits++; s.commits == s.fail {
		return errors.New("connection refused: the commit was not stored")
	}
	if err := s.Memory.Commit(ctx, c); err != nil {
		return err
	}
	if s.commits == s.lose {
		return errors.New("connection reset: the commit's reply was lost")
	}
	return nil
}

// A cycle whose write-ahead commit was stored, its reply lost, sent none of
// the writes it had noted as attempted. Stored, they read as writes of
// unknown outcome, and a record the shop's person then created would be
// taken for the engine's own create (its echo). The engine, still running,
// knows they were never sent: its next cycle forgets them, and reads the
// person's record as the shop's create. If that cycle's own commit fails
// (again), the engine still knows, and the cycle after it forgets them.
func TestWritesNeverSentAreForgottenAfterALostCommitReply(t *testing.T) {
	for _, failNext := range []bool{false, true} {
		t.Run(fmt.Sprintf("next commit fails=%v", failNext), func(t *testing.T) { neverSentForgotten(t, failNext) })
	}
}

func neverSentForgotten(t *testing.T, failNext bool) {
	ctx := context.Background()
	crm, shop := fake.New("crm"), fake.New("shop")
	st := &replyLostStore{Memory: store.NewMemory(), lose: 1}
	if failNext {
		st.fail = 2 // the next cycle's write-ahead commit
	}
	rec := audittest.New()
	e, err := recsync.New(recsync.Config{
		Systems:  []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop}},
		Resolver: resolve.LastWriterWins(), Store: st, Audit: rec, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	crm.Edit("k", map[string]concord.Value{"name": "Ada"})
	if _, err := e.RunCycle(ctx); err == nil {
		t.Fatal("the cycle whose write-ahead commit's reply was lost succeeded")
	}
	if n := len(shop.Records()); n != 0 {
		t.Fatalf("shop holds %d records; want none (nothing sent after the failed write-ahead commit)", n)
	}
	shop.Edit("k", map[string]concord.Value{"amount": int64(7)}) // the shop's person creates k
	if failNext {
		if _, err := e.RunCycle(ctx); err == nil {
			t.Fatal("the cycle whose commit failed succeeded")
		}
	}
	rec.Reset()
	if _, err := e.RunCycle(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rec.Events(), func(ev audit.Event) bool {
		return ev.Kind == audit.EditObserved && ev.System == "shop" && ev.Key == "k" && ev.Unit == resolve.RecordUnit
	}) {
		t.Errorf("the shop's create of k was not observed (taken for the engine's own create, never sent); events: %v", rec.Events())
	}
	for range 2 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*fake.System{crm, shop} {
		if r, _ := s.Record("k"); r.Fields["name"] != "Ada" || r.Fields["amount"] != int64(7) {
			t.Errorf("%s holds %v; want name Ada and amount 7", s.Name(), r.Fields)
		}
	}
}

// A cycle whose writes all succeeded, but whose final commit failed, knows
// what the systems applied; stored, its write-ahead commit says only that
// the writes were attempted. A person in the shop (no tags) then sets the
// value back to the one before the write: unless the engine remembers that
// the shop applied the write, the shop's value reads as the write never
// having landed, and the next cycle writes it again over the person's edit.
func TestWriteOutcomesSurviveAFailedCommit(t *testing.T) {
	for _, lose := range []bool{false, true} {
		name := "commit failed"
		if lose {
			name = "commit stored, reply lost"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			crm, shop := fake.New("crm"), fake.New("shop", fake.WithoutTags())
			st := &replyLostStore{Memory: store.NewMemory()}
			e, err := recsync.New(recsync.Config{
				Systems:  []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop}},
				Resolver: resolve.LastWriterWins(), Store: st, Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			crm.Edit("k", map[string]concord.Value{"city": "Paris"})
			for range 2 {
				if _, err := e.RunCycle(ctx); err != nil {
					t.Fatal(err)
				}
			}
			crm.Edit("k", map[string]concord.Value{"city": "Lyon"})
			// The next cycle commits ahead (1), writes Lyon to the
			// shop, and its final commit (2) fails.
			if lose {
				st.commits, st.lose = 0, 2
			} else {
				st.commits, st.fail = 0, 2
			}
			if _, err := e.RunCycle(ctx); err == nil {
				t.Fatal("the cycle whose final commit failed succeeded")
			}
			if r, _ := shop.Record("k"); r.Fields["city"] != "Lyon" {
				t.Fatalf("shop holds %v; want the write of Lyon applied", r.Fields)
			}
			st.lose, st.fail = 0, 0
			shop.Edit("k", map[string]concord.Value{"city": "Paris"}) // the shop's person, after the write
			for range 3 {
				if _, err := e.RunCycle(ctx); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range []*fake.System{crm, shop} {
				if r, _ := s.Record("k"); r.Fields["city"] != "Paris" {
					t.Errorf("%s holds city %v; want Paris, the shop person's edit made after the write", s.Name(), r.Fields["city"])
				}
			}
		})
	}
}

// cancelling is a connector whose Apply cancels the cycle's context: a
// host shutting down (SIGTERM) while the engine's writes are in flight. If
// apply, the system applies the patches first and the call returns their
// results; otherwise the call is cut short, as an HTTP client's request,
// and returns the context's error without applying anything.
type cancelling struct {
	*fake.System
	cancel context.CancelFunc
	apply  bool
}

func (c cancelling) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	if !c.apply {
		c.cancel()
		return nil, ctx.Err()
	}
	res, err := c.System.Apply(ctx, ps)
	c.cancel()
	return res, err
}

// A host that cancels a cycle while its writes are in flight (shutting
// down) still gets what the writes did stored: the writes happened, and a
// cycle's final commit does not depend on the caller's patience. Stored
// as unknown, a restarted engine would take a person's later set-back of
// the value, in a system without tags, for the write never having landed,
// and overwrite it. A write whose batch was due after the cancellation is
// not sent, and stored as such: not a create of unknown outcome, which a
// record the shop's person then creates would be taken for (its echo).
// Neither it nor a call the cancellation cut short counts as a failure of
// the system (here one failed attempt would dead-letter the record).
func TestACancelledCycleStoresTheOutcomesOfItsWrites(t *testing.T) {
	t.Run("after a write", func(t *testing.T) { cancelledCycle(t, true) })
	t.Run("during a write", func(t *testing.T) { cancelledCycle(t, false) })
}

func cancelledCycle(t *testing.T, applied bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	crm, shop := fake.New("crm"), fake.New("shop", fake.WithoutTags())
	st, rec := store.NewMemory(), audittest.New()
	engine := func(shopConn connector.Connector) *recsync.Engine {
		e, err := recsync.New(recsync.Config{
			Systems:  []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shopConn, BatchSize: 1}},
			Resolver: resolve.LastWriterWins(), Store: st, Audit: rec, Logger: slog.New(slog.DiscardHandler),
			Retry: recsync.RetryPolicy{MaxRecordAttempts: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := engine(shop)
	crm.Edit("k", map[string]concord.Value{"city": "Paris"})
	for range 2 {
		if _, err := e.RunCycle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	crm.Edit("k", map[string]concord.Value{"city": "Lyon"})
	crm.Edit("k2", map[string]concord.Value{"name": "Ada"})
	e = engine(cancelling{shop, cancel, applied})
	rep, err := e.RunCycle(ctx) // writes k (or is cut short), then is cancelled before k2's batch
	want := "Paris"
	if applied {
		want = "Lyon"
	}
	if r, _ := shop.Record("k"); r.Fields["city"] != want {
		t.Fatalf("shop holds %v; want city %s (cycle: %v)", r.Fields, want, err)
	}
	if _, ok := shop.Record("k2"); ok {
		t.Fatal("the create of k2, due after the cancellation, was sent")
	}
	var ce *recsync.CycleError
	if !errors.As(err, &ce) || !slices.ContainsFunc(ce.Failures, func(f recsync.Failure) bool {
		return f.Key == "k2" && errors.Is(f.Err, context.Canceled)
	}) {
		t.Errorf("the cancelled cycle: %v; want it to finish its commit and report k2's write not sent", err)
	}
	if got := rep.Systems["shop"].Writes; got != map[bool]int{true: 1}[applied] {
		t.Errorf("the cycle reports %d writes to shop", got)
	}
	// A new process: only the store remembers.
	e = engine(shop)
	if applied {
		shop.Edit("k", map[string]concord.Value{"city": "Paris"}) // the shop's person, after the write
	}
	shop.Edit("k2", map[string]concord.Value{"name": "Ada", "amount": int64(7)}) // the shop's person creates k2
	rec.Reset()
	for range 3 {
		if _, err := e.RunCycle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wantCity := map[bool]string{true: "Paris", false: "Lyon"}[applied]
	for _, s := range []*fake.System{crm, shop} {
		if r, _ := s.Record("k"); r.Fields["city"] != wantCity {
			t.Errorf("%s holds city %v; want %s", s.Name(), r.Fields["city"], wantCity)
		}
		if r, _ := s.Record("k2"); r.Fields["name"] != "Ada" || r.Fields["amount"] != int64(7) {
			t.Errorf("%s holds k2 = %v; want name Ada and amount 7", s.Name(), r.Fields)
		}
	}
	rec.Require(t, audittest.Match{Kind: audit.EditObserved, System: "shop", Key: "k2", Unit: resolve.RecordUnit})
	if dl, err := e.DeadLetters(context.Background()); err != nil || len(dl) > 0 {
		t.Errorf("dead letters %v (%v); want none: a cancelled write is not the system's failure", dl, err)
	}
}

// reversing is a connector whose next Apply returns its results in reverse
// order (a connector bug: results must follow the patches).
type reversing struct {
	*fake.System
	on bool
}

func (c *reversing) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	res, err := c.System.Apply(ctx, ps)
	if c.on {
		slices.Reverse(res)
		c.on = false
	}
	return res, err
}

// A result that answers for another record than its patch (results out of
// order) says nothing of what the system did with the patch: the write is
// of unknown outcome, a failure, and what the system reports later may be
// its echo. Taken as refused, the dock's echo of B, read after the crm's
// next edit to C, was the dock's own edit, concurrent with C: a conflict
// that never happened, held for a person (and C written nowhere).
func TestAResultForAnotherRecordLeavesTheWriteUnknown(t *testing.T) {
	ctx := context.Background()
	crm, dock := fake.New("crm"), fake.New("dock", fake.WithoutTags())
	rev := &reversing{System: dock}
	e, err := recsync.New(recsync.Config{Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "dock", Connector: rev}},
		Resolver: resolve.Hold("people decide"), Store: store.NewMemory(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k1", "k2"} {
		crm.Edit(k, map[string]concord.Value{"city": "A"})
	}
	for range 2 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"k1", "k2"} {
		crm.Edit(k, map[string]concord.Value{"city": "B"})
	}
	rev.on = true
	_, err = e.RunCycle(ctx)
	var ce *recsync.CycleError
	if !errors.As(err, &ce) || len(ce.Failures) != 2 || !strings.Contains(ce.Failures[0].Err.Error(), "answered for record") {
		t.Fatalf("the cycle whose results came out of order: %v; want both writes failed", err)
	}
	crm.Edit("k1", map[string]concord.Value{"city": "C"})
	for range 3 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if holds, err := e.Holds(ctx); err != nil || len(holds) > 0 {
		t.Errorf("holds %v (%v); want none: the dock made no edit", holds, err)
	}
	for _, s := range []*fake.System{crm, dock} {
		for k, want := range map[string]string{"k1": "C", "k2": "B"} {
			if r, _ := s.Record(k); r.Fields["city"] != want {
				t.Errorf("%s holds %s = %v; want city %s", s.Name(), k, r.Fields, want)
			}
		}
	}
}
