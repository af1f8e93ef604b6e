package main

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/transform"
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

// recorder holds the events of one scene, for the audittest helpers.
func recorder(t testing.TB, sc scene) *audittest.Recorder {
	t.Helper()
	r := audittest.New()
	if err := r.Emit(context.Background(), sc.events); err != nil {
		t.Fatal(err)
	}
	return r
}

// The values each system holds after each scene, in its own field names.
// Each row lists what changed since the row before.
func TestEverySystemAfterEveryScene(t *testing.T) {
	res, _ := story(t)
	steps := []struct {
		title             string
		portal, warehouse map[string]concord.Value
	}{
		{
			title: "setup",
			portal: map[string]concord.Value{"email": "ann@lee.example", "phone": "+44 20 7946 0000", "company": "Lee & Co",
				"ship_street": "1 Old Road", "ship_city": "Leeds", "ship_zip": "LS1 1AA", "ship_country": "United Kingdom", "credit_line": 5000},
			// No email: the warehouse does not keep it.
			warehouse: map[string]concord.Value{"contact_phone": "+44 20 7946 0000", "company_name": "Lee & Co",
				"addr_line": "1 Old Road", "town": "Leeds", "postcode": "LS1 1AA", "country_code": "GB", "credit_limit": 5000},
		},
		{
			title:     "1 new address",
			portal:    map[string]concord.Value{"ship_street": "Keizersgracht 12", "ship_city": "Amsterdam", "ship_zip": "1015 CJ", "ship_country": "Netherlands"},
			warehouse: map[string]concord.Value{"addr_line": "Keizersgracht 12", "town": "Amsterdam", "postcode": "1015 CJ", "country_code": "NL"},
		},
		{
			// Both edits survive, in both systems.
			title:     "2 two fields",
			portal:    map[string]concord.Value{"phone": "+31 20 555 0199", "company": "Lee & Co B.V."},
			warehouse: map[string]concord.Value{"contact_phone": "+31 20 555 0199", "company_name": "Lee & Co B.V."},
		},
		{
			// The warehouse edited last: its complete address wins.
			title:     "3 address group",
			portal:    map[string]concord.Value{"ship_zip": "1015 CK"},
			warehouse: map[string]concord.Value{"postcode": "1015 CK"},
		},
		{
			// The owner's value, although the portal edited later.
			title:     "4a owner wins",
			portal:    map[string]concord.Value{"credit_line": 4000},
			warehouse: map[string]concord.Value{"credit_limit": 4000},
		},
		{
			// Nothing changed: the portal's 12000 was reverted.
			title: "4b non-owner refused",
		},
	}
	if len(res.scenes) != len(steps) {
		t.Fatalf("run reported %d scenes; want %d", len(res.scenes), len(steps))
	}
	want := map[string]map[string]concord.Value{"portal": {}, "warehouse": {}}
	for i, step := range steps {
		maps.Copy(want["portal"], step.portal)
		maps.Copy(want["warehouse"], step.warehouse)
		sc := res.scenes[i]
		t.Run(step.title, func(t *testing.T) {
			if sc.title != step.title {
				t.Fatalf("scene %d is %q; want %q", i, sc.title, step.title)
			}
			for _, id := range systems {
				// Numbers compare by value: the durable store gives
				// back an int64 where the story wrote an int.
				if got := sc.records[id]; !concord.EqualValues(want[string(id)], got) {
					diff := cmp.Diff(want[string(id)], got)
					t.Errorf("%s after scene %q (-want +got):\n%s", id, sc.title, diff)
				}
			}
		})
	}
}

func TestTwoFieldsBothSurviveWhereRecordLevelLWWLosesOne(t *testing.T) {
	res, out := story(t)
	sc := res.scenes[2]
	if diff := cmp.Diff([]lostEdit{{portal, "phone"}}, sc.lost); diff != "" {
		t.Errorf("edits a record-level last-writer-wins loses (-want +got):\n%s", diff)
	}
	rec := recorder(t, sc)
	rec.RequireNone(t, audittest.Match{Kind: audit.ConflictDetected})
	rec.Require(t, audittest.Match{Kind: audit.MergeDecided, System: "portal", Unit: "phone", Rule: "fast-forward"})
	rec.Require(t, audittest.Match{Kind: audit.MergeDecided, System: "warehouse", Unit: "company", Rule: "fast-forward"})
	requireLines(t, out,
		"A record-level last-writer-wins sync would have copied the warehouse record (modified last) over the portal one,",
		"and lost the portal's edit of phone: phone would be back to +44 20 7946 0000.")
}

func TestAddressGroupNeverMixes(t *testing.T) {
	res, out := story(t)
	sc := res.scenes[3]
	// The two complete addresses, canonical: the portal's new one and the
	// warehouse's fix of the old one.
	portalAddr := map[string]concord.Value{"street": "Rue de la Loi 5", "city": "Brussels", "postal_code": "1000", "country": "BE"}
	fixedAddr := map[string]concord.Value{"street": "Keizersgracht 12", "city": "Amsterdam", "postal_code": "1015 CK", "country": "NL"}
	// The same, as each system holds them.
	for _, tc := range []struct {
		sys        concord.SystemID
		fields     []string
		new, fixed []concord.Value
	}{
		{portal, []string{"ship_street", "ship_city", "ship_zip", "ship_country"},
			[]concord.Value{"Rue de la Loi 5", "Brussels", "1000", "Belgium"}, []concord.Value{"Keizersgracht 12", "Amsterdam", "1015 CK", "Netherlands"}},
		{warehouse, []string{"addr_line", "town", "postcode", "country_code"},
			[]concord.Value{"Rue de la Loi 5", "Brussels", "1000", "BE"}, []concord.Value{"Keizersgracht 12", "Amsterdam", "1015 CK", "NL"}},
	} {
		got := make([]concord.Value, len(tc.fields))
		for i, f := range tc.fields {
			got[i] = sc.records[tc.sys][f]
		}
		if !concord.EqualValues(got, tc.new) && !concord.EqualValues(got, tc.fixed) {
			t.Errorf("%s ships to %v: a mix of %v and %v", tc.sys, got, tc.new, tc.fixed)
		} else if diff := cmp.Diff(tc.fixed, got); diff != "" {
			t.Errorf("%s address (-want the warehouse's, edited last +got):\n%s", tc.sys, diff)
		}
	}

	rec := recorder(t, sc)
	conflict := rec.Require(t, audittest.Match{Kind: audit.ConflictDetected, Unit: "address"})
	var cands []map[string]concord.Value
	for _, c := range conflict.Candidates {
		if !c.Canonical {
			cands = append(cands, c.Values)
		}
	}
	if diff := cmp.Diff([]map[string]concord.Value{portalAddr, fixedAddr}, cands); diff != "" {
		t.Errorf("conflict candidates (-want +got):\n%s", diff)
	}
	// Every decision about the address is one of the complete addresses.
	for _, ev := range rec.Filter(audittest.Match{Kind: audit.MergeDecided, Unit: "address"}) {
		if !concord.EqualValues(ev.To, portalAddr) && !concord.EqualValues(ev.To, fixedAddr) {
			t.Errorf("merge decided a mixed address %v", ev.To)
		}
	}
	rec.RequireCount(t, audittest.Match{Kind: audit.MergeDecided, Unit: "address", System: "warehouse", Rule: resolve.RuleLastWriterWins}, 1)
	requireLines(t, out,
		"A field-by-field merge (latest edit per field) would ship to: [Rue de la Loi 5, Brussels, 1015 CK, BE],",
		"  an address nobody entered.",
		"Every system ships to Keizersgracht 12, Amsterdam, 1015 CK, NL: the warehouse's complete address.",
		`Why (audit): rule last-writer-wins: "warehouse" modified it last, at 2026-03-02T11:02:00Z (record time).`)
}

func TestWarehouseOwnsCreditLimit(t *testing.T) {
	res, out := story(t)
	both := recorder(t, res.scenes[4])
	both.Require(t, audittest.Match{Kind: audit.ConflictDetected, Unit: "credit_limit"})
	ev := both.Require(t, audittest.Match{Kind: audit.MergeDecided, Unit: "credit_limit"})
	if ev.System != "warehouse" || ev.Rule != resolve.RuleSystemOfRecord || !concord.EqualValues(ev.To["credit_limit"], 4000) {
		t.Errorf("credit_limit decided for %s by %q to %v; want warehouse, %q, 4000", ev.System, ev.Rule, ev.To, resolve.RuleSystemOfRecord)
	}

	portalOnly := recorder(t, res.scenes[5])
	ref := portalOnly.Require(t, audittest.Match{Kind: audit.ChangeRefused, Unit: "credit_limit", System: "portal", Rule: resolve.RuleSystemOfRecord})
	if !strings.Contains(ref.Reason, `"portal" may not change it`) {
		t.Errorf("refusal reason %q does not say the portal may not change it", ref.Reason)
	}
	portalOnly.RequireNone(t, audittest.Match{Kind: audit.MergeDecided, Unit: "credit_limit"})
	requireLines(t, out,
		`Why (audit): rule system-of-record: "warehouse" owns "credit_limit".`,
		"The portal shows credit_line 4000 again.",
		`Why (audit): rule system-of-record: "warehouse" owns "credit_limit"; "portal" may not change it.`)
}

func TestEchoesCauseNoWork(t *testing.T) {
	_, out := story(t)
	// Every cycle with work is followed by one that reads the writes back;
	// run fails if that one edits or writes anything.
	if got := strings.Count(out, "reads its own writes back: no edit, no write"); got != 7 {
		t.Errorf("%d quiet echo cycles; want 7 (one per working cycle)", got)
	}
}

func TestOutputIsDeterministic(t *testing.T) {
	_, first := story(t)
	for range 3 {
		if _, again := story(t); again != first {
			t.Fatalf("output changed between runs (-first +again):\n%s", cmp.Diff(first, again))
		}
	}
}

// The mappings the story is built on: nothing is lost or altered on a trip
// through either system, and a country the portal cannot name is an error
// that names the field.
func TestMappings(t *testing.T) {
	canonical := concord.Record{Key: customer, Fields: map[string]concord.Value{
		"phone": "+31 20 555 0199", "company": "Lee & Co", "street": "Keizersgracht 12", "city": "Amsterdam",
		"postal_code": "1015 CJ", "country": "NL", "credit_limit": 5000}}
	withEmail := canonical.Clone()
	withEmail.Fields["email"] = "ann@lee.example"
	for _, tc := range []struct {
		sys concord.SystemID
		rec concord.Record // what the system can hold
	}{{portal, withEmail}, {warehouse, canonical}} {
		t.Run(string(tc.sys), func(t *testing.T) {
			m, err := mappingFor(tc.sys)
			if err != nil {
				t.Fatal(err)
			}
			transformtest.CanonicalRoundTrip(t, m.Inbound(), m.Outbound(), tc.rec)
			native, err := m.Outbound().Transform(context.Background(), tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			transformtest.RoundTrip(t, m.Inbound(), m.Outbound(), native)
		})
	}
	m, err := mappingFor(portal)
	if err != nil {
		t.Fatal(err)
	}
	transformtest.Table(t, m.Inbound(), []transformtest.Case{
		{Name: "name to code", In: concord.Record{Key: customer, Fields: map[string]concord.Value{"ship_country": "Belgium"}},
			Want: concord.Record{Key: customer, Fields: map[string]concord.Value{"country": "BE"}}},
		{Name: "unknown country", In: concord.Record{Key: customer, Fields: map[string]concord.Value{"ship_country": "Atlantis"}},
			WantErr: transform.ErrBadValue, WantErrContains: "ship_country"},
		{Name: "not a string", In: concord.Record{Key: customer, Fields: map[string]concord.Value{"ship_country": 7}},
			WantErr: transform.ErrWrongType},
	})
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

// The portal's new row has credit_line NULL: the portal reports it like any
// column, the gate holds it (the warehouse owns the field and nothing
// canonical exists to revert to), and the warehouse's first limit settles
// it, written to the portal.
func TestSignupNullHeldUntilTheOwnerSetsIt(t *testing.T) {
	res, out := story(t)
	rec := recorder(t, res.scenes[0])
	rec.RequireCount(t, audittest.Match{Kind: audit.ConflictHeld, Unit: "credit_limit", System: "portal", Rule: resolve.RuleSystemOfRecord}, 1)
	ev := rec.Require(t, audittest.Match{Kind: audit.MergeDecided, Unit: "credit_limit", System: "warehouse", Rule: resolve.RuleSystemOfRecord})
	if !concord.EqualValues(ev.To["credit_limit"], 5000) {
		t.Errorf("credit_limit settled to %v; want the warehouse's 5000", ev.To)
	}
	// Nothing else is held, then or later.
	for i, sc := range res.scenes {
		want := 0
		if i == 0 {
			want = 1
		}
		recorder(t, sc).RequireCount(t, audittest.Match{Kind: audit.ConflictHeld}, want)
	}
	requireLines(t, out, `At signup the portal's row had credit_line NULL; held (audit): rule system-of-record: "warehouse" owns "credit_limit"; "portal" may not change it; no canonical value to revert to.`)
}

// The systems are real: the warehouse's API saw the clerks' edits as
// PATCHes without preconditions, and Concord's writes as a create that
// refuses to overwrite (If-None-Match: *) and conditional, idempotent
// PATCHes (If-Match, Idempotency-Key), each read back (verification); every
// request carried the token. The portal's row was written once per edit,
// by a person's SQL or by Concord.
func TestWritesThroughTheRealSystems(t *testing.T) {
	res, _ := story(t)
	var clerk, creates, patches, reads int
	for _, r := range res.requests {
		if got := r.Header.Get("Authorization"); got != "Bearer "+warehouseToken {
			t.Errorf("%s %s?%s: Authorization %q; want the bearer token", r.Method, r.Path, r.Query, got)
		}
		if r.Status >= 300 {
			t.Errorf("%s %s?%s: status %d", r.Method, r.Path, r.Query, r.Status)
		}
		switch {
		case r.Method == "PUT":
			creates++
			if r.Header.Get("If-None-Match") != "*" {
				t.Errorf("create %s without If-None-Match: *: it could overwrite a record created meanwhile", r.Path)
			}
		case r.Method == "PATCH" && r.Header.Get("If-Match") == "":
			clerk++
		case r.Method == "PATCH":
			patches++
			if r.Header.Get("Idempotency-Key") == "" {
				t.Errorf("Concord's PATCH %s without an Idempotency-Key", r.Path)
			}
		case r.Method == "GET" && r.Path == "/v1/records/"+customer:
			reads++
		}
	}
	// Clerks: 09:05, 10:01, 11:02, 12:00. Concord: the create at 09:00,
	// then the warehouse is written at 09:30 (address), 10:01 (phone).
	if clerk != 4 || creates != 1 || patches != 2 {
		t.Errorf("the API saw %d clerk PATCHes, %d creates and %d conditional PATCHes; want 4, 1 and 2", clerk, creates, patches)
	}
	if reads < creates+patches {
		t.Errorf("%d GETs of the record for %d writes; want each write read back", reads, creates+patches)
	}
	// The insert, five UPDATEs by people (09:30, 10:00, 11:00, 12:01,
	// 12:10) and five by Concord (09:05, 10:01, 11:02, 12:01, 12:10).
	if res.portalVersion != 11 {
		t.Errorf("portal row version %d; want 11 (one per write)", res.portalVersion)
	}
}
