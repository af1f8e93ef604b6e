// Command address-sync is a runnable tour of Concord on real parts. It
// keeps one customer in agreement between a customer portal, a SQLite
// database that the portal's code edits with plain SQL, and a warehouse, a
// REST API over TLS (an httptest server the program starts), which name
// and shape their fields differently. The engine keeps its state in the
// embedded bbolt store. Four scenes:
//
//  1. The customer changes the shipping address in the portal (an UPDATE
//     of the customers table); one cycle later the warehouse ships to it.
//  2. A phone edit in the portal and a company-name edit through the
//     warehouse's API, at the same time: both survive, where a
//     record-level last-writer-wins sync loses one of them.
//  3. A whole new address in the portal and a postal-code fix of the old
//     address in the warehouse: the address is a field group, merged as one
//     unit, so the result is one of the two complete addresses, never a mix.
//  4. credit_limit belongs to the warehouse (its system of record): it wins
//     a conflict with the portal, and an edit made only in the portal is
//     refused and reverted.
//
// Run it with
//
//	go run ./examples/address-sync
//
// Its output is deterministic: the database, the API and the engine share
// a story clock that stands still until the story moves it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/transform"
)

func main() {
	if _, err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "address-sync:", err)
		os.Exit(1)
	}
}

// The two systems, and the one customer record of the story.
const (
	portal    concord.SystemID = "portal"
	warehouse concord.SystemID = "warehouse"
	customer                   = "cust-42"
)

// systems lists the systems in the order the story shows them.
var systems = []concord.SystemID{portal, warehouse}

// fieldNames says what each system calls one canonical field; "" means the
// system does not keep it.
type fieldNames struct {
	canonical, portal, warehouse string
}

func (f fieldNames) in(s concord.SystemID) string {
	if s == portal {
		return f.portal
	}
	return f.warehouse
}

// fields is the data dictionary of the story, in display order. The
// mappings of both systems are built from it (see mappingFor).
var fields = []fieldNames{
	{"email", "email", ""},
	{"phone", "phone", "contact_phone"},
	{"company", "company", "company_name"},
	{"street", "ship_street", "addr_line"},
	{"city", "ship_city", "town"},
	{"postal_code", "ship_zip", "postcode"},
	{"country", "ship_country", "country_code"},
	{"credit_limit", "credit_line", "credit_limit"},
}

// address is the field group: a street only makes sense with its city,
// postal code and country.
var address = []string{"street", "city", "postal_code", "country"}

// countryNames converts between the portal, which writes a country's name,
// and the canonical ISO code that the warehouse uses too.
var countryNames = func() transform.Converter {
	codes := map[string]string{"United Kingdom": "GB", "Netherlands": "NL", "Belgium": "BE", "Germany": "DE"}
	names := map[string]string{}
	for n, c := range codes {
		names[c] = n
	}
	lookup := func(table map[string]string) func(concord.Value) (concord.Value, error) {
		return func(v concord.Value) (concord.Value, error) {
			s, ok := v.(string)
			switch {
			case v == nil:
				return nil, nil
			case !ok:
				return nil, fmt.Errorf("%w: want a string, got %T", transform.ErrWrongType, v)
			case table[s] == "":
				return nil, fmt.Errorf("%w: unknown country %q", transform.ErrBadValue, s)
			}
			return table[s], nil
		}
	}
	return transform.Converter{In: lookup(codes), Out: lookup(names)}
}()

// mappingFor declares how system s names and shapes the canonical fields.
// Strict: fields the dictionary does not list stay in their system.
func mappingFor(s concord.SystemID) (*transform.Mapping, error) {
	rules := []transform.Rule{transform.Strict()}
	for _, f := range fields {
		switch native := f.in(s); {
		case native == "":
			// Not kept: with Strict, the field never reaches the system.
		case s == portal && f.canonical == "country":
			rules = append(rules, transform.RenameWith(native, f.canonical, countryNames))
		default:
			rules = append(rules, transform.Rename(native, f.canonical))
		}
	}
	return transform.NewMapping(rules...)
}

// world is the running story: the systems, the engine, and what the audit
// sink collected.
type world struct {
	out     io.Writer
	clock   *storyClock
	engine  *recsync.Engine
	sys     *realSystems
	maps    map[concord.SystemID]*transform.Mapping
	events  []audit.Event // every event the engine emitted, in order
	shown   int           // events[:shown] have been printed
	started int           // events[started:] belong to the current scene
	quiet   bool          // print no audit lines
	result  outcome
}

// newWorld opens the portal's database and the engine's store in dir and
// starts the warehouse's API. Calling close stops them.
func newWorld(out io.Writer, dir string) (w *world, close func(), err error) {
	w = &world{out: out, clock: &storyClock{}, maps: map[concord.SystemID]*transform.Mapping{}}
	w.clock.Set("09:00")
	st, err := openStore(dir)
	if err != nil {
		return nil, nil, err
	}
	if w.sys, err = openSystems(dir, w.clock); err != nil {
		st.Close()
		return nil, nil, err
	}
	close = func() { w.sys.close(); st.Close() }
	defer func() {
		if err != nil {
			close()
		}
	}()
	cfg := recsync.Config{
		Groups: map[string][]string{"address": address},
		// The warehouse owns credit_limit; every other conflict goes
		// to the edit its system made last.
		Resolver: resolve.Chain(
			resolve.SystemOfRecord(map[string]concord.SystemID{"credit_limit": warehouse}),
			resolve.LastWriterWins(),
		),
		// A host would also keep the whole trail (audit.JSONLines to a
		// file, with audit.Multi); the story collects it to print it.
		Audit: audit.SinkFunc(func(_ context.Context, events []audit.Event) error {
			w.events = append(w.events, events...)
			return nil
		}),
		Now: w.clock.Now,
		// The engine's state (versions, what each system holds) in the
		// embedded durable store: one file, no server.
		Store: st,
	}
	for _, id := range systems {
		m, err := mappingFor(id)
		if err != nil {
			return nil, nil, fmt.Errorf("mapping of %s: %w", id, err)
		}
		w.maps[id] = m
		cfg.Systems = append(cfg.Systems, recsync.System{ID: id, Connector: w.sys.connector(id), Inbound: m.Inbound(), Outbound: m.Outbound()})
	}
	if w.engine, err = recsync.New(cfg); err != nil {
		return nil, nil, err
	}
	return w, close, nil
}

// run tells the story to out and returns the state after each scene.
func run(out io.Writer) (*outcome, error) {
	dir, done, err := tempDir("address-sync")
	if err != nil {
		return nil, err
	}
	defer done()
	w, close, err := newWorld(out, dir)
	if err != nil {
		return nil, err
	}
	defer close()
	ctx := context.Background()
	w.introduce()
	for _, s := range []func(context.Context) error{w.setup, w.newAddress, w.twoFields, w.addressGroup, w.creditLimit} {
		if err := s(ctx); err != nil {
			return &w.result, err
		}
	}
	w.result.requests = w.sys.api.Requests()
	err = w.sys.db.QueryRowContext(ctx, "SELECT version FROM customers WHERE id = ?", customer).Scan(&w.result.portalVersion)
	return &w.result, err
}

func (w *world) introduce() {
	fmt.Fprintln(w.out, "Concord address-sync: one customer, a portal and a warehouse.")
	fmt.Fprintln(w.out, "The portal is a SQLite table, customers, edited with SQL (connector/sqltable);")
	fmt.Fprintln(w.out, "the warehouse a REST API over TLS, edited through its API (connector/rest);")
	fmt.Fprintln(w.out, "the engine keeps its state in the embedded bbolt store.")
	fmt.Fprintln(w.out)
	fmt.Fprintln(w.out, "Each system has its own field names; the engine merges canonical fields:")
	tw := tabwriter.NewWriter(w.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  canonical\tportal column\twarehouse field\t(JSON path)")
	for _, f := range fields {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.canonical, orDash(f.portal), orDash(f.warehouse), orDash(warehousePaths[f.warehouse]))
	}
	_ = tw.Flush()
	fmt.Fprintln(w.out, "The portal writes the country's name, the warehouse its ISO code.")
	fmt.Fprintf(w.out, "Group: address = %s. Owner: warehouse owns credit_limit. Otherwise: last writer wins.\n", strings.Join(address, ", "))
}

// ---- the scenes ----

func (w *world) setup(ctx context.Context) error {
	w.heading("Setup: the customer opens an account")
	w.quiet = true
	defer func() { w.quiet = false }()
	if err := w.edit(ctx, "09:00", portal, "the customer signs up", map[string]concord.Value{
		"email": "ann@lee.example", "phone": "+44 20 7946 0000", "company": "Lee & Co",
		"ship_street": "1 Old Road", "ship_city": "Leeds", "ship_zip": "LS1 1AA", "ship_country": "United Kingdom",
	}); err != nil {
		return err
	}
	if err := w.cycle(ctx); err != nil {
		return err
	}
	if err := w.edit(ctx, "09:05", warehouse, "credit control sets a limit", map[string]concord.Value{"credit_limit": 5000}); err != nil {
		return err
	}
	if err := w.cycle(ctx); err != nil {
		return err
	}
	sc, err := w.endScene(ctx, "setup", nil)
	if err != nil {
		return err
	}
	// A SQL row has every column: the new customer's credit_line is
	// NULL, which the portal reports like any other field, and the
	// portal may not set credit_limit.
	for _, ev := range sc.events {
		if ev.Kind == audit.ConflictHeld {
			fmt.Fprintf(w.out, "At signup the portal's row had %s NULL; held (audit): rule %s: %s.\n", fieldIn(ev.Unit, portal), ev.Rule, ev.Reason)
			fmt.Fprintln(w.out, "The warehouse's first limit settled it (system-of-record).")
		}
	}
	return nil
}

func (w *world) newAddress(ctx context.Context) error {
	w.heading("1. The customer moves: a new shipping address in the portal")
	if err := w.edit(ctx, "09:30", portal, "the customer enters the new address", map[string]concord.Value{
		"ship_street": "Keizersgracht 12", "ship_city": "Amsterdam", "ship_zip": "1015 CJ", "ship_country": "Netherlands",
	}); err != nil {
		return err
	}
	if err := w.cycle(ctx); err != nil {
		return err
	}
	sc, err := w.endScene(ctx, "1 new address", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w.out, "The warehouse now ships to: %s.\n", w.addressOf(sc, warehouse))
	return nil
}

func (w *world) twoFields(ctx context.Context) error {
	w.heading("2. Two people, two fields, same time")
	before, err := w.canonical(ctx, portal)
	if err != nil {
		return err
	}
	if err := w.edit(ctx, "10:00", portal, "the customer updates the phone", map[string]concord.Value{"phone": "+31 20 555 0199"}); err != nil {
		return err
	}
	if err := w.edit(ctx, "10:01", warehouse, "a clerk corrects the company name", map[string]concord.Value{"company_name": "Lee & Co B.V."}); err != nil {
		return err
	}

	// What a record-level last-writer-wins sync would do with the same
	// two edits: copy the most recently modified record over the other.
	winner, loser, lost, err := w.recordLevelLWW(ctx, before)
	if err != nil {
		return err
	}
	if err := w.cycle(ctx); err != nil {
		return err
	}
	sc, err := w.endScene(ctx, "2 two fields", lost)
	if err != nil {
		return err
	}
	both, err := w.canonical(ctx, warehouse)
	if err != nil {
		return err
	}
	fmt.Fprintf(w.out, "Concord merges field by field: phone %s and company %s, in both systems.\n",
		show(both["phone"]), show(both["company"]))
	fmt.Fprintf(w.out, "A record-level last-writer-wins sync would have copied the %s record (modified last) over the %s one,\n", winner, loser)
	if len(sc.lost) == 0 {
		fmt.Fprintln(w.out, "and lost nothing.")
	}
	for _, l := range sc.lost {
		fmt.Fprintf(w.out, "and lost the %s's edit of %s: %s would be back to %s.\n", l.System, l.Field, l.Field, show(before[l.Field]))
	}
	return nil
}

func (w *world) addressGroup(ctx context.Context) error {
	w.heading("3. A new address and a fix of the old one: the group merges as a unit")
	before, err := w.canonical(ctx, portal)
	if err != nil {
		return err
	}
	if err := w.edit(ctx, "11:00", portal, "the customer enters another new address", map[string]concord.Value{
		"ship_street": "Rue de la Loi 5", "ship_city": "Brussels", "ship_zip": "1000", "ship_country": "Belgium",
	}); err != nil {
		return err
	}
	if err := w.edit(ctx, "11:02", warehouse, "a clerk fixes the postcode of the old address", map[string]concord.Value{"postcode": "1015 CK"}); err != nil {
		return err
	}
	cands := map[concord.SystemID]map[string]concord.Value{}
	for _, id := range systems {
		c, err := w.canonical(ctx, id)
		if err != nil {
			return err
		}
		cands[id] = pick(c, address)
	}
	mix, err := w.fieldByField(ctx, pick(before, address), cands)
	if err != nil {
		return err
	}
	fmt.Fprintf(w.out, "A field-by-field merge (latest edit per field) would ship to: %s", showUnit(mix, address))
	if !concord.EqualValues(mix, cands[portal]) && !concord.EqualValues(mix, cands[warehouse]) {
		fmt.Fprint(w.out, ",\n  an address nobody entered")
	}
	fmt.Fprintln(w.out, ".")
	if err := w.cycle(ctx); err != nil {
		return err
	}
	sc, err := w.endScene(ctx, "3 address group", nil)
	if err != nil {
		return err
	}
	got, err := w.canonical(ctx, warehouse)
	if err != nil {
		return err
	}
	whose := "nobody's: the group was mixed"
	for _, id := range systems {
		if concord.EqualValues(pick(got, address), cands[id]) {
			whose = "the " + string(id) + "'s complete address"
		}
	}
	fmt.Fprintf(w.out, "Every system ships to %s: %s.\n", w.addressOf(sc, warehouse), whose)
	if ev, ok := decision(sc.events, "address"); ok {
		fmt.Fprintf(w.out, "Why (audit): rule %s: %s.\n", ev.Rule, ev.Reason)
	}
	return nil
}

func (w *world) creditLimit(ctx context.Context) error {
	w.heading("4a. credit_limit edited in both systems; the warehouse owns it")
	if err := w.edit(ctx, "12:00", warehouse, "credit control lowers the limit", map[string]concord.Value{"credit_limit": 4000}); err != nil {
		return err
	}
	if err := w.edit(ctx, "12:01", portal, "an account manager raises it", map[string]concord.Value{"credit_line": 9000}); err != nil {
		return err
	}
	if err := w.cycle(ctx); err != nil {
		return err
	}
	sc, err := w.endScene(ctx, "4a owner wins", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w.out, "credit_limit is %s everywhere, although the portal edited last.\n", show(sc.records[warehouse]["credit_limit"]))
	if ev, ok := decision(sc.events, "credit_limit"); ok {
		fmt.Fprintf(w.out, "Why (audit): rule %s: %s.\n", ev.Rule, ev.Reason)
	}

	w.heading("4b. credit_limit edited only in the portal: refused and reverted")
	if err := w.edit(ctx, "12:10", portal, "the account manager tries again", map[string]concord.Value{"credit_line": 12000}); err != nil {
		return err
	}
	if err := w.cycle(ctx); err != nil {
		return err
	}
	sc, err = w.endScene(ctx, "4b non-owner refused", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w.out, "The portal shows credit_line %s again.\n", show(sc.records[portal]["credit_line"]))
	for _, ev := range sc.events {
		if ev.Kind == audit.ChangeRefused {
			fmt.Fprintf(w.out, "Why (audit): rule %s: %s.\n", ev.Rule, ev.Reason)
		}
	}
	return nil
}
