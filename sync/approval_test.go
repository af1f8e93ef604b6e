package sync_test

import (
	"context"
	"errors"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// pickChange returns the index of the held change (the candidate that is
// not the canonical value).
func pickChange(t *testing.T, h recsync.HeldConflict, canonical bool) int {
	t.Helper()
	for i, c := range h.Candidates {
		if c.Canonical == canonical {
			return i
		}
	}
	t.Fatalf("hold %+v has no candidate with Canonical %v", h, canonical)
	return -1
}

func TestABankAccountChangeWaitsForASecondPerson(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"crm", "erp"},
		func(c *recsync.Config) { c.Gates = []resolve.Gate{resolve.RequireApproval("iban")} })
	crm, erp := r.sys["crm"], r.sys["erp"]
	crm.Edit("v1", map[string]any{"name": "Acme", "iban": "GB82WEST12345698765432"})
	r.settle() // a first value: held too, approved by a second person
	holds, _ := r.engine.Holds(ctx)
	if len(holds) != 1 {
		t.Fatalf("holds %+v; want the first iban", holds)
	}
	h := holds[0]
	if err := r.engine.Settle(ctx, recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision,
		Candidate: pickChange(t, h, false), Person: "bob@example.com"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.requireAll("v1", map[string]any{"name": "Acme", "iban": "GB82WEST12345698765432"})

	// Ana changes the account (and the name): the name syncs, the
	// account waits.
	crm.EditBy("ana@example.com", "v1", map[string]any{"name": "Acme Ltd", "iban": "DE89370400440532013000"})
	r.settle()
	if got, _ := erp.Record("v1"); got.Fields["iban"] != "GB82WEST12345698765432" || got.Fields["name"] != "Acme Ltd" {
		t.Fatalf("erp v1 = %v; want the name synced and the old account kept", got.Fields)
	}
	holds, _ = r.engine.Holds(ctx)
	if len(holds) != 1 || holds[0].Rule != resolve.RuleApproval {
		t.Fatalf("holds %+v; want the account change held for approval", holds)
	}
	h = holds[0]
	approve := recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision, Candidate: pickChange(t, h, false)}
	if c := h.Candidates[approve.Candidate]; c.By != "ana@example.com" || c.Values["iban"] != "DE89370400440532013000" {
		t.Fatalf("held change %+v; want ana's new account", c)
	}
	if c := h.Candidates[pickChange(t, h, true)]; c.Values["iban"] != "GB82WEST12345698765432" {
		t.Fatalf("canonical candidate %+v; want the account before", c)
	}

	// Four eyes: Ana cannot approve her own change.
	approve.Person = "ANA@example.com"
	if err := r.engine.Settle(ctx, approve); !errors.Is(err, recsync.ErrFourEyes) {
		t.Fatalf("Settle by the author: %v; want ErrFourEyes", err)
	}
	// The value changes again before Bob looks: his approval of what he
	// saw is refused.
	crm.EditBy("ana@example.com", "v1", map[string]any{"iban": "FR7630006000011234567890"})
	r.settle()
	approve.Person = "bob@example.com"
	if err := r.engine.Settle(ctx, approve); !errors.Is(err, recsync.ErrHoldChanged) {
		t.Fatalf("Settle of a stale hold: %v; want ErrHoldChanged", err)
	}
	holds, _ = r.engine.Holds(ctx)
	h = holds[0]
	if err := r.engine.Settle(ctx, recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision,
		Candidate: pickChange(t, h, false), Person: "bob@example.com", Reason: "called the supplier"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.requireAll("v1", map[string]any{"name": "Acme Ltd", "iban": "FR7630006000011234567890"})

	// A change that is rejected is set back in the system that made it.
	crm.EditBy("mallory@example.com", "v1", map[string]any{"iban": "XX00EVIL"})
	r.settle()
	holds, _ = r.engine.Holds(ctx)
	h = holds[0]
	if err := r.engine.Settle(ctx, recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision,
		Candidate: pickChange(t, h, true), Person: "bob@example.com", Reason: "not requested by the supplier"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.requireAll("v1", map[string]any{"name": "Acme Ltd", "iban": "FR7630006000011234567890"})
	if holds, _ := r.engine.Holds(ctx); len(holds) != 0 {
		t.Fatalf("holds left: %+v", holds)
	}
}
