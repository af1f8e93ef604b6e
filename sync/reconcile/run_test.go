package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/transform"
)

func TestRecordFieldIsResolveRecordUnit(t *testing.T) {
	if RecordField != resolve.RecordUnit {
		t.Fatalf("RecordField %q; resolve.RecordUnit %q", RecordField, resolve.RecordUnit)
	}
}

// Canonical equality: other number types, time zones, map orders and list
// types that are equal Values are not differences; absent and nil differ.
func TestCanonicalEquality(t *testing.T) {
	at := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	a := scanner(
		rec("k1", "n", int64(1), "t", at, "m", map[string]any{"x": 1, "y": []any{"a"}}),
		rec("k2", "n", 1.5, "l", []string{"a", "b"}),
		rec("k3", "e", nil),
		rec("k4", "e", nil),
		rec("k5", "b", []byte("x")),
	)
	b := scanner(
		rec("k5", "b", "x"), // a string is not a byte string
		rec("k4"),           // absent differs from nil
		rec("k3", "e", nil),
		rec("k2", "n", "1.5", "l", []any{"a", "b"}), // the string "1.5" is not 1.5
		rec("k1", "n", 1.0, "t", at.In(time.FixedZone("X", -7*3600)), "m", map[string]any{"y": []string{"a"}, "x": uint8(1)}),
	)
	rep, err := Run(context.Background(), two(a, b))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"k2/n=conflicting", "k4/e=conflicting", "k5/b=conflicting"}
	if diff := cmp.Diff(want, ids(rep)); diff != "" {
		t.Errorf("differences (-want +got):\n%s", diff)
	}
	if d := rep.Differences[1]; !slices.Equal(d.Absent, []concord.SystemID{"b"}) || !slices.Equal(d.Present, []concord.SystemID{"a"}) {
		t.Errorf("absent field: Present %v Absent %v; want [a] [b]", d.Present, d.Absent)
	}
	if rep.Keys != 5 || rep.Matched != 2 {
		t.Errorf("Keys %d Matched %d; want 5, 2", rep.Keys, rep.Matched)
	}
}

// Config.Fields restricts the comparison; other fields may differ.
func TestFieldsRestrict(t *testing.T) {
	a := scanner(rec("k1", "x", 1, "noise", "a"), rec("k2", "x", 1))
	b := scanner(rec("k1", "x", 1, "noise", "b"), rec("k2", "x", 2))
	cfg := two(a, b)
	cfg.Fields = []string{"x"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"k2/x=conflicting"}, ids(rep)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, ok := rep.Differences[0].Values["a"]; !ok || len(rep.Differences[0].Values) != 2 {
		t.Errorf("Values %v", rep.Differences[0].Values)
	}
}

// Three sides: a record on two of them is missing on the third, and the
// two present still have their fields compared.
func TestThreeSides(t *testing.T) {
	a := scanner(rec("k1", "x", 1), rec("k2", "x", 1))
	b := scanner(rec("k1", "x", 1), rec("k2", "x", 2))
	c := scanner(rec("k1", "x", 1))
	cfg := Config{Sides: []Side{{System: "a", Scanner: a}, {System: "b", Scanner: b}, {System: "c", Scanner: c}},
		Owners: map[string]concord.SystemID{"x": "a", RecordField: "a"}}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"k2/(record)=missing", "k2/x=conflicting"}, ids(rep)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	want := []Repair{
		{Key: "k2", System: "b", Fixes: []Fix{{Field: "x", Rule: RuleSystemOfRecord, Winner: "a"}}},
		{Key: "k2", System: "c", Fixes: []Fix{{Field: RecordField, Rule: RuleSystemOfRecord, Winner: "a"}}},
	}
	if diff := cmp.Diff(want, rep.Plan.Repairs); diff != "" {
		t.Errorf("repairs (-want +got):\n%s", diff)
	}
}

// The plan: the owner wins when it holds the field; else the canonical
// value; else a person. A record its owner lacks is never deleted.
func TestPlanRules(t *testing.T) {
	a := scanner(rec("own", "x", 1), rec("canon", "y", 1), rec("none", "y", 1), rec("onlyA", "y", 1), rec("ownerLacks", "x", 5))
	b := scanner(rec("own", "x", 2), rec("canon", "y", 2), rec("none", "y", 2), rec("ownerLacks", "y", 5), rec("onlyB", "y", 1))
	know := KnowledgeFunc(func(_ context.Context, keys []string) (map[string]KeyState, error) {
		return map[string]KeyState{
			"canon": {Canonical: fields{"y": 2}},
			"onlyA": {Canonical: fields{"y": 1}},
		}, nil
	})
	cfg := two(a, b)
	cfg.Knowledge = know
	cfg.Owners = map[string]concord.SystemID{"x": "b", "elsewhere": "zzz"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantRepairs := []Repair{
		{Key: "canon", System: "a", Fixes: []Fix{{Field: "y", Rule: RuleCanonical}}},
		{Key: "onlyA", System: "b", Fixes: []Fix{{Field: RecordField, Rule: RuleCanonical}}},
		{Key: "own", System: "a", Fixes: []Fix{{Field: "x", Rule: RuleSystemOfRecord, Winner: "b"}}},
	}
	if diff := cmp.Diff(wantRepairs, rep.Plan.Repairs); diff != "" {
		t.Errorf("repairs (-want +got):\n%s", diff)
	}
	var person []string
	for _, it := range rep.Plan.NeedsPerson {
		person = append(person, it.Key+"/"+it.Field)
	}
	// ownerLacks: b owns x but lacks the field, and nobody knows y's value.
	want := []string{"none/y", "onlyB/(record)", "ownerLacks/x", "ownerLacks/y"}
	if diff := cmp.Diff(want, person); diff != "" {
		t.Errorf("needs a person (-want +got):\n%s", diff)
	}
	// The owner of existence lacking the record: a person, never a delete.
	cfg.Owners = map[string]concord.SystemID{RecordField: "a"}
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Plan.Repairs {
		if r.Key == "onlyB" {
			t.Errorf("planned %v for a record its owner lacks", r)
		}
	}
	if !slices.ContainsFunc(rep.Plan.NeedsPerson, func(it Item) bool { return it.Key == "onlyB" && strings.Contains(it.Reason, "lacks") }) {
		t.Errorf("onlyB not for a person: %v", rep.Plan.NeedsPerson)
	}
}

// A check that read nothing on a side fails, and still returns its report.
func TestNothingChecked(t *testing.T) {
	rep, err := Run(context.Background(), two(scanner(), scanner(rec("k", "x", 1))))
	if !errors.Is(err, ErrNothingChecked) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("err = %v; want ErrNothingChecked naming a", err)
	}
	if rep == nil || rep.Checked["b"] != 1 || rep.Total() != 1 {
		t.Fatalf("report %+v", rep)
	}
	_, err = Run(context.Background(), two(scanner(), scanner()))
	if !errors.Is(err, ErrNothingChecked) {
		t.Fatalf("both empty: %v", err)
	}
	// Deleted records do not count as checked.
	_, err = Run(context.Background(), two(scanner(concord.Record{Key: "k", Deleted: true}), scanner(rec("k"))))
	if !errors.Is(err, ErrNothingChecked) {
		t.Fatalf("only deleted records: %v", err)
	}
	if (&Report{}).Err() == nil {
		t.Error("the zero Report passes")
	}
}

func TestConfigErrors(t *testing.T) {
	s := scanner(rec("k"))
	for name, cfg := range map[string]Config{
		"one side":      {Sides: []Side{{System: "a", Scanner: s}}},
		"unnamed":       {Sides: []Side{{Scanner: s}, {System: "b", Scanner: s}}},
		"twice":         {Sides: []Side{{System: "a", Scanner: s}, {System: "a", Scanner: s}}},
		"no scanner":    {Sides: []Side{{System: "a", Scanner: s}, {System: "b"}}},
		"empty field":   {Sides: []Side{{System: "a", Scanner: s}, {System: "b", Scanner: s}}, Fields: []string{""}},
		"reserved":      {Sides: []Side{{System: "a", Scanner: s}, {System: "b", Scanner: s}}, Fields: []string{RecordField}},
		"field twice":   {Sides: []Side{{System: "a", Scanner: s}, {System: "b", Scanner: s}}, Fields: []string{"x", "x"}},
		"negative page": {Sides: []Side{{System: "a", Scanner: s}, {System: "b", Scanner: s}}, PageSize: -1},
	} {
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v; want ErrConfig", name, err)
		}
	}
}

// Failures name the system and record and keep their cause.
func TestFailures(t *testing.T) {
	boom := errors.New("boom")
	failing := func() *sliceScanner {
		return &sliceScanner{recs: []concord.Record{rec("k1"), rec("k2"), rec("k3")}, failAt: 2, failErr: connector.Permanent(boom)}
	}
	badTransform := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		if r.Key == "k2" {
			return concord.Record{}, &transform.FieldError{Key: r.Key, Field: "x", Err: transform.ErrBadValue}
		}
		return r, nil
	})
	panicky := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) { panic("transform exploded") })
	noKey := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) { r.Key = ""; return r, nil })
	ok := func() *sliceScanner { return scanner(rec("k1"), rec("k2")) }
	tests := []struct {
		name    string
		cfg     Config
		want    []error
		wantKey string
		text    string
	}{
		{"scan fails", two(ok(), failing()), []error{ErrScan, boom, connector.ErrPermanent}, "", `system "b": scan failed: page 2`},
		{"scan panics", two(&sliceScanner{recs: []concord.Record{rec("k")}, panicAt: 1}, ok()), []error{ErrPanic, ErrScan}, "", "scanner exploded"},
		{"stuck cursor", two(ok(), &sliceScanner{recs: []concord.Record{rec("k")}, stuck: true}), []error{ErrScan}, "", "did not advance"},
		{"transform fails", Config{Sides: []Side{{System: "a", Scanner: ok(), Transformer: badTransform}, {System: "b", Scanner: ok()}}},
			[]error{ErrTransform, transform.ErrBadValue}, "k2", `record "k2": transform failed`},
		{"transform panics", Config{Sides: []Side{{System: "a", Scanner: ok()}, {System: "b", Scanner: ok(), Transformer: panicky}}},
			[]error{ErrTransform, ErrPanic}, "k1", "transform exploded"},
		{"no key", Config{Sides: []Side{{System: "a", Scanner: ok(), Transformer: noKey}, {System: "b", Scanner: ok()}}},
			[]error{ErrTransform}, "k1", "no key"},
		{"unsupported value", two(scanner(rec("k", "f", struct{}{})), ok()), []error{ErrTransform, concord.ErrUnsupportedValue}, "k", `field "f"`},
		{"duplicate key", two(scanner(rec("k1", "x", 1), rec("k1", "x", 1)), ok()), []error{ErrDuplicateKey}, "k1", "twice"},
		{"knowledge fails", func() Config {
			c := two(scanner(rec("k1", "x", 1)), scanner(rec("k1", "x", 2)))
			c.Knowledge = KnowledgeFunc(func(context.Context, []string) (map[string]KeyState, error) { return nil, boom })
			return c
		}(), []error{ErrKnowledge, boom}, "", `from "k1"`},
		{"knowledge panics", func() Config {
			c := two(scanner(rec("k1", "x", 1)), scanner(rec("k1", "x", 2)))
			c.Knowledge = KnowledgeFunc(func(context.Context, []string) (map[string]KeyState, error) { panic("engine exploded") })
			return c
		}(), []error{ErrKnowledge, ErrPanic}, "", "engine exploded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Run(context.Background(), tt.cfg)
			if err == nil || rep != nil {
				t.Fatalf("Run = %v, %v; want an error and no report", rep, err)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q is not %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
			var se *SideError
			if errors.As(err, &se) && se.Key != tt.wantKey {
				t.Errorf("SideError.Key %q; want %q", se.Key, tt.wantKey)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, two(scanner(rec("k")), scanner(rec("k")))); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	// Cancelled during the scan: a scanner that fails with ctx.Err()
	// returns the bare context error.
	ctx, cancel = context.WithCancel(context.Background())
	s := &sliceScanner{recs: []concord.Record{rec("a"), rec("b"), rec("c")}}
	c := two(cancelAfter{s, cancel, 1, new(int)}, scanner(rec("a")))
	if _, err := Run(ctx, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
}

type cancelAfter struct {
	connector.Scanner
	cancel func()
	n      int
	calls  *int
}

func (c cancelAfter) Scan(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	*c.calls++
	if *c.calls > c.n {
		c.cancel()
	}
	return c.Scanner.Scan(ctx, cur, limit)
}

// Key orders may differ between systems: the result does not depend on
// them.
func TestKeyOrderDoesNotMatter(t *testing.T) {
	var a, b []concord.Record
	for i := range 300 {
		a = append(a, rec(fmt.Sprintf("k%03d", i), "x", i))
		if i%7 != 0 {
			v := i
			if i%11 == 0 {
				v = -i
			}
			b = append(b, rec(fmt.Sprintf("k%03d", i), "x", v))
		}
	}
	sorted, err := Run(context.Background(), two(scanner(a...), scanner(b...)))
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(b)
	ra := slices.Clone(a)
	for i := range ra { // a shuffle that is the same every run
		j := (i * 37) % len(ra)
		ra[i], ra[j] = ra[j], ra[i]
	}
	mixed, err := Run(context.Background(), two(scanner(ra...), scanner(b...)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sorted, mixed); diff != "" {
		t.Errorf("orders change the report (-sorted +mixed):\n%s", diff)
	}
	if sorted.ByClass[Missing] != 43 || sorted.ByClass[Conflicting] != 24 {
		t.Errorf("ByClass %v; want 43 missing, 24 conflicting", sorted.ByClass)
	}
}

// A key that differed in the first pass and agrees in the second changed
// while the check ran: counted as settled, not reported.
func TestChangedDuringCheck(t *testing.T) {
	b := scanner(rec("k1", "x", 2), rec("k2", "x", 2))
	b.between = func(s *sliceScanner) { s.recs = []concord.Record{rec("k1", "x", 1), rec("k2", "x", 2)} }
	rep, err := Run(context.Background(), two(scanner(rec("k1", "x", 1), rec("k2", "x", 1)), b))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Settled != 1 || !slices.Equal(ids(rep), []string{"k2/x=conflicting"}) {
		t.Errorf("Settled %d, differences %v; want 1 and k2 only", rep.Settled, ids(rep))
	}
}

// With no difference, each side is read once.
func TestEqualSidesReadOnce(t *testing.T) {
	a, b := scanner(rec("k", "x", 1)), scanner(rec("k", "x", 1.0))
	rep, err := Run(context.Background(), two(a, b))
	if err != nil || rep.Total() != 0 || rep.Matched != 1 {
		t.Fatalf("Run = %+v, %v", rep, err)
	}
	if a.scans != 1 || b.scans != 1 {
		t.Errorf("scans %d, %d; want 1 each", a.scans, b.scans)
	}
}

// A transform that changes keys: pass 2 transforms every record, and
// records are matched by their canonical keys.
func TestTransformedKeys(t *testing.T) {
	prefix := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		r.Key = "C-" + r.Key
		return r, nil
	})
	a := scanner(rec("C-1", "x", 1), rec("C-2", "x", 1))
	b := scanner(rec("1", "x", 1), rec("2", "x", 2), rec("3", "x", 3))
	cfg := Config{Sides: []Side{{System: "a", Scanner: a}, {System: "b", Scanner: b, Transformer: prefix}}}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"C-2/x=conflicting", "C-3/(record)=missing"}, ids(rep)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Two system keys mapped to one canonical key: a duplicate.
	same := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) { r.Key = "same"; return r, nil })
	cfg.Sides[1].Transformer = same
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("err = %v; want ErrDuplicateKey", err)
	}
}

// Classes from the engine's knowledge: pending anywhere is in flight,
// behind on the field (or the record) is stale.
func TestClasses(t *testing.T) {
	a := scanner(rec("p", "x", 1), rec("s", "x", 1, "y", 1), rec("r", "x", 1), rec("c", "x", 1))
	b := scanner(rec("p", "x", 2), rec("s", "x", 2, "y", 2), rec("c", "x", 2))
	cfg := two(a, b)
	cfg.KnowledgeBatch = 1
	calls := 0
	cfg.Knowledge = KnowledgeFunc(func(_ context.Context, keys []string) (map[string]KeyState, error) {
		calls++
		if len(keys) != 1 {
			t.Errorf("batch of %d keys; want 1", len(keys))
		}
		return map[string]KeyState{
			"p": {Pending: map[concord.SystemID]bool{"a": true}},
			"s": {Behind: map[concord.SystemID][]string{"b": {"y"}}},
			"r": {Behind: map[concord.SystemID][]string{"b": {RecordField}}},
			"c": {Behind: map[concord.SystemID][]string{"a": {"other"}}, Pending: map[concord.SystemID]bool{"zzz": true}},
		}, nil
	})
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"c/x=conflicting", "p/x=in-flight", "r/(record)=stale", "s/x=conflicting", "s/y=stale"}
	if diff := cmp.Diff(want, ids(rep)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if calls != 4 {
		t.Errorf("%d Known calls; want 4", calls)
	}
}

// Against connector/fake systems, with a Mapping, concurrently (Run keeps
// no shared state; run with -race).
func TestFakeSystemsConcurrently(t *testing.T) {
	crm, erp := fake.New("crm"), fake.New("erp")
	for i := range 50 {
		k := fmt.Sprintf("c%02d", i)
		crm.Edit(k, fields{"name": "N" + k, "zip": "1010"})
		if i%10 != 3 {
			erp.Edit(k, fields{"customer_name": "N" + k, "postcode": "1010"})
		}
	}
	erp.Edit("c07", fields{"postcode": "8010"})
	in := transform.MustMapping(transform.Rename("customer_name", "name"), transform.Rename("postcode", "zip")).Inbound()
	cfg := Config{Sides: []Side{{System: "crm", Scanner: crm}, {System: "erp", Scanner: erp, Transformer: in}}, PageSize: 7}
	var wg sync.WaitGroup
	reports := make([]*Report, 8)
	errs := make([]error, 8)
	for i := range reports {
		wg.Go(func() { reports[i], errs[i] = Run(context.Background(), cfg) })
	}
	wg.Wait()
	want := []string{"c03/(record)=missing", "c07/zip=conflicting", "c13/(record)=missing", "c23/(record)=missing",
		"c33/(record)=missing", "c43/(record)=missing"}
	for i, rep := range reports {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if diff := cmp.Diff(want, ids(rep)); diff != "" {
			t.Errorf("run %d (-want +got):\n%s", i, diff)
		}
	}
}

// Kept values are copies: changing the scanner's records afterwards does
// not change the report.
func TestValuesAreCopies(t *testing.T) {
	list := []any{"a"}
	a := scanner(rec("k", "l", list))
	rep, err := Run(context.Background(), two(a, scanner(rec("k", "l", []any{"b"}))))
	if err != nil {
		t.Fatal(err)
	}
	list[0] = "changed"
	if got := rep.Differences[0].Values["a"].([]any)[0]; got != "a" {
		t.Errorf("value %v; want a copy holding a", got)
	}
}
