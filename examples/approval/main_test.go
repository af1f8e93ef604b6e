package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// story runs the example once and fails the test if it does not finish.
func story(t testing.TB) (*outcome, string) {
	t.Helper()
	var out bytes.Buffer
	res, err := run(&out)
	if err != nil {
		t.Fatalf("run: %v\noutput so far:\n%s", err, out.String())
	}
	return res, out.String()
}

// fields returns record key of system s in snapshot label.
func fields(t testing.TB, res *outcome, label string, s concord.SystemID, key string) map[string]concord.Value {
	t.Helper()
	snap, ok := res.states[label]
	if !ok {
		t.Fatalf("no snapshot %q", label)
	}
	i := slices.IndexFunc(snap[s], func(r concord.Record) bool { return r.Key == key })
	if i < 0 {
		t.Fatalf("%s: %s has no record %s", label, s, key)
	}
	return snap[s][i].Fields
}

func TestBankAccountChangesWaitForASecondPerson(t *testing.T) {
	res, out := story(t)
	want := []struct {
		label, erpIBAN, shopIBAN string
	}{
		// Ana's change: held, while her name change synced.
		{"ana's change held", ibanFirst, ibanAna},
		// Approved by Bob: the ERP has it.
		{"ana's change approved", ibanAna, ibanAna},
		{"mallory's change held", ibanAna, ibanMallory},
		// Rejected by Bob: the shop is set back.
		{"mallory's change rejected", ibanAna, ibanAna},
	}
	for _, w := range want {
		e, s := fields(t, res, w.label, erp, "S-100"), fields(t, res, w.label, shop, "S-100")
		if e["iban"] != w.erpIBAN || s["iban"] != w.shopIBAN {
			t.Errorf("%s: iban erp %v, shop %v; want %v, %v", w.label, e["iban"], s["iban"], w.erpIBAN, w.shopIBAN)
		}
	}
	if got := fields(t, res, "ana's change held", erp, "S-100")["name"]; got != "Acme Tools Ltd" {
		t.Errorf("erp name while the iban is held = %v; want Ana's name change, synced", got)
	}
	if !errors.Is(res.fourEyes, recsync.ErrFourEyes) {
		t.Errorf("Ana approving her own change: %v; want ErrFourEyes", res.fourEyes)
	}
	if !errors.Is(res.wrongKeys, recsync.ErrWrongKeys) {
		t.Errorf("RevealHolds with another key ring: %v; want ErrWrongKeys", res.wrongKeys)
	}

	// Holds lists the account redacted, RevealHolds with its values; both
	// name Ana as the author of the change.
	type cand struct {
		System    concord.SystemID
		Canonical bool
		By        string
		IBAN      concord.Value
	}
	for i, wantIBANs := range [][2]string{{recsync.Redacted, recsync.Redacted}, {ibanFirst, ibanAna}} {
		if len(res.holds) <= i || len(res.holds[i]) != 1 {
			t.Fatalf("listing %d of the holds: %+v; want one", i, res.holds)
		}
		h := res.holds[i][0]
		if h.Key != "S-100" || h.Unit != "iban" || h.Rule != resolve.RuleApproval {
			t.Errorf("hold %+v; want S-100 iban held for approval", h)
		}
		var got []cand
		for _, c := range h.Candidates {
			got = append(got, cand{c.System, c.Canonical, c.By, c.Values["iban"]})
		}
		want := []cand{{erp, true, "", wantIBANs[0]}, {shop, false, "ana@example.com", wantIBANs[1]}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("listing %d of the holds (-want +got):\n%s", i, diff)
		}
	}
	requireLines(t, out, "Now S-100 iban: erp "+ibanAna+", shop "+ibanAna+".",
		`       audit merge.decided   shop S-100 iban: [redacted] -> [redacted] (settled by bob@example.com: not requested by the supplier)`)
}

func TestAnOutlyingPriceWaitsWhileAnOrdinaryOnePasses(t *testing.T) {
	res, _ := story(t)
	for _, c := range []struct {
		label, key string
		sys        concord.SystemID
		want       float64
	}{
		{"prices held", "P-05", shop, 42},     // +5%: passed at once
		{"prices held", "P-17", shop, 100},    // 100 → 1: held
		{"prices held", "P-20", shop, 115},    // +25%: held
		{"prices decided", "P-17", shop, 1},   // approved: reached the shop
		{"prices decided", "P-20", erp, 115},  // rejected: the ERP set back
		{"prices decided", "P-20", shop, 115}, // and the shop never saw it
	} {
		if got := fields(t, res, c.label, c.sys, c.key)["price"]; got != c.want {
			t.Errorf("%s: %s %s price = %v; want %v", c.label, c.sys, c.key, got, c.want)
		}
	}
	if len(res.holds) < 3 {
		t.Fatalf("holds listed %d times; want 3", len(res.holds))
	}
	var got [][3]string
	for _, h := range res.holds[2] {
		got = append(got, [3]string{h.Key, string(h.Rule), h.Reason})
	}
	want := [][3]string{
		{"P-17", string(resolve.RuleAnomaly), "price 100 → 1: −99%, beyond the limit −33% to +50%; typical ±3% (median −0.01%, MAD 2% over 28 changes), outside −14% to +16%"},
		{"P-20", string(resolve.RuleAnomaly), "price 115 → 143.75: +25%, typical ±3% (median −0.01%, MAD 2% over 28 changes), outside −14% to +16%"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("price holds (-want +got):\n%s", diff)
	}

	// The sale price reached the shop only after pia approved it.
	settled := slices.IndexFunc(res.events, func(ev audit.Event) bool {
		return ev.Kind == audit.MergeDecided && ev.Key == "P-17" && ev.Rule == recsync.RulePerson
	})
	written := slices.IndexFunc(res.events, func(ev audit.Event) bool {
		return ev.Kind == audit.WriteSucceeded && ev.System == shop && ev.Key == "P-17" && ev.Time.Hour() >= 14
	})
	if settled < 0 || written < settled || !strings.HasPrefix(res.events[settled].Reason, "settled by pia@example.com") {
		t.Errorf("P-17: settled by a person at event %d, written to the shop at %d; want a settlement by pia, then the write", settled, written)
	}
}

// No account number leaves the engine except through RevealHolds: not in
// the audit events, not in the store's file.
func TestAccountNumbersAreRedactedAndSealed(t *testing.T) {
	res, out := story(t)
	ibans := []string{ibanFirst, ibanAna, ibanMallory}
	events, err := json.Marshal(res.events)
	if err != nil {
		t.Fatal(err)
	}
	for _, iban := range ibans {
		if bytes.Contains(events, []byte(iban)) {
			t.Errorf("the audit events hold %s", iban)
		}
	}
	if !bytes.Contains(events, []byte(recsync.Redacted)) {
		t.Error("no audit event shows " + recsync.Redacted)
	}
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "       audit ") && slices.ContainsFunc(ibans, func(s string) bool { return strings.Contains(l, s) }) {
			t.Errorf("an audit line shows an account number: %q", l)
		}
	}
	if !res.nameInStore || res.plainInStore {
		t.Errorf("store file: name as such %v, an account number %v; want true, false", res.nameInStore, res.plainInStore)
	}
}

func TestAuditLogVerifies(t *testing.T) {
	res, out := story(t)
	if res.verify != nil || res.checkpoint != nil || res.checkpointsMatched != 1 {
		t.Errorf("VerifyAudit %v, checkpoint %v, %d checkpoints matched; want nil, nil, 1", res.verify, res.checkpoint, res.checkpointsMatched)
	}
	if !errors.Is(res.otherKey, audit.ErrBadSignature) {
		t.Errorf("checkpoint verified with another key: %v; want ErrBadSignature", res.otherKey)
	}
	requireLines(t, out, "Offline, audit.ParseCheckpoint and Verify(public key): verified.",
		"With another public key: refused with audit.ErrBadSignature: true.")
}

func TestOutputIsDeterministic(t *testing.T) {
	_, first := story(t)
	if _, again := story(t); again != first {
		t.Fatalf("output changed between runs (-first +again):\n%s", cmp.Diff(first, again))
	}
}

// requireLines fails t unless out has each of lines as a whole line.
func requireLines(t testing.TB, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !slices.Contains(strings.Split(out, "\n"), l) {
			t.Errorf("output lacks the line %q; output:\n%s", l, out)
		}
	}
}
