package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/dedupe"
	"github.com/concordsync/concord/transform/normalize"
	"github.com/concordsync/concord/transform/transformtest"
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

type fieldMap = map[string]concord.Value

// Every customer in both systems at the end, each in its own shape: names,
// US dates and grouped amounts in the CRM; ISO codes, ISO dates, E.164 and
// plain decimals in the ERP.
func TestFinalValuesInEachSystemsShape(t *testing.T) {
	res, _ := story(t)
	want := map[concord.SystemID]map[string]fieldMap{
		crm: {
			// The ERP's corrections arrive as a state name, a US date and
			// a grouped amount. Fields that did not change keep what
			// people typed (see the README, "Notation").
			"C-1001": {"full_name": "Ada Lovelace", "email": "Ada@Analytical.example", "phone": "(415) 555-0132",
				"street": "400 Pine Street", "city": "Seattle", "state": "Washington", "zip": "98101",
				"country": "United States", "customer_since": "01/15/2025", "credit_limit": "15,000.00"},
			// Fixed by the rep and replayed: never written back to, so
			// it keeps what people typed.
			"C-1002": {"full_name": "Alan Turing", "email": "alan@bletchley.example", "phone": "(650) 555-0111",
				"state": "California", "zip": "94301", "country": "United States", "customer_since": "01/10/2025"},
			"C-1003": {"full_name": "Edsger Dijkstra", "email": "edsger@eindhoven.example", "state": "Texas",
				"zip": "78712", "country": "United States", "customer_since": "03/04/2025"},
			"C-1004": {"full_name": "Katherine Johnson", "email": "katherine@langley.example", "phone": "757-555-0199",
				"street": "1 Langley Boulevard", "city": "Hampton", "state": "Virginia", "zip": "23681",
				"country": "USA", "customer_since": "02/20/2025"},
			"C-1005": {"full_name": "Katharine Johnson", "email": "k.johnson@nasa.example", "street": "1 Langley Blvd",
				"city": "Hampton", "state": "VA", "zip": "23681", "country": "United States", "customer_since": "03/01/2025"},
			// Created in the ERP: the CRM's shape throughout.
			"C-2001": {"full_name": "Grace Hopper", "email": "grace@cobol.example", "phone": "+12125550100",
				"street": "7 Compiler Street", "city": "New York", "state": "New York", "zip": "10001",
				"country": "United States", "customer_since": "12/31/2024", "credit_limit": "5,000.00"},
			"C-2002": {"full_name": "Barbara Liskov", "email": "barbara@mit.example", "phone": "+16175550142",
				"state": "Massachusetts", "zip": "02139", "country": "United States", "customer_since": "02/01/2025"},
		},
		erp: {
			"C-1001": {"customer_name": "Ada Lovelace", "email": "Ada@analytical.example", "phone_e164": "+14155550132",
				"addr1": "400 Pine Street", "city": "Seattle", "region": "US-WA", "postal_code": "98101",
				"country_code": "US", "since_date": "2025-01-15", "credit_limit": "15000.00"},
			"C-1002": {"customer_name": "Alan Turing", "email": "alan@bletchley.example", "phone_e164": "+16505550111",
				"region": "US-CA", "postal_code": "94301", "country_code": "US", "since_date": "2025-01-10"},
			"C-1003": {"customer_name": "Edsger Dijkstra", "email": "edsger@eindhoven.example", "region": "US-TX",
				"postal_code": "78712", "country_code": "US", "since_date": "2025-03-04"},
			"C-1004": {"customer_name": "Katherine Johnson", "email": "katherine@langley.example", "phone_e164": "+17575550199",
				"addr1": "1 Langley Boulevard", "city": "Hampton", "region": "US-VA", "postal_code": "23681",
				"country_code": "US", "since_date": "2025-02-20"},
			"C-1005": {"customer_name": "Katharine Johnson", "email": "k.johnson@nasa.example", "addr1": "1 Langley Blvd",
				"city": "Hampton", "region": "US-VA", "postal_code": "23681", "country_code": "US", "since_date": "2025-03-01"},
			"C-2001": {"customer_name": "Grace Hopper", "email": "grace@cobol.example", "phone_e164": "+12125550100",
				"addr1": "7 Compiler Street", "city": "New York", "region": "US-NY", "postal_code": "10001",
				"country_code": "US", "since_date": "2024-12-31", "credit_limit": "5000.00"},
			"C-2002": {"customer_name": "Barbara Liskov", "email": "barbara@mit.example", "phone_e164": "+16175550142",
				"region": "US-MA", "postal_code": "02139", "country_code": "US", "since_date": "2025-02-01"},
		},
	}
	for _, id := range systems {
		if diff := cmp.Diff(want[id], res.final[id]); diff != "" {
			t.Errorf("%s at the end (-want +got):\n%s", id, diff)
		}
	}
}

func TestERPEditReachesCRMAsNamesAndUSDates(t *testing.T) {
	res, out := story(t)
	sc := sceneNamed(t, res, "2 erp edit")
	got := sc.records[crm]["C-1001"]
	want := fieldMap{"state": "Washington", "customer_since": "01/15/2025", "credit_limit": "15,000.00",
		"street": "400 Pine Street", "city": "Seattle", "zip": "98101"}
	for f, v := range want {
		if got[f] != v {
			t.Errorf("CRM C-1001 %s = %v; want %v", f, got[f], v)
		}
	}
	requireLines(t, out, "The CRM shows state Washington and customer_since 01/15/2025: names and US dates, as its users read them.")
}

func TestBadRecordsAreQuarantinedWithPreciseReasons(t *testing.T) {
	res, out := story(t)
	if len(res.deadLetters) != 2 {
		t.Fatalf("dead letters listed %d times; want 2 (after scenes 3 and 4)", len(res.deadLetters))
	}
	type letter struct {
		System    concord.SystemID
		Key       string
		Class     string
		RawField  string
		RawValue  concord.Value
		ReasonHas []string
	}
	var got []letter
	want := []letter{
		{crm, "C-1002", "invalid", "state", "Californa",
			[]string{`record "C-1002"`, `field "state"`, `"Californa"`, "unknown subdivision"}},
		{crm, "C-1003", "invalid", "customer_since", "04.03.2025",
			[]string{`record "C-1003"`, `field "customer_since"`, `"04.03.2025"`, `does not match layout "01/02/2006"`}},
		// The ERP's mapping only renames: the dictionary catches it,
		// naming both fields at fault.
		{erp, "C-2002", "invalid", "region", "MA",
			[]string{`record "C-2002"`, "2 dictionary violations", `field "phone" value "617-555-0142"`, `field "state" value "MA"`}},
	}
	for i, d := range res.deadLetters[0] {
		l := letter{System: d.System, Key: d.Key, Class: d.Class}
		if i < len(want) {
			l.RawField = want[i].RawField
			l.RawValue = d.Record.Fields[l.RawField] // the raw payload is kept
			for _, s := range want[i].ReasonHas {
				if strings.Contains(d.Reason, s) {
					l.ReasonHas = append(l.ReasonHas, s)
				}
			}
		}
		got = append(got, l)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dead letters after scene 3 (-want +got; a missing ReasonHas entry is not in the reason):\n%s\nreasons:\n%v",
			diff, res.deadLetters[0])
	}
	if len(res.deadLetters[1]) != 0 {
		t.Errorf("dead letters after the replays: %+v; want none", res.deadLetters[1])
	}

	// While quarantined, the records reached neither system; the record
	// typed correctly in the same minute did.
	sc := sceneNamed(t, res, "3 quarantined")
	for sys, key := range map[concord.SystemID]string{erp: "C-1002", crm: "C-2002"} {
		if _, ok := sc.records[sys][key]; ok {
			t.Errorf("quarantined %s reached the %s", key, sys)
		}
	}
	if _, ok := sc.records[erp]["C-1003"]; ok {
		t.Error("quarantined C-1003 reached the erp")
	}
	if _, ok := sc.records[erp]["C-1005"]; !ok {
		t.Error("C-1005, valid, did not reach the erp")
	}
	requireLines(t, out, "Dead letters: none.",
		"14:05  maria@ops.example replays dead letter #1 (crm C-1002): now in the erp: true",
		"14:05  maria@ops.example replays dead letter #3 (erp C-2002): now in the crm: true")
}

func TestDuplicateIsSuggestedNeverMerged(t *testing.T) {
	res, out := story(t)
	want := []dedupe.Suggestion{{A: "C-1004", B: "C-1005", Match: dedupe.Fuzzy, Score: 0.944, Evidence: []dedupe.Evidence{
		{Field: "full_name", Score: 0.951, A: "katherine johnson", B: "katharine johnson"},
		{Field: "street+city", Score: 0.910, A: "1 langley boulevard hampton", B: "1 langley blvd hampton"},
		{Field: "zip", Score: 1, A: "23681", B: "23681"},
	}}}
	if diff := cmp.Diff(want, res.suggestions, cmpopts.EquateApprox(0, 0.0005)); diff != "" {
		t.Errorf("dedupe suggestions (-want +got):\n%s", diff)
	}
	for _, id := range systems {
		for _, key := range []string{"C-1004", "C-1005"} {
			if _, ok := res.final[id][key]; !ok {
				t.Errorf("%s lost %s: a suggestion must never merge", id, key)
			}
		}
	}
	requireLines(t, out, "  C-1004 and C-1005: fuzzy match, score 0.944",
		"Nothing is merged: the CRM still has 7 records and the ERP 7; a person decides.")
}

func TestDictionaryIsPrinted(t *testing.T) {
	_, out := story(t)
	requireLines(t, out,
		"| Field | Type | Required | Rule | Description | Owner |",
		"| `state` | string | no | format ISO 3166-2 subdivision code | Billing address: state | Finance (ERP) |",
		"| `customer_since` | string | no | format date `2006-01-02` | Date of the first order | Sales (CRM) |")
}

func TestOutputIsDeterministic(t *testing.T) {
	_, first := story(t)
	for range 3 {
		if _, again := story(t); again != first {
			t.Fatalf("output changed between runs (-first +again):\n%s", cmp.Diff(first, again))
		}
	}
}

// The CRM's mapping: nothing is lost or altered on a round trip, and what
// cannot be read fails with an error naming the field.
func TestCRMMapping(t *testing.T) {
	m, err := mappingFor(crm)
	if err != nil {
		t.Fatal(err)
	}
	canonical := concord.Record{Key: "C-1", Fields: fieldMap{
		"name": "Ada Lovelace", "email": "ada@analytical.example", "phone": "+14155550132", "street": "1 Main St",
		"city": "Springfield", "state": "US-CA", "postal_code": "94105", "country": "US",
		"customer_since": "2025-03-04", "credit_limit": "1234567.50"}}
	transformtest.CanonicalRoundTrip(t, m.Inbound(), m.Outbound(), canonical)
	transformtest.NoMutation(t, m.Inbound(), concord.Record{Key: "C-1", Fields: fieldMap{"state": "california", "credit_limit": "1,000"}})
	rec := func(f fieldMap) concord.Record { return concord.Record{Key: "C-1", Fields: f} }
	transformtest.Table(t, m.Inbound(), []transformtest.Case{
		{Name: "as typed", In: rec(fieldMap{"state": "california", "customer_since": "03/04/2025", "phone": "415.555.0132",
			"country": "usa", "credit_limit": "12,500", "secret_notes": "dropped"}),
			Want: rec(fieldMap{"state": "US-CA", "customer_since": "2025-03-04", "phone": "+14155550132",
				"country": "US", "credit_limit": "12500.00"})},
		{Name: "misspelt state", In: rec(fieldMap{"state": "Californa"}),
			WantErr: normalize.ErrUnknownSubdivision, WantErrContains: `field "state"`},
		{Name: "date in another layout", In: rec(fieldMap{"customer_since": "04.03.2025"}),
			WantErr: normalize.ErrBadDate, WantErrContains: `field "customer_since"`},
		{Name: "amount with a cent too many", In: rec(fieldMap{"credit_limit": "10.001"}),
			WantErr: transform.ErrBadValue, WantErrContains: `field "credit_limit"`},
	})
}

func TestGroupThousands(t *testing.T) {
	for _, tc := range []struct{ in, want concord.Value }{
		{"0.50", "0.50"}, {"999.00", "999.00"}, {"1000.00", "1,000.00"}, {"1234567.89", "1,234,567.89"},
		{"-12500.00", "-12,500.00"}, {"100", "100"}, {nil, nil},
	} {
		if got, err := groupThousands(tc.in); err != nil || got != tc.want {
			t.Errorf("groupThousands(%v) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func sceneNamed(t testing.TB, res *outcome, title string) scene {
	t.Helper()
	for _, sc := range res.scenes {
		if sc.title == title {
			return sc
		}
	}
	t.Fatalf("no scene %q", title)
	return scene{}
}

// requireLines fails t unless out has each of lines as a whole line.
func requireLines(t testing.TB, out string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for l := range strings.Lines(out) {
		have[strings.TrimSuffix(l, "\n")] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("output lacks the line %q; output:\n%s", l, out)
		}
	}
}
