package sync_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// A record a decided delete removed everywhere, created again in one
// system, is a new record: its values compete with no value of the
// deleted one. Before, the portal's edit that lost to the delete (by a
// person's settlement, or by the resolver) still held the canonical name
// with a dot the warehouse never saw, so the warehouse's new name was a
// conflict with a value no system held: held for a person, or decided by
// the resolver, which could bring the rejected value back everywhere
// (found by TestConcurrentUseConverges).
func TestARecordCreatedAgainAfterADecidedDeleteIsNew(t *testing.T) {
	// deleteWins is a resolver that lets a delete beat an edit, and
	// otherwise prefers the portal: the policy that brought "A2" back.
	deleteWins := resolve.Func(func(_ context.Context, c resolve.Conflict) (resolve.Decision, error) {
		for i, x := range c.Candidates {
			if c.Unit == resolve.RecordUnit && x.Deleted {
				return resolve.Decision{Outcome: resolve.Pick, Winner: i, Rule: "delete-wins"}, nil
			}
			if c.Unit != resolve.RecordUnit && x.System == "portal" {
				return resolve.Decision{Outcome: resolve.Pick, Winner: i, Rule: "portal-wins"}, nil
			}
		}
		return resolve.Decision{}, nil
	})
	for _, by := range []string{"person", "resolver"} {
		t.Run("decided-by="+by, func(t *testing.T) {
			var opts []rigOption
			if by == "resolver" {
				opts = append(opts, withResolver(deleteWins))
			}
			r := newRig(t, []concord.SystemID{"portal", "warehouse"}, opts...)
			r.sys["portal"].Edit("c1", map[string]any{"name": "A", "city": "Leeds"})
			r.settle()
			// The warehouse deletes while the portal edits: a conflict
			// on the record, which the delete wins.
			r.sys["warehouse"].Delete("c1")
			r.sys["portal"].Edit("c1", map[string]any{"name": "A2"})
			r.cycle()
			if by == "person" {
				settleDelete(t, r.engine, "c1")
			}
			r.settle()
			if r.fields("portal", "c1") != nil || r.fields("warehouse", "c1") != nil {
				t.Fatalf("c1 not deleted everywhere: portal %v, warehouse %v", r.fields("portal", "c1"), r.fields("warehouse", "c1"))
			}

			mark := r.audit.Len()
			r.sys["warehouse"].Edit("c1", map[string]any{"name": "new"})
			r.settle()
			for _, ev := range r.audit.Events()[mark:] {
				if ev.Kind == audit.ConflictDetected {
					t.Errorf("the record created again is a conflict on %s%v", ev.Unit, ev.Units)
				}
			}
			// city: the record came back without it (rule re-created).
			r.requireAll("c1", map[string]any{"name": "new", "city": nil})
		})
	}
}

// The new record's values supersede only the deleted record's: they still
// compete with an edit of a system that never saw the delete (its write
// failed there), whether that edit comes in the same cycle or is held
// against the delete already (once the delete has beaten it, it is the
// deleted record's: see the first test's "decided-by=resolver" and
// "missed-the-delete" below), and with the values of a record that is not
// deleted after all (the update won, and its write to the system that
// deleted the record has not landed).
func TestARecordCreatedAgainStillCompetesWithLiveValues(t *testing.T) {
	edits := func(wins string) resolve.Resolver {
		return resolve.Func(func(_ context.Context, c resolve.Conflict) (resolve.Decision, error) {
			for i, x := range c.Candidates {
				if c.Unit == resolve.RecordUnit && (x.Deleted == (wins == "delete")) {
					return resolve.Decision{Outcome: resolve.Pick, Winner: i, Rule: resolve.Rule(wins + "-wins")}, nil
				}
			}
			return resolve.Decision{}, nil // held
		})
	}
	for _, tc := range []struct {
		name   string
		policy resolve.Resolver // for the record's existence; fields are held
		// apart: the crm's edit and the warehouse's create are merged
		// in different cycles.
		apart bool
	}{
		{"missed-the-delete/same-cycle", edits("delete"), false},
		{"missed-the-delete/delete-held", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []rigOption
			if tc.policy != nil {
				opts = append(opts, withResolver(tc.policy))
			}
			r := newRig(t, []concord.SystemID{"portal", "warehouse", "crm"}, opts...)
			r.sys["portal"].Edit("c1", map[string]any{"name": "A"})
			r.settle()
			r.sys["crm"].FailKey("c1", nil) // the delete never reaches the crm
			r.sys["warehouse"].Delete("c1")
			r.cycle()
			if r.fields("portal", "c1") != nil || r.fields("crm", "c1") == nil {
				t.Fatalf("want c1 deleted in the portal and kept in the crm: portal %v, crm %v", r.fields("portal", "c1"), r.fields("crm", "c1"))
			}
			// The crm's person edits the record it still has; the
			// warehouse's creates it again. Neither saw the other.
			r.sys["crm"].Edit("c1", map[string]any{"name": "crm"})
			if tc.apart {
				r.cycle()
			}
			r.sys["warehouse"].Edit("c1", map[string]any{"name": "wh"})
			r.cycle()
			r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Key: "c1", Unit: "name"})
		})
	}
	t.Run("missed-the-delete/delete-won", func(t *testing.T) {
		r := newRig(t, []concord.SystemID{"portal", "warehouse", "crm"}, withResolver(edits("delete")))
		r.sys["portal"].Edit("c1", map[string]any{"name": "A"})
		r.settle()
		r.sys["crm"].FailKey("c1", nil)
		r.sys["warehouse"].Delete("c1")
		r.cycle()
		r.sys["crm"].Edit("c1", map[string]any{"name": "crm"})
		r.cycle() // the delete beats the crm's edit
		mark := r.audit.Len()
		r.sys["warehouse"].Edit("c1", map[string]any{"name": "wh"})
		r.cycle()
		r.sys["crm"].ClearFailKey("c1")
		r.settle()
		for _, ev := range r.audit.Events()[mark:] {
			if ev.Kind == audit.ConflictDetected {
				t.Errorf("the record created again is a conflict on %s%v", ev.Unit, ev.Units)
			}
		}
		r.requireAll("c1", map[string]any{"name": "wh"})
	})
	t.Run("the-update-won", func(t *testing.T) {
		r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(edits("update")))
		r.sys["portal"].Edit("c1", map[string]any{"name": "A"})
		r.settle()
		r.sys["warehouse"].Delete("c1")
		r.sys["portal"].Edit("c1", map[string]any{"name": "A2"})
		r.sys["warehouse"].FailKey("c1", nil) // the record's return never lands
		r.cycle()
		r.sys["warehouse"].ClearFailKey("c1")
		if r.fields("warehouse", "c1") != nil {
			t.Fatalf("warehouse c1 = %v, want none", r.fields("warehouse", "c1"))
		}
		r.sys["warehouse"].Edit("c1", map[string]any{"name": "new"})
		r.cycle()
		r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Key: "c1", Unit: "name"})
	})
	t.Run("the-delete-still-held", func(t *testing.T) {
		r := newRig(t, []concord.SystemID{"portal", "warehouse"})
		r.sys["portal"].Edit("c1", map[string]any{"name": "A"})
		r.settle()
		r.sys["warehouse"].Delete("c1")
		r.sys["portal"].Edit("c1", map[string]any{"name": "A2"})
		r.cycle() // the record's conflict is held
		r.sys["warehouse"].Edit("c1", map[string]any{"name": "new"})
		r.cycle()
		r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Key: "c1", Unit: "name"})
	})
}

// settleDelete settles the hold on key's existence with the delete.
func settleDelete(t *testing.T, e *recsync.Engine, key string) {
	t.Helper()
	holds, err := e.Holds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range holds {
		if h.Key != key || h.Unit != resolve.RecordUnit {
			continue
		}
		for i, c := range h.Candidates {
			if c.Deleted {
				if err := e.Settle(context.Background(), recsync.Settlement{Key: key, Unit: h.Unit, Revision: h.Revision, Candidate: i, Person: "op"}); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
	}
	t.Fatalf("no held delete of %s: %+v", key, holds)
}

// A delete made without seeing an edit that is held (a conflict waiting
// for a person, a change waiting for approval) competes with it, as it
// does with an edit that went through, and as it did when the edit and
// the delete came in the same cycle. Before, the record-level context the
// delete was judged against held only the canonical versions: a delete
// read a cycle after the hold won outright, deleting the held edits
// everywhere without a conflict, and the person's settlement then applied
// to a record no longer there.
func TestADeleteThatMissedAHeldEditIsAConflict(t *testing.T) {
	for _, tc := range []struct {
		name  string
		gated bool // the edit is held for approval, not by a conflict
		// sameCycle: the delete is read in the cycle that holds the edit.
		sameCycle bool
		// group: "name" is a field of the group "id" with "code".
		group bool
	}{
		{"conflict/later-cycle", false, false, false},
		{"conflict/same-cycle", false, true, false},
		{"approval/later-cycle", true, false, false},
		{"approval/same-cycle", true, true, false},
		{"group-conflict/later-cycle", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []rigOption
			if tc.group {
				opts = append(opts, withGroups(map[string][]string{"id": {"name", "code"}}))
			}
			if tc.gated {
				opts = append(opts, withResolver(resolve.LastWriterWins()),
					func(c *recsync.Config) { c.Gates = []resolve.Gate{resolve.RequireApproval("name")} })
			}
			r := newRig(t, []concord.SystemID{"portal", "warehouse", "crm"}, opts...)
			r.sys["portal"].Edit("c1", map[string]any{"name": "A", "city": "Leeds"})
			r.settle()
			if tc.gated { // the first name waits for approval too
				settleAll(t, r.engine, "portal")
				r.settle()
			}
			r.sys["portal"].Edit("c1", map[string]any{"name": "P"})
			if !tc.gated {
				r.sys["warehouse"].Edit("c1", map[string]any{"name": "W"})
			}
			if !tc.sameCycle {
				r.cycle()
			}
			mark := r.audit.Len()
			r.sys["crm"].Delete("c1")
			r.cycle()
			conflict := false
			for _, ev := range r.audit.Events()[mark:] {
				conflict = conflict || ev.Kind == audit.ConflictDetected && ev.Unit == resolve.RecordUnit
			}
			if !conflict {
				t.Errorf("the crm's delete, made without seeing the held name, is no conflict")
			}
			// Held for a person without a resolver; decided by
			// last-writer-wins (the delete, later) with one.
			if !tc.gated && r.fields("portal", "c1") == nil {
				t.Errorf("the delete reached the portal, whose held edit it never saw")
			}
		})
	}
	t.Run("the-editor-deletes", func(t *testing.T) {
		// The portal deletes after its own change, held for approval:
		// it saw everything there is, and the delete goes through.
		r := newRig(t, []concord.SystemID{"portal", "crm"}, withResolver(resolve.LastWriterWins()),
			func(c *recsync.Config) { c.Gates = []resolve.Gate{resolve.RequireApproval("name")} })
		r.sys["portal"].Edit("c1", map[string]any{"name": "A", "city": "Leeds"})
		r.settle()
		settleAll(t, r.engine, "portal")
		r.settle()
		r.sys["portal"].Edit("c1", map[string]any{"name": "P"})
		r.cycle()
		r.sys["portal"].Delete("c1")
		r.cycle()
		r.audit.RequireNone(t, audittest.Match{Kind: audit.ConflictDetected, Key: "c1"})
		if r.fields("crm", "c1") != nil {
			t.Errorf("crm c1 = %v, want it deleted", r.fields("crm", "c1"))
		}
	})
}

// settleAll settles every hold with the candidate of system sys.
func settleAll(t *testing.T, e *recsync.Engine, sys concord.SystemID) {
	t.Helper()
	holds, err := e.Holds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range holds {
		for i, c := range h.Candidates {
			if c.System == sys && !c.Canonical {
				if err := e.Settle(context.Background(), recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision, Candidate: i, Person: "op"}); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

// While a delete is held against an edit, a system that edits the record
// without seeing the delete joins the competition: the person's listing
// changes (a settlement of the old one is refused), and only a settlement
// of what they now see deletes that edit. Before, the edit went through
// unseen by the hold, and the person's "delete" then removed it everywhere
// without anyone having decided against it.
func TestAnEditWhileADeleteIsHeldJoinsTheHold(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"portal", "warehouse", "crm"})
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "city": "Leeds"})
	r.settle()
	r.sys["warehouse"].Delete("c1")
	r.sys["portal"].Edit("c1", map[string]any{"name": "P"})
	r.settle() // the record's existence is held; the name reaches the crm
	listed, err := r.engine.Holds(ctx)
	if err != nil || len(listed) != 1 || listed[0].Unit != resolve.RecordUnit {
		t.Fatalf("holds %+v, %v; want the record's existence", listed, err)
	}
	r.sys["crm"].Edit("c1", map[string]any{"city": "York"})
	r.cycle()
	del := slices.IndexFunc(listed[0].Candidates, func(c resolve.Candidate) bool { return c.Deleted })
	err = r.engine.Settle(ctx, recsync.Settlement{Key: "c1", Unit: resolve.RecordUnit, Revision: listed[0].Revision, Candidate: del, Person: "op"})
	if !errors.Is(err, recsync.ErrHoldChanged) {
		t.Fatalf("settling the delete from a listing without the crm's edit: %v, want ErrHoldChanged", err)
	}
	holds, _ := r.engine.Holds(ctx)
	if len(holds) != 1 || !slices.ContainsFunc(holds[0].Candidates, func(c resolve.Candidate) bool { return c.System == "crm" && !c.Deleted }) {
		t.Fatalf("holds %+v; want the crm's edit among the record's candidates", holds)
	}
	if got := r.fields("crm", "c1"); got["city"] != "York" {
		t.Fatalf("crm c1 = %v; want its edit kept while held", got)
	}
	// What the person sees now, they may still decide.
	del = slices.IndexFunc(holds[0].Candidates, func(c resolve.Candidate) bool { return c.Deleted })
	if err := r.engine.Settle(ctx, recsync.Settlement{Key: "c1", Unit: resolve.RecordUnit, Revision: holds[0].Revision, Candidate: del, Person: "op"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	for _, s := range []concord.SystemID{"portal", "warehouse", "crm"} {
		if got := r.fields(s, "c1"); got != nil {
			t.Errorf("%s c1 = %v after the person chose the delete", s, got)
		}
	}
}

// A second delete, made after seeing every edit (the held name reached the
// crm), agrees with the held one: the record is deleted, with no new
// conflict. The held delete is a candidate of the existence's own hold,
// never part of the canonical record's context, which would make that
// context seem to have seen it.
func TestASecondDeleteThatSawEveryEditSettlesAHeldDelete(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse", "crm"})
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "city": "Leeds"})
	r.settle()
	r.sys["warehouse"].Delete("c1")
	r.sys["portal"].Edit("c1", map[string]any{"name": "P"})
	r.settle()
	if got := r.fields("crm", "c1"); got["name"] != "P" {
		t.Fatalf("crm c1 = %v; want the portal's name", got)
	}
	mark := r.audit.Len()
	r.sys["crm"].Delete("c1")
	r.settle()
	for _, ev := range r.audit.Events()[mark:] {
		if ev.Kind == audit.ConflictDetected {
			t.Errorf("the crm's delete, made after every edit, is a conflict on %s", ev.Unit)
		}
	}
	for _, s := range []concord.SystemID{"portal", "warehouse", "crm"} {
		if got := r.fields(s, "c1"); got != nil {
			t.Errorf("%s c1 = %v; want it deleted", s, got)
		}
	}
}

// A record created again after a decided delete by a system that does not
// own one of its fields: the owner's value was the deleted record's, so the
// gate sees a first value (Change.From empty). Refused, it is held for a
// person, as a first value is ("no canonical value to revert to"), or
// accepted with AcceptFirstValues. Before, the refusal reverted to the
// deleted record's price, which came back in every system, the owner's
// included, though the owner had deleted it.
func TestARecordCreatedAgainByANonOwnerDoesNotBringBackTheOwnersValue(t *testing.T) {
	owners := map[string]concord.SystemID{"price": "portal"}
	for _, tc := range []struct {
		name string
		sor  *resolve.SystemOfRecordResolver
	}{
		{"refused", resolve.SystemOfRecord(owners)},
		{"first-values-accepted", resolve.SystemOfRecord(owners).AcceptFirstValues()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := recreatedWithAHeldPrice(t, tc.sor)
			for _, s := range []concord.SystemID{"portal", "warehouse"} {
				if got := r.fields(s, "c1")["price"]; got == 100 {
					t.Errorf("%s: price = 100, the deleted record's", s)
				}
			}
			holds, _ := r.engine.Holds(context.Background())
			if tc.name == "refused" {
				if len(holds) != 1 || holds[0].Unit != "price" {
					t.Fatalf("holds %+v; want the warehouse's price held for a person", holds)
				}
				if c := holds[0].Candidates; slices.ContainsFunc(c, func(c resolve.Candidate) bool { return c.Deleted }) {
					t.Errorf("held candidates %+v: a price of a record that exists is no delete", c)
				}
				if got := r.fields("portal", "c1"); !concord.EqualValues(got, map[string]any{"name": "B"}) {
					t.Errorf("portal c1 = %v; want the new name, the price waiting", got)
				}
				// The person chooses: no price (the canonical
				// candidate), or the warehouse's.
				for _, pick := range []bool{false, true} {
					r := r
					if pick { // a second world, from the same start
						r = recreatedWithAHeldPrice(t, tc.sor)
					}
					h := firstHold(t, r.engine)
					i := pickChange(t, h, !pick)
					if err := r.engine.Settle(context.Background(), recsync.Settlement{Key: "c1", Unit: "price", Revision: h.Revision, Candidate: i, Person: "op"}); err != nil {
						t.Fatal(err)
					}
					r.settle()
					for _, s := range []concord.SystemID{"portal", "warehouse"} {
						got := r.fields(s, "c1")
						if price, ok := got["price"]; pick && price != 5 || !pick && ok && price != nil {
							t.Errorf("picked the warehouse's: %v; %s c1 = %v", pick, s, got)
						}
					}
				}
				return
			}
			if len(holds) != 0 {
				t.Fatalf("holds %+v; want none", holds)
			}
			r.requireAll("c1", map[string]any{"name": "B", "price": 5})
		})
	}
}

// recreatedWithAHeldPrice is the world of the test above: the portal, which
// owns the price, deleted c1; the warehouse created it again with a price.
func recreatedWithAHeldPrice(t *testing.T, sor *resolve.SystemOfRecordResolver) *rig {
	t.Helper()
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(sor))
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "price": 100})
	r.settle()
	r.sys["portal"].Delete("c1")
	r.settle()
	r.sys["warehouse"].Edit("c1", map[string]any{"name": "B", "price": 5})
	r.settle()
	return r
}

func firstHold(t *testing.T, e *recsync.Engine) recsync.HeldConflict {
	t.Helper()
	holds, err := e.Holds(context.Background())
	if err != nil || len(holds) == 0 {
		t.Fatalf("holds %v, %v; want one", holds, err)
	}
	return holds[0]
}

// A change of the deleted record that was still waiting for a person (here
// an approval the portal's own delete made moot) is the deleted record's
// too: a system that creates the record again does not compete with it, and
// the person is asked about the new value alone, beside no value. Before,
// the crm's new account was a conflict with the portal's pending one, which
// approving would have written everywhere.
func TestARecordCreatedAgainDoesNotCompeteWithTheDeletedRecordsHeldChange(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse", "crm"},
		func(c *recsync.Config) { c.Gates = []resolve.Gate{resolve.RequireApproval("iban")} })
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "iban": "I0"})
	r.settle()
	settleAll(t, r.engine, "portal")
	r.settle()
	r.sys["portal"].Edit("c1", map[string]any{"iban": "P"}) // waits for approval
	r.cycle()
	r.sys["portal"].Delete("c1")
	r.settle()
	mark := r.audit.Len()
	r.sys["crm"].Edit("c1", map[string]any{"name": "N", "iban": "C"})
	r.settle()
	for _, ev := range r.audit.Events()[mark:] {
		if ev.Kind == audit.ConflictDetected {
			t.Errorf("the record created again is a conflict on %s", ev.Unit)
		}
	}
	h := firstHold(t, r.engine)
	if h.Unit != "iban" || len(h.Candidates) != 2 || h.Candidates[0].Values != nil || h.Candidates[1].Values["iban"] != "C" {
		t.Fatalf("hold %+v; want the crm's account beside no value", h)
	}
	if err := r.engine.Settle(context.Background(), recsync.Settlement{Key: "c1", Unit: "iban", Revision: h.Revision, Candidate: 1, Person: "op"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.requireAll("c1", map[string]any{"name": "N", "iban": "C"})
}

// A webhook may carry part of a record (Ingest takes partial reports, and
// a report never deletes by omission). Two paths took its omissions as
// the record coming back without those fields (rule re-created) and wrote
// them empty to every system, the reporting one included, which had them:
// a webhook of a record created again after a decided delete (now left to
// the change feed, which reads the whole record), and a webhook whose edit
// brought a deleted record back by winning over the delete (its omissions
// now clear nothing).
func TestAPartialWebhookNeverErasesAField(t *testing.T) {
	ctx := context.Background()
	partial := func(rec concord.Record, f string) concord.Record {
		return concord.Record{Key: rec.Key, Tag: rec.Tag, Modified: rec.Modified, Fields: map[string]concord.Value{f: rec.Fields[f]}}
	}
	t.Run("created-again", func(t *testing.T) {
		r := newRig(t, []concord.SystemID{"portal", "warehouse"})
		r.sys["portal"].Edit("c1", map[string]any{"name": "A", "price": 100})
		r.settle()
		r.sys["portal"].Delete("c1")
		r.settle()
		rec := r.sys["warehouse"].Edit("c1", map[string]any{"name": "B", "price": 5})
		if _, err := r.engine.Ingest(ctx, "warehouse", []concord.Record{partial(rec, "name")}); err != nil {
			t.Fatal(err)
		}
		if got := r.fields("warehouse", "c1"); got["price"] != 5 {
			t.Fatalf("warehouse c1 = %v after a webhook without the price", got)
		}
		r.settle()
		r.requireAll("c1", map[string]any{"name": "B", "price": 5})
	})
	t.Run("brought-back-by-an-edit", func(t *testing.T) {
		r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(resolve.Func(
			func(_ context.Context, c resolve.Conflict) (resolve.Decision, error) {
				for i, x := range c.Candidates {
					if c.Unit == resolve.RecordUnit && !x.Deleted {
						return resolve.Decision{Outcome: resolve.Pick, Winner: i, Rule: "update-wins"}, nil
					}
				}
				return resolve.Decision{}, nil
			})))
		r.sys["portal"].Edit("c1", map[string]any{"name": "A", "price": 100})
		r.settle()
		r.sys["warehouse"].FailKey("c1", nil) // the delete never reaches it
		r.sys["portal"].Delete("c1")
		r.cycle()
		r.sys["warehouse"].ClearFailKey("c1")
		rec := r.sys["warehouse"].Edit("c1", map[string]any{"price": 7})
		if _, err := r.engine.Ingest(ctx, "warehouse", []concord.Record{partial(rec, "price")}); err != nil {
			t.Fatal(err)
		}
		r.settle()
		r.requireAll("c1", map[string]any{"name": "A", "price": 7})
	})
}

// A webhook that carries part of a record leaves the rest of the same state
// to the change feed: the feed's report of that state is not the webhook's
// again (an echo of what the engine knows), and the fields it left out
// reach every system. With field times and without.
func TestAPartialWebhookLeavesTheRestToTheFeed(t *testing.T) {
	ctx := context.Background()
	for _, fieldTimes := range []bool{false, true} {
		t.Run(fmt.Sprintf("fieldtimes=%v", fieldTimes), func(t *testing.T) {
			r := newRig(t, []concord.SystemID{"portal", "warehouse"})
			if fieldTimes {
				p := fake.New("portal", fake.WithClock(r.clock.now), fake.WithFieldTimes())
				r.sys["portal"], r.cfg.Systems[0].Connector = p, p
				r.engine = r.newEngine()
			}
			r.sys["portal"].Edit("c1", map[string]any{"name": "A", "price": 100, "flag": false})
			r.settle()
			rec := r.sys["portal"].Edit("c1", map[string]any{"name": "B", "price": 5, "flag": true})
			pushed := concord.Record{Key: rec.Key, Tag: rec.Tag, Modified: rec.Modified, By: rec.By,
				Fields: map[string]concord.Value{"name": rec.Fields["name"]}}
			if rec.FieldModified != nil {
				pushed.FieldModified = map[string]time.Time{"name": rec.FieldModified["name"]}
			}
			if _, err := r.engine.Ingest(ctx, "portal", []concord.Record{pushed}); err != nil {
				t.Fatal(err)
			}
			r.settle()
			r.requireAll("c1", map[string]any{"name": "B", "price": 5, "flag": true})
		})
	}
}

// A webhook's tag guards no write: the state it names may hold edits of
// the fields the webhook left out, which a write made before the change
// feed reads them would replace, its IfMatch satisfied (found by the
// simulation with partial webhooks, seed 920). Here the portal changes
// flag after the warehouse did, and pushes only the name; its feed is
// down when the warehouse's flag would be written over it.
func TestNoWriteOverAStateKnownFromAPartialWebhook(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(resolve.LastWriterWins()))
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "flag": "no"})
	r.settle()
	r.sys["warehouse"].Edit("c1", map[string]any{"flag": "maybe"})
	rec := r.sys["portal"].Edit("c1", map[string]any{"name": "B", "flag": "yes"})
	pushed := concord.Record{Key: rec.Key, Tag: rec.Tag, Modified: rec.Modified,
		Fields: map[string]concord.Value{"name": rec.Fields["name"]}}
	// The name's write to the warehouse fails (its IfMatch is stale: the
	// warehouse changed the record since): a cycle error, no more.
	if _, err := r.engine.Ingest(ctx, "portal", []concord.Record{pushed}); err != nil && !errors.As(err, new(*recsync.CycleError)) {
		t.Fatal(err)
	}
	r.sys["portal"].FailNext(fake.OpChanges, 1, nil)
	r.cycle()
	if got := r.fields("portal", "c1")["flag"]; got != "yes" {
		t.Fatalf("portal's flag = %v after a cycle that did not read it; want its own, unread edit kept: yes", got)
	}
	r.settle()
	r.requireAll("c1", map[string]any{"name": "B", "flag": "yes"})
}

// A webhook that leaves out a field the engine wrote without seeing the
// write confirmed does not move on the time of the state the engine knows:
// the person's setting back of that write, at the webhook's time, still
// reads as a change made after the write (field times tell it from a write
// never applied), and is kept.
func TestAPartialWebhookKeepsASetBackOfALostWrite(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(resolve.LastWriterWins()))
	p := r.replaceSystem(0, fake.WithFieldTimes())
	p.Edit("c1", map[string]any{"name": "A", "flag": "no"})
	r.settle()
	r.sys["warehouse"].Edit("c1", map[string]any{"flag": "yes"})
	p.LoseRepliesNext(1)
	r.cycle() // the portal applies flag = yes; the engine never hears so
	if got := r.fields("portal", "c1")["flag"]; got != "yes" {
		t.Fatalf("portal's flag = %v; want the write applied", got)
	}
	rec := p.Edit("c1", map[string]any{"name": "B", "flag": "no"}) // set back, and a new name
	pushed := concord.Record{Key: rec.Key, Tag: rec.Tag, Modified: rec.Modified,
		Fields: map[string]concord.Value{"name": rec.Fields["name"]}, FieldModified: map[string]time.Time{"name": rec.FieldModified["name"]}}
	if _, err := r.engine.Ingest(ctx, "portal", []concord.Record{pushed}); err != nil && !errors.As(err, new(*recsync.CycleError)) {
		t.Fatal(err)
	}
	r.settle()
	r.requireAll("c1", map[string]any{"name": "B", "flag": "no"})
}

// A delete the engine wrote to a system whose reply was lost stays its own
// unconfirmed write only until the system is read creating the record
// again: that claim of the record's existence, made without seeing the
// delete, supersedes the write, as an edit of a field supersedes a write
// of that field. A delete the system's person makes later is theirs, not
// the echo of the engine's old one, even when the write that brought the
// system the record's newer values was refused and kept in a dead letter
// (simulation seed 190,912).
func TestARecreationSupersedesTheEnginesUnconfirmedDelete(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"a", "b", "c"}, withResolver(resolve.LastWriterWins()))
	a, b, c := r.sys["a"], r.sys["b"], r.sys["c"]
	a.Edit("c1", map[string]any{"city": "v0"})
	r.settle()

	a.Delete("c1")
	b.LoseRepliesNext(1)
	r.cycle() // the delete is applied in b; the engine never hears of it

	b.Edit("c1", map[string]any{"city": "v1"}) // b's person creates c1 again
	c.Edit("c1", map[string]any{"city": "v2"}) // and so, later, does c's
	b.FailKey("c1", connector.Permanent(errors.New("422")))
	r.cycle() // c1 lives on with c's v2; its write to b is dead-lettered
	b.ClearFailKey("c1")

	b.Delete("c1")
	r.cycle()
	dl, err := r.engine.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dl {
		if err := r.engine.Replay(ctx, recsync.DeadLetterAction{ID: d.ID, Person: "ops@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	r.settle()
	for _, s := range []concord.SystemID{"a", "b", "c"} {
		if _, ok := r.sys[s].Record("c1"); ok {
			t.Errorf("%s holds c1 after b's person deleted it: %v (b's delete taken for the echo of the engine's)", s, r.fields(s, "c1"))
		}
	}
}
