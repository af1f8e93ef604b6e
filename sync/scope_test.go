package sync_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// alertsTo collects alerts.
type alertsTo struct{ got []alert.Alert }

func (a *alertsTo) Alert(_ context.Context, al alert.Alert) error {
	a.got = append(a.got, al)
	return nil
}

func withScope(s concord.SystemID, sc *recsync.Scope) rigOption {
	return func(c *recsync.Config) {
		for i := range c.Systems {
			if c.Systems[i].ID == s {
				c.Systems[i].Scope = sc
			}
		}
	}
}

func TestWritesOutsideTheScopeNeverReachTheConnector(t *testing.T) {
	alerts := &alertsTo{}
	r := newRig(t, []concord.SystemID{"crm", "marketing"},
		withScope("marketing", &recsync.Scope{Create: true, Fields: []string{"email", "name"}}),
		func(c *recsync.Config) { c.Alerter = alerts })
	mk := r.sys["marketing"]

	// In scope: created with the fields marketing may hold.
	r.sys["crm"].Edit("c1", map[string]any{"email": "ada@example.com", "name": "Ada"})
	r.settle()
	r.requireAll("c1", map[string]any{"email": "ada@example.com", "name": "Ada"})
	applied := mk.Calls(fake.OpApply)
	patches := len(mk.Applied())

	// A field outside marketing's scope: the whole patch is refused,
	// before the connector, every cycle, and the record stays pending.
	r.sys["crm"].Edit("c1", map[string]any{"ssn": "078-05-1120", "name": "Ada L."})
	for range 3 {
		rep := r.cycle()
		if got := rep.Systems["marketing"].OutOfScope; got != 1 {
			t.Fatalf("OutOfScope = %d; want 1 per cycle", got)
		}
		var se *recsync.ScopeError
		if !errors.As(r.lastErr, &se) || !errors.Is(r.lastErr, recsync.ErrOutOfScope) {
			t.Fatalf("cycle error %v; want a *ScopeError", r.lastErr)
		}
		if want := (&recsync.ScopeError{System: "marketing", Key: "c1", Op: "update", Fields: []string{"ssn"}}); !cmp.Equal(se, want) {
			t.Fatalf("scope error %+v; want %+v", se, want)
		}
	}
	if got := len(mk.Applied()); got != patches || mk.Calls(fake.OpApply) != applied {
		t.Fatalf("marketing's connector got %d more patches (%d more Apply calls); want 0", got-patches, mk.Calls(fake.OpApply)-applied)
	}
	if got := r.fields("marketing", "c1")["name"]; got != "Ada" {
		t.Errorf("marketing name = %v; want the old value: nothing of the refused patch applied", got)
	}
	ev := r.audit.Require(t, audittest.Match{Kind: audit.WriteRefused, System: "marketing", Key: "c1"})
	if ev.ErrorClass != "scope" || !cmp.Equal(ev.Fields, []string{"ssn"}) {
		t.Errorf("refusal event: class %q fields %v; want scope, [ssn]", ev.ErrorClass, ev.Fields)
	}
	if len(alerts.got) == 0 || alerts.got[len(alerts.got)-1].ErrorClass != "scope" {
		t.Errorf("alerts %+v; want one of class scope", alerts.got)
	}
	if s := r.engine.Stats().Systems["marketing"]; s.OutOfScope != 3 {
		t.Errorf("stats OutOfScope = %d; want 3", s.OutOfScope)
	}

	// Deletes are not in marketing's scope either.
	r.sys["crm"].Delete("c1")
	rep := r.cycle()
	var se *recsync.ScopeError
	if !errors.As(r.lastErr, &se) || se.Op != "delete" || rep.Systems["marketing"].OutOfScope != 1 {
		t.Fatalf("after a delete in the CRM: %v; want the delete refused in marketing", r.lastErr)
	}
	if _, ok := mk.Record("c1"); !ok {
		t.Fatal("the CRM's delete reached marketing")
	}
}

func TestScopeRefusalsCanBeDeadLettered(t *testing.T) {
	r := newRig(t, []concord.SystemID{"crm", "erp"},
		withScope("erp", &recsync.Scope{Fields: []string{"name"}, Refused: recsync.DeadLetterRefused}))
	r.sys["crm"].Edit("c1", map[string]any{"name": "Ada"})
	rep := r.cycle()
	if rep.Systems["erp"].OutOfScope != 1 || rep.Systems["erp"].DeadLettered != 1 {
		t.Fatalf("erp report %+v; want the create refused and dead-lettered", *rep.Systems["erp"])
	}
	if r.sys["erp"].Calls(fake.OpApply) != 0 {
		t.Fatal("the refused create reached the ERP's connector")
	}
	dl, err := r.engine.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || dl[0].Class != "scope" || dl[0].System != "erp" {
		t.Fatalf("dead letters %+v; want one of class scope for erp", dl)
	}
	// Not planned again: the next cycle refuses nothing.
	if rep := r.cycle(); rep.Systems["erp"].OutOfScope != 0 {
		t.Errorf("a dead-lettered refusal was refused again")
	}
}

func TestScopeConfigIsChecked(t *testing.T) {
	_, err := recsync.New(recsync.Config{
		Systems: []recsync.System{{ID: "a", Connector: fake.New("a"), Scope: &recsync.Scope{Fields: []string{""}}},
			{ID: "b", Connector: fake.New("b")}},
		Store: store.NewMemory(),
	})
	if !errors.Is(err, recsync.ErrConfig) {
		t.Fatalf("an empty field name in a scope: %v; want ErrConfig", err)
	}
}
