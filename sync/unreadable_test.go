package sync_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/seal"
	"github.com/concordsync/concord/sync/store"
)

// keyRing is a ring sealing under current, holding ids (each key 32 copies
// of its ID's first byte), with one hash key for every ring.
func keyRing(t *testing.T, current string, ids ...string) *seal.KeyRing {
	t.Helper()
	keys := map[seal.KeyID][]byte{}
	for _, id := range ids {
		keys[seal.KeyID(id)] = bytes.Repeat([]byte(id[:1]), 32)
	}
	r, err := seal.NewKeyRing(seal.KeyID(current), keys, seal.WithHashKey(bytes.Repeat([]byte{'h'}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A state the engine cannot read (sealed under a key retired before
// Engine.Reseal ran, or damaged) fails its record alone: the cycle merges
// and writes every other record, and reports that one's failure, naming
// the record and the cause (errors.Is store.ErrDamaged, errors.As a
// *seal error). Its reported change waits in a merge dead letter, and
// syncs once the state can be read again (the key put back). Before, one
// such state failed every cycle at its load: nothing synced.
func TestAStateThatCannotBeReadFailsOnlyItsRecord(t *testing.T) {
	for _, tc := range []struct {
		name            string
		breaks, repairs func(cfg *recsync.Config, st *damaging)
		is              error
	}{
		{"sealed under a retired key",
			func(cfg *recsync.Config, _ *damaging) { cfg.Keys = keyRing(t, "b2", "b2") },
			func(cfg *recsync.Config, _ *damaging) { cfg.Keys = keyRing(t, "b2", "a1", "b2") },
			seal.ErrUnknownKey},
		{"damaged",
			func(_ *recsync.Config, st *damaging) { st.on = true },
			func(_ *recsync.Config, st *damaging) { st.on = false },
			store.ErrDamaged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			crm, shop := fake.New("crm"), fake.New("shop")
			st := &damaging{Store: store.NewMemory(), key: "old"}
			cfg := recsync.Config{Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop}},
				Resolver: resolve.LastWriterWins(), Store: st, Logger: slog.New(slog.DiscardHandler),
				Sensitive: []string{"ssn"}, Keys: keyRing(t, "a1", "a1")}
			engine := func() *recsync.Engine {
				e, err := recsync.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			e := engine()
			crm.Edit("old", map[string]concord.Value{"ssn": "1", "name": "Ada"})
			for range 2 {
				if _, err := e.RunCycle(ctx); err != nil {
					t.Fatal(err)
				}
			}
			tc.breaks(&cfg, st)
			e = engine()
			crm.Edit("new", map[string]concord.Value{"ssn": "2", "name": "Bob"})
			crm.Edit("old", map[string]concord.Value{"name": "Ada L."})
			_, err := e.RunCycle(ctx)
			var ce *recsync.CycleError
			if !errors.As(err, &ce) || len(ce.Failures) != 1 || ce.Failures[0].Key != "old" || !errors.Is(ce.Failures[0].Err, tc.is) {
				t.Fatalf("cycle: %v; want one failure, of record old, matching %v", err, tc.is)
			}
			if r, _ := shop.Record("new"); r.Fields["name"] != "Bob" {
				t.Errorf("shop holds new = %v; want it synced", r.Fields)
			}
			if r, _ := shop.Record("old"); r.Fields["name"] != "Ada" {
				t.Errorf("shop holds old = %v; want it untouched while its state cannot be read", r.Fields)
			}
			dead, err := e.DeadLetters(ctx)
			if err != nil || !slices.ContainsFunc(dead, func(d recsync.DeadLetter) bool { return d.Key == "old" && d.Class == recsync.ClassMerge.String() }) {
				t.Fatalf("dead letters %v (%v); want old's change kept for a merge", dead, err)
			}
			tc.repairs(&cfg, st)
			e = engine()
			for range 2 {
				if _, err := e.RunCycle(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if r, _ := shop.Record("old"); r.Fields["name"] != "Ada L." {
				t.Errorf("shop holds old = %v; want the change that waited, Ada L.", r.Fields)
			}
			if dead, err := e.DeadLetters(ctx); err != nil || len(dead) > 0 {
				t.Errorf("dead letters %v (%v); want none once merged", dead, err)
			}
		})
	}
}

// The same for a dead letter: one the engine cannot read (sealed under a
// key retired too early, or damaged) is reported, every cycle that meets
// it, and the cycle goes on; a person can discard it unread. Before, a
// cycle that merged its record (here the crm fixed it) or listed the merge
// dead letters failed whole, and Discard could not remove it.
func TestADeadLetterThatCannotBeReadFailsOnlyItsRecord(t *testing.T) {
	ctx := context.Background()
	crm, shop := fake.New("crm"), fake.New("shop")
	noNine := validatorFunc(func(rec concord.Record) error {
		if rec.Fields["name"] == "999" {
			return errors.New("name 999 refused")
		}
		return nil
	})
	cfg := recsync.Config{Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop}},
		Resolver: resolve.LastWriterWins(), Store: store.NewMemory(), Logger: slog.New(slog.DiscardHandler),
		Dictionary: noNine, Sensitive: []string{"ssn"}, Keys: keyRing(t, "a1", "a1")}
	e, err := recsync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crm.Edit("bad", map[string]concord.Value{"ssn": "1", "name": "999"})
	_, _ = e.RunCycle(ctx) // dead-letters bad, its ssn sealed under a1
	cfg.Keys = keyRing(t, "b2", "b2")
	if e, err = recsync.New(cfg); err != nil {
		t.Fatal(err)
	}
	crm.Edit("bad", map[string]concord.Value{"name": "Ada"}) // fixed in the crm
	crm.Edit("good", map[string]concord.Value{"name": "Bob"})
	_, err = e.RunCycle(ctx)
	var ce *recsync.CycleError
	if !errors.As(err, &ce) || !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("cycle: %v; want a failure about the unreadable dead letter", err)
	}
	for _, k := range []string{"good", "bad"} {
		if _, ok := shop.Record(k); !ok {
			t.Errorf("%s did not reach the shop", k)
		}
	}
	// A person finds it listed, and discards it unread: the cycles that
	// follow are clean.
	listed, err := e.DeadLetters(ctx)
	if err != nil || len(listed) != 1 || listed[0].Class != recsync.ClassUnreadable.String() || listed[0].Key != "bad" ||
		!strings.Contains(listed[0].Reason, "unknown key") {
		t.Fatalf("dead letters %+v, %v; want the unreadable one, listed with its key and why", listed, err)
	}
	if err := e.Discard(ctx, recsync.DeadLetterAction{ID: listed[0].ID, Person: "ops", Reason: "sealed under a retired key"}); err != nil {
		t.Fatalf("Discard of the unreadable dead letter: %v", err)
	}
	crm.Edit("bad", map[string]concord.Value{"name": "Ada L."})
	for range 2 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatalf("cycle after the discard: %v", err)
		}
	}
	if dead, err := e.DeadLetters(ctx); err != nil || len(dead) > 0 {
		t.Errorf("dead letters %v (%v); want none", dead, err)
	}
}

// A webhook delivered late, while the record's changes wait in a merge
// dead letter (its state could not be read), does not take their place:
// the pushed state may be older than what the change feed brought, and
// here it is the record from before the CRM deleted it. Before, the
// pushed state replaced the dead letter's delete, and once the state read
// again the delete was lost for good: the shop kept the record the CRM had
// deleted. The dead letter is merged; the pushed state is left to the
// change feed.
func TestALateWebhookDoesNotReplaceAChangeWaitingForAMerge(t *testing.T) {
	ctx := context.Background()
	crm, shop := fake.New("crm"), fake.New("shop")
	st := &damaging{Store: store.NewMemory(), key: "k"}
	e, err := recsync.New(recsync.Config{Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop}},
		Resolver: resolve.LastWriterWins(), Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	crm.Edit("k", map[string]concord.Value{"name": "Ada"})
	for range 2 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := shop.Record("k"); !ok {
		t.Fatal("shop lacks k")
	}
	old := crm.History("k")[0] // the record as the CRM first held it

	st.on = true
	crm.Delete("k")
	if _, err := e.RunCycle(ctx); err == nil {
		t.Fatal("the cycle merged k although its state reads damaged")
	}
	if _, err := e.Ingest(ctx, "crm", []concord.Record{old}); err == nil {
		t.Fatal("Ingest merged k although its state reads damaged")
	}

	st.on = false
	for range 3 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if r, ok := shop.Record("k"); ok {
		t.Errorf("shop holds k = %v; want it deleted, as the CRM deleted it", r.Fields)
	}
	if _, ok := crm.Record("k"); ok {
		t.Error("the CRM holds k again; want it deleted")
	}
	if dead, err := e.DeadLetters(ctx); err != nil || len(dead) > 0 {
		t.Errorf("dead letters %v (%v); want none once merged", dead, err)
	}
}
