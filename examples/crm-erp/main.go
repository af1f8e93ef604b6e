// Command crm-erp is a runnable tour of Concord's trusted transforms. A CRM
// and an ERP keep the same customers in different shapes:
//
//	           CRM (as people type it)     ERP and canonical
//	state      "California"                "US-CA" (ISO 3166-2)
//	date       "03/04/2025" (MM/DD/YYYY)   "2025-03-04" (ISO 8601)
//	phone      "(415) 555-0132"            "+14155550132" (E.164)
//	country    "United States"             "US" (ISO 3166-1 alpha-2)
//	amount     "12,500.00"                 "12500.00" (decimal string)
//
// Each system has a transform.Mapping whose converters are normalize's
// normalisers, and a data dictionary (transform/dict) checks every record in
// canonical shape at the boundary. The story:
//
//  1. Customers created in either system reach the other in its own shape.
//  2. An edit in the ERP shows up in the CRM as a state name and a US date.
//  3. A misspelt state and a date in the wrong layout (CRM) and a record
//     that breaks the dictionary (ERP) are quarantined as dead letters with
//     precise reasons; the rest syncs.
//  4. People fix the records where they were typed and replay the dead
//     letters by ID: they sync, and the dead letters are gone.
//  5. A duplicate check over the CRM finds two contacts that are the same
//     person typed differently: a suggestion with its evidence, never
//     merged automatically.
//
// Run it with
//
//	go run ./examples/crm-erp
//
// Its output is deterministic: the systems and the engine share a story
// clock that stands still until the story moves it.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/dedupe"
	"github.com/concordsync/concord/transform/dict"
	"github.com/concordsync/concord/transform/normalize"
)

func main() {
	if _, err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "crm-erp:", err)
		os.Exit(1)
	}
}

// The two systems.
const (
	crm concord.SystemID = "crm"
	erp concord.SystemID = "erp"
)

// systems lists the systems in the order the story shows them.
var systems = []concord.SystemID{crm, erp}

// usDate is the CRM's date layout; the ERP and the canonical records use
// time.DateOnly.
const usDate = "01/02/2006"

// field says what each system calls one canonical field and how the CRM
// writes it. The ERP already writes every value in canonical form: its
// mapping only renames.
type field struct {
	canonical, crm, erp string
	// crmConv converts between the CRM's notation and the canonical one;
	// nil means the CRM writes the canonical value as it is.
	crmConv *transform.Converter
}

func (f field) in(s concord.SystemID) string {
	if s == crm {
		return f.crm
	}
	return f.erp
}

// fields lists the canonical fields in display order. Both mappings are
// built from it (see mappingFor).
var fields = []field{
	{"name", "full_name", "customer_name", nil},
	{"email", "email", "email", &transform.Converter{In: normalize.Email(), Out: normalize.Email()}},
	// People type phone numbers any way they like; the CRM displays
	// what the ERP sends, in E.164.
	{"phone", "phone", "phone_e164", &transform.Converter{In: normalize.Phone("US"), Out: normalize.Phone("US")}},
	{"street", "street", "addr1", nil},
	{"city", "city", "city", nil},
	{"state", "state", "region", &transform.Converter{In: normalize.SubdivisionCode("US"), Out: normalize.SubdivisionName("US")}},
	{"postal_code", "zip", "postal_code", nil},
	{"country", "country", "country_code", &transform.Converter{In: normalize.CountryAlpha2(), Out: normalize.CountryName()}},
	{"customer_since", "customer_since", "since_date",
		&transform.Converter{In: normalize.Date(usDate, time.DateOnly), Out: normalize.Date(time.DateOnly, usDate)}},
	{"credit_limit", "credit_limit", "credit_limit", &transform.Converter{
		In:  normalize.Amount("USD", normalize.AmountFormat{Thousands: ','}),
		Out: normalize.Chain(normalize.Amount("USD", normalize.AmountFormat{}), groupThousands),
	}},
}

// mappingFor declares how system s names and shapes the canonical fields.
// Strict: fields the table does not list stay in their system.
func mappingFor(s concord.SystemID) (*transform.Mapping, error) {
	rules := []transform.Rule{transform.Strict()}
	for _, f := range fields {
		if s == crm && f.crmConv != nil {
			rules = append(rules, transform.RenameWith(f.crm, f.canonical, *f.crmConv))
		} else {
			rules = append(rules, transform.Rename(f.in(s), f.canonical))
		}
	}
	return transform.NewMapping(rules...)
}

// groupThousands writes a plain decimal string ("12500.00") the way the
// CRM displays amounts: "12,500.00".
func groupThousands(v concord.Value) (concord.Value, error) {
	s, ok := v.(string)
	if !ok {
		return v, nil // nil stays nil; Amount has rejected anything else
	}
	sign, s := "", strings.TrimPrefix(s, "-")
	if s != v {
		sign = "-"
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return sign + b.String(), nil
}

// newDictionary declares the canonical fields that both systems must
// satisfy. normalize.Kinds registers the ISO code lists (countries,
// subdivisions, currencies) as kinds beside the built-in ones.
func newDictionary() (*dict.Dictionary, error) {
	return dict.Options{Unknown: dict.RejectUnknown, Kinds: normalize.Kinds(nil)}.New(
		dict.Field{Name: "name", Type: dict.String, Required: true, MinLen: 1,
			Description: "Full name of the customer's contact", Owner: "Sales (CRM)"},
		dict.Field{Name: "email", Type: dict.String, Kind: dict.KindEmail,
			Description: "Contact's e-mail address", Owner: "Sales (CRM)"},
		dict.Field{Name: "phone", Type: dict.String, Kind: dict.KindE164,
			Description: "Contact's phone number", Owner: "Sales (CRM)"},
		dict.Field{Name: "street", Type: dict.String, MaxLen: 80,
			Description: "Billing address: street and number", Owner: "Finance (ERP)"},
		dict.Field{Name: "city", Type: dict.String, MaxLen: 40,
			Description: "Billing address: city", Owner: "Finance (ERP)"},
		dict.Field{Name: "state", Type: dict.String, Kind: dict.KindSubdivision,
			Description: "Billing address: state", Owner: "Finance (ERP)"},
		dict.Field{Name: "postal_code", Type: dict.String, Pattern: `[0-9]{5}(-[0-9]{4})?`,
			Description: "Billing address: ZIP code", Owner: "Finance (ERP)"},
		dict.Field{Name: "country", Type: dict.String, Required: true, Kind: dict.KindCountry,
			Description: "Billing address: country", Owner: "Finance (ERP)"},
		dict.Field{Name: "customer_since", Type: dict.String, Kind: dict.KindDate(time.DateOnly),
			Description: "Date of the first order", Owner: "Sales (CRM)"},
		dict.Field{Name: "credit_limit", Type: dict.Decimal, Range: dict.AtLeast(0),
			Description: "Credit limit in US dollars", Owner: "Finance (ERP)"},
	)
}

// world is the running story: the systems, the engine, and what the audit
// sink collected.
type world struct {
	out    io.Writer
	clock  *storyClock
	engine *recsync.Engine
	fakes  map[concord.SystemID]*fake.System
	maps   map[concord.SystemID]*transform.Mapping
	dict   *dict.Dictionary
	events []audit.Event // every event the engine emitted, in order
	result outcome
}

func newWorld(out io.Writer, st store.Store) (*world, error) {
	d, err := newDictionary()
	if err != nil {
		return nil, err
	}
	w := &world{out: out, clock: &storyClock{}, dict: d,
		fakes: map[concord.SystemID]*fake.System{}, maps: map[concord.SystemID]*transform.Mapping{}}
	w.clock.Set("09:00")
	cfg := recsync.Config{
		Resolver:   resolve.LastWriterWins(),
		Dictionary: d,
		// A host would also keep the whole trail (audit.JSONLines to a
		// file); the story collects it to print what was quarantined.
		Audit: audit.SinkFunc(func(_ context.Context, events []audit.Event) error {
			w.events = append(w.events, events...)
			return nil
		}),
		Now:   w.clock.Now,
		Store: st,
		// Failures here are bad data, not flaky systems: nothing to
		// retry within a cycle.
		Retry: recsync.RetryPolicy{MaxAttempts: 1},
	}
	for _, id := range systems {
		m, err := mappingFor(id)
		if err != nil {
			return nil, fmt.Errorf("mapping of %s: %w", id, err)
		}
		f := fake.New(string(id), fake.WithClock(w.clock.Now))
		w.fakes[id], w.maps[id] = f, m
		cfg.Systems = append(cfg.Systems, recsync.System{ID: id, Connector: f, Inbound: m.Inbound(), Outbound: m.Outbound()})
	}
	e, err := recsync.New(cfg)
	if err != nil {
		return nil, err
	}
	w.engine = e
	return w, nil
}

// run tells the story to out and returns what its test checks.
func run(out io.Writer) (*outcome, error) {
	store, done, err := tempStore("crm-erp")
	if err != nil {
		return nil, err
	}
	defer done()
	w, err := newWorld(out, store)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := w.introduce(); err != nil {
		return nil, err
	}
	for _, s := range []func(context.Context) error{w.newCustomers, w.erpEdit, w.badInput, w.fixAndReplay, w.duplicates} {
		if err := s(ctx); err != nil {
			return &w.result, err
		}
	}
	return &w.result, w.final()
}

func (w *world) introduce() error {
	fmt.Fprintln(w.out, "Concord crm-erp: a CRM and an ERP that write the same facts differently.")
	fmt.Fprintln(w.out)
	fmt.Fprintln(w.out, "The data dictionary both systems must satisfy (canonical fields), as the business teams agreed it:")
	fmt.Fprintln(w.out)
	var md bytes.Buffer
	if err := w.dict.Markdown(&md); err != nil {
		return err
	}
	w.out.Write(md.Bytes())
	fmt.Fprintln(w.out)
	fmt.Fprintln(w.out, "What each system calls the fields (the CRM's values pass through normalize's converters):")
	w.table("canonical", func(f field) []string { return []string{f.canonical, f.crm, f.erp} }, "crm", "erp")
	return nil
}

// ---- the scenes ----

func (w *world) newCustomers(ctx context.Context) error {
	w.heading("1. New customers in each system")
	w.edit("09:00", crm, "C-1001", "a sales rep signs up Ada", map[string]concord.Value{
		"full_name": "Ada Lovelace", "email": "Ada@Analytical.example", "phone": "(415) 555-0132",
		"street": "12 Babbage Way", "city": "San Francisco", "state": "California", "zip": "94105",
		"country": "United States", "customer_since": "03/04/2025", "credit_limit": "12,500",
	})
	w.edit("09:02", crm, "C-1004", "a sales rep signs up Katherine", map[string]concord.Value{
		"full_name": "Katherine Johnson", "email": "katherine@langley.example", "phone": "757-555-0199",
		"street": "1 Langley Boulevard", "city": "Hampton", "state": "Virginia", "zip": "23681",
		"country": "USA", "customer_since": "02/20/2025",
	})
	w.edit("09:05", erp, "C-2001", "finance books Grace's first order", map[string]concord.Value{
		"customer_name": "Grace Hopper", "email": "grace@cobol.example", "phone_e164": "+12125550100",
		"addr1": "7 Compiler Street", "city": "New York", "region": "US-NY", "postal_code": "10001",
		"country_code": "US", "since_date": "2024-12-31", "credit_limit": "5000.00",
	})
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	w.show("C-1001", "C-1004", "C-2001")
	return w.endScene(ctx, "1 new customers")
}

func (w *world) erpEdit(ctx context.Context) error {
	w.heading("2. The ERP corrects Ada's billing address, first-order date and credit limit")
	w.edit("10:00", erp, "C-1001", "finance fixes the account", map[string]concord.Value{
		"addr1": "400 Pine Street", "city": "Seattle", "region": "US-WA", "postal_code": "98101",
		"since_date": "2025-01-15", "credit_limit": "15000.00",
	})
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	w.show("C-1001")
	rec, _ := w.fakes[crm].Record("C-1001")
	fmt.Fprintf(w.out, "The CRM shows state %s and customer_since %s: names and US dates, as its users read them.\n",
		show(rec.Fields["state"]), show(rec.Fields["customer_since"]))
	return w.endScene(ctx, "2 erp edit")
}

func (w *world) badInput(ctx context.Context) error {
	w.heading("3. Bad input is quarantined; the rest syncs")
	w.edit("11:00", crm, "C-1002", "a rep types fast", map[string]concord.Value{
		"full_name": "Alan Turing", "email": "alan@bletchley.example", "phone": "(650) 555-0111",
		"state": "Californa", "zip": "94301", "country": "United States", "customer_since": "01/10/2025",
	})
	w.edit("11:01", crm, "C-1003", "a rep types the date the European way", map[string]concord.Value{
		"full_name": "Edsger Dijkstra", "email": "edsger@eindhoven.example", "state": "Texas",
		"zip": "78712", "country": "United States", "customer_since": "04.03.2025",
	})
	w.edit("11:02", crm, "C-1005", "another rep signs up Katherine again", map[string]concord.Value{
		"full_name": "Katharine Johnson", "email": "k.johnson@nasa.example",
		"street": "1 Langley Blvd", "city": "Hampton", "state": "VA", "zip": "23681",
		"country": "United States", "customer_since": "03/01/2025",
	})
	w.edit("11:03", erp, "C-2002", "an import script writes short codes", map[string]concord.Value{
		"customer_name": "Barbara Liskov", "email": "barbara@mit.example", "phone_e164": "617-555-0142",
		"region": "MA", "postal_code": "02139", "country_code": "US", "since_date": "2025-02-01",
	})
	failures, err := w.cycle(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w.out, "The cycle reports %d records it could not read (a *recsync.CycleError); everything else was committed.\n", len(failures))
	if err := w.printDeadLetters(ctx); err != nil {
		return err
	}
	_, inERP := w.fakes[erp].Record("C-1005")
	fmt.Fprintf(w.out, "C-1005, typed correctly in the same minute, reached the ERP: %v.\n", inERP)
	return w.endScene(ctx, "3 quarantined")
}

func (w *world) fixAndReplay(ctx context.Context) error {
	w.heading("4. People fix the records where they were typed, and replay the dead letters")
	dead, err := w.engine.DeadLetters(ctx)
	if err != nil {
		return err
	}
	w.edit("14:00", crm, "C-1002", "the rep fixes the state", map[string]concord.Value{"state": "California"})
	w.edit("14:01", crm, "C-1003", "the rep fixes the date", map[string]concord.Value{"customer_since": "03/04/2025"})
	w.edit("14:02", erp, "C-2002", "finance fixes the import", map[string]concord.Value{"region": "US-MA", "phone_e164": "+16175550142"})
	// Replay reads each record again as its system holds it now, through
	// the transforms and the dictionary, merges it and writes it.
	w.clock.Set("14:05")
	for _, d := range dead {
		if err := w.engine.Replay(ctx, recsync.DeadLetterAction{ID: d.ID, Person: "maria@ops.example"}); err != nil {
			return fmt.Errorf("replaying dead letter %d (%s %s): %w", d.ID, d.System, d.Key, err)
		}
		other := erp
		if d.System == erp {
			other = crm
		}
		_, synced := w.fakes[other].Record(d.Key)
		fmt.Fprintf(w.out, "14:05  maria@ops.example replays dead letter #%d (%s %s): now in the %s: %v\n", d.ID, d.System, d.Key, other, synced)
	}
	if _, err := w.cycle(ctx); err != nil {
		return err
	}
	if err := w.printDeadLetters(ctx); err != nil {
		return err
	}
	w.show("C-1002", "C-1003", "C-2002")
	return w.endScene(ctx, "4 replayed")
}

func (w *world) duplicates(ctx context.Context) error {
	w.heading("5. Duplicates in the CRM? Suggestions for a person, never merged")
	finder, err := dedupe.New(dedupe.Config{
		Name:       []string{"full_name"},
		Email:      "email",
		Phone:      "phone",
		Address:    []string{"street", "city"},
		PostalCode: "zip",
	})
	if err != nil {
		return err
	}
	recs := w.fakes[crm].Records()
	res, err := finder.Find(ctx, recs)
	if err != nil {
		return err
	}
	fmt.Fprintf(w.out, "%d CRM records, %d pairs compared, %d suggestion(s):\n", res.Records, res.Comparisons, len(res.Suggestions))
	for _, s := range res.Suggestions {
		fmt.Fprintf(w.out, "  %s and %s: %s match, score %.3f\n", s.A, s.B, s.Match, s.Score)
		for _, e := range s.Evidence {
			fmt.Fprintf(w.out, "    %-16s %.3f  %q ~ %q\n", e.Field, e.Score, e.A, e.B)
		}
	}
	w.result.suggestions = res.Suggestions
	fmt.Fprintf(w.out, "Nothing is merged: the CRM still has %d records and the ERP %d; a person decides.\n",
		w.fakes[crm].Len(), w.fakes[erp].Len())
	return nil
}

// final records every record of both systems and the dead letters left.
func (w *world) final() error {
	w.heading("Every customer, in each system's own shape")
	w.result.final = map[concord.SystemID]map[string]map[string]concord.Value{}
	for _, id := range systems {
		w.result.final[id] = map[string]map[string]concord.Value{}
		for _, r := range w.fakes[id].Records() {
			w.result.final[id][r.Key] = r.Fields
		}
	}
	w.show(keys(w.result.final[crm])...)
	return nil
}

// printDeadLetters prints the dead letters and records them for the test.
func (w *world) printDeadLetters(ctx context.Context) error {
	dead, err := w.engine.DeadLetters(ctx)
	if err != nil {
		return err
	}
	w.result.deadLetters = append(w.result.deadLetters, dead)
	if len(dead) == 0 {
		fmt.Fprintln(w.out, "Dead letters: none.")
		return nil
	}
	fmt.Fprintf(w.out, "Dead letters (%d), kept with the raw payload, never half-applied:\n", len(dead))
	for _, d := range dead {
		fmt.Fprintf(w.out, "  #%d %s %s (%s):\n    %s\n", d.ID, d.System, d.Key, d.Class, d.Reason)
	}
	return nil
}

// cycle runs one engine cycle and prints what it did; it returns the
// failures of a *recsync.CycleError (records quarantined) and fails on any
// other error. Then it runs another, which reads the writes back from each
// system's change feed: such an echo must be no edit and cause no write,
// however differently the two systems write the same value.
func (w *world) cycle(ctx context.Context) ([]recsync.Failure, error) {
	at := w.clock.Now().Format("15:04")
	rep, err := w.engine.RunCycle(ctx)
	var ce *recsync.CycleError
	if err != nil && !errors.As(err, &ce) {
		return nil, fmt.Errorf("cycle at %s: %w", at, err)
	}
	fmt.Fprintf(w.out, "%s  cycle %-2d %s\n", at, rep.Cycle, summary(rep))
	echo, err := w.engine.RunCycle(ctx)
	if err != nil {
		return nil, fmt.Errorf("cycle at %s, reading back: %w", at, err)
	}
	for _, id := range systems {
		if s := echo.Systems[id]; s.Edits != 0 || s.Writes != 0 {
			return nil, fmt.Errorf("cycle %d, reading back the writes of cycle %d: %s: %d edits, %d writes; want none",
				echo.Cycle, rep.Cycle, id, s.Edits, s.Writes)
		}
	}
	fmt.Fprintf(w.out, "%s  cycle %-2d reads its own writes back: no edit, no write\n", at, echo.Cycle)
	if ce == nil {
		return nil, nil
	}
	return ce.Failures, nil
}
