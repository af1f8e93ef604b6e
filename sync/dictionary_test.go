package sync_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/dict"
	"github.com/concordsync/concord/transform/normalize"
)

// A CRM with state names and US dates, an ERP with ISO codes and ISO dates,
// and a dictionary that both must satisfy.
func newCRMERP(t *testing.T) (*rig, *dict.Dictionary) {
	t.Helper()
	kinds := normalize.Kinds(nil)
	d, err := dict.Options{Kinds: kinds}.New(
		dict.Field{Name: "name", Type: dict.String, Required: true},
		dict.Field{Name: "state", Type: dict.String, Kind: dict.KindSubdivision},
		dict.Field{Name: "customer_since", Type: dict.String, Kind: dict.KindDate("2006-01-02")},
	)
	if err != nil {
		t.Fatal(err)
	}
	crm := transform.MustMapping(
		transform.RenameWith("state", "state", transform.Converter{In: normalize.SubdivisionCode("US"), Out: normalize.SubdivisionName("US")}),
		transform.RenameWith("since", "customer_since", transform.Converter{In: normalize.Date("01/02/2006", "2006-01-02"), Out: normalize.Date("2006-01-02", "01/02/2006")}),
	)
	erp := transform.MustMapping(transform.Rename("state_code", "state"), transform.Rename("since_date", "customer_since"))
	r := newRig(t, []concord.SystemID{"crm", "erp"}, func(c *recsync.Config) {
		c.Dictionary = d
		c.Systems[0].Inbound, c.Systems[0].Outbound = crm.Inbound(), crm.Outbound()
		c.Systems[1].Inbound, c.Systems[1].Outbound = erp.Inbound(), erp.Outbound()
	})
	return r, d
}

func TestInvalidRecordsAreQuarantinedWithPreciseReasons(t *testing.T) {
	r, _ := newCRMERP(t)
	crm := r.sys["crm"]
	crm.Edit("c1", map[string]any{"name": "Ada", "state": "California", "since": "03/04/2025"})
	crm.Edit("c2", map[string]any{"name": "Bob", "state": "Californa", "since": "03/04/2025"}) // misspelt
	crm.Edit("c3", map[string]any{"name": "Cy", "state": "Texas", "since": "03-04-2025"})      // wrong layout
	crm.Edit("c4", map[string]any{"state": "Oregon"})                                          // no name
	crm.Edit("c5", map[string]any{"name": "Di", "state": "New York", "since": "12/31/2024"})
	rep := r.cycle()
	if rep.Systems["crm"].Quarantined != 3 || rep.Systems["erp"].Writes != 2 {
		t.Fatalf("crm %+v erp %+v; want 3 quarantined and the 2 valid records written", *rep.Systems["crm"], *rep.Systems["erp"])
	}
	if got := r.fields("erp", "c1"); got["state_code"] != "US-CA" || got["since_date"] != "2025-03-04" {
		t.Errorf("erp c1 = %v", got)
	}
	if got := r.fields("erp", "c5"); got["state_code"] != "US-NY" || got["since_date"] != "2024-12-31" {
		t.Errorf("erp c5 = %v", got)
	}
	dl, err := r.engine.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]recsync.DeadLetter{}
	for _, d := range dl {
		reasons[d.Key] = d
	}
	for key, want := range map[string][]string{
		"c2": {`"c2"`, `state`, `Californa`},
		"c3": {`"c3"`, `since`, `03-04-2025`},
		"c4": {`"c4"`, `name`, `required`},
	} {
		d, ok := reasons[key]
		if !ok {
			t.Fatalf("no dead letter for %s: %+v", key, dl)
		}
		for _, w := range want {
			if !strings.Contains(d.Reason, w) {
				t.Errorf("%s: reason %q does not mention %q", key, d.Reason, w)
			}
		}
		if d.Record.Fields == nil {
			t.Errorf("%s: raw payload not kept", key)
		}
	}
	// The dictionary's refusal keeps the transformed payload too, and
	// every violation is inspectable.
	if reasons["c4"].Transformed.Fields["state"] != "US-OR" {
		t.Errorf("c4 transformed payload = %v", reasons["c4"].Transformed.Fields)
	}
	var vs *dict.Violations
	if !errors.As(r.lastErr, &vs) {
		t.Errorf("cycle error %v does not carry the dictionary's violations", r.lastErr)
	}

	// A person corrects the two records in the CRM; replaying the dead
	// letters reads them again as they are now.
	crm.Edit("c2", map[string]any{"state": "California"})
	crm.Edit("c3", map[string]any{"since": "03/04/2025"})
	for _, key := range []string{"c2", "c3"} {
		if err := r.engine.Replay(context.Background(), recsync.DeadLetterAction{ID: reasons[key].ID, Person: "ops@example.com"}); err != nil {
			t.Fatalf("replay %s: %v", key, err)
		}
	}
	r.settle()
	if got := r.fields("erp", "c2"); got["state_code"] != "US-CA" {
		t.Errorf("erp c2 after the fix = %v", got)
	}
	if got := r.fields("erp", "c3"); got["since_date"] != "2025-03-04" {
		t.Errorf("erp c3 after the fix = %v", got)
	}
	left, _ := r.engine.DeadLetters(context.Background())
	if len(left) != 1 || left[0].Key != "c4" {
		t.Fatalf("dead letters left = %+v; want only c4", left)
	}
	// And the CRM sees the ERP's shape converted back to its own.
	r.sys["erp"].Edit("c1", map[string]any{"state_code": "US-WA"})
	r.settle()
	if got := r.fields("crm", "c1"); got["state"] != "Washington" {
		t.Errorf("crm c1 = %v; want the state name", got)
	}
}

func TestOutboundTransformBugIsNotWritten(t *testing.T) {
	r, _ := newCRMERP(t)
	// An ERP whose outbound transform is broken: it writes the state's
	// name where the code belongs.
	bad := transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
		out := rec.Clone()
		if s, ok := out.Fields["state"].(string); ok {
			out.Fields["state"] = strings.ToUpper(s) + "!"
		}
		return out, nil
	})
	e, err := recsync.New(recsync.Config{Store: r.store, Audit: r.audit, Dictionary: mustDict(t),
		Retry: recsync.RetryPolicy{MaxAttempts: 1}, Systems: []recsync.System{
			{ID: "crm", Connector: r.sys["crm"]},
			{ID: "erp", Connector: r.sys["erp"], Outbound: bad},
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.engine = e
	r.sys["crm"].Edit("c1", map[string]any{"name": "Ada", "state": "US-CA"})
	rep := r.cycle()
	if rep.Systems["erp"].Writes != 0 || rep.Systems["erp"].DeadLettered != 1 {
		t.Fatalf("erp %+v; want the write refused and dead-lettered", *rep.Systems["erp"])
	}
	if r.fields("erp", "c1") != nil {
		t.Fatal("garbage was written")
	}
	for range 2 {
		r.cycle() // not retried every cycle
	}
	if n := len(r.sys["erp"].Applied()); n != 0 {
		t.Fatalf("%d writes reached the erp", n)
	}
}

func mustDict(t *testing.T) *dict.Dictionary {
	d, err := dict.New(dict.Field{Name: "state", Type: dict.String, Pattern: `[A-Z]{2}-[A-Z0-9]{1,3}`})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestQuarantineSettlesWhenFixedAtTheSource(t *testing.T) {
	r, _ := newCRMERP(t)
	r.sys["crm"].Edit("k", map[string]any{"name": "Ada", "state": "Californa"})
	r.cycle()
	if dl, _ := r.engine.DeadLetters(context.Background()); len(dl) != 1 {
		t.Fatalf("dead letters = %+v", dl)
	}
	r.sys["crm"].Edit("k", map[string]any{"state": "California"})
	r.settle()
	if got := r.fields("erp", "k"); got["state_code"] != "US-CA" {
		t.Fatalf("erp = %v", got)
	}
	if dl, _ := r.engine.DeadLetters(context.Background()); len(dl) != 0 {
		t.Fatalf("dead letter left after the record came in fixed: %+v", dl)
	}
}
