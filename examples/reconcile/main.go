// Command reconcile is a runnable tour of package sync/reconcile: a CRM and
// an ERP that should hold the same customers are compared in canonical
// form, the differences are classed with what the engine knows, a repair
// plan says who wins, the repairs are applied through the engine, and a
// second check shows what is left for a person.
//
//	go run ./examples/reconcile [-html report.html]
//
// It prints the Markdown report and writes the HTML report (a
// self-contained page with an SVG chart) to the file named by -html
// (reconcile-report.html by default). Its output is deterministic.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/sync/reconcile"
	"github.com/concordsync/concord/transform"
)

func main() {
	html := flag.String("html", "reconcile-report.html", "where to write the HTML report")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *html); err != nil {
		fmt.Fprintln(os.Stderr, "reconcile:", err)
		os.Exit(1)
	}
}

const (
	crm concord.SystemID = "crm"
	erp concord.SystemID = "erp"
)

// erpMapping: the ERP calls the canonical fields by other names.
var erpMapping = transform.MustMapping(
	transform.Rename("cust_name", "name"),
	transform.Rename("mail", "email"),
	transform.Rename("town", "city"),
	transform.Rename("credit", "credit_limit"),
	transform.Rename("is_active", "active"),
)

// customer i in canonical form.
func customer(i int) map[string]concord.Value {
	return map[string]concord.Value{
		"name":         "Customer " + strconv.Itoa(i),
		"email":        "c" + strconv.Itoa(i) + "@example.com",
		"city":         []string{"Vienna", "Graz", "Linz"}[i%3],
		"credit_limit": int64(1000 * (i%5 + 1)),
		"active":       i%4 != 0,
	}
}

func key(i int) string { return fmt.Sprintf("C-%03d", i) }

// toERP renames canonical fields to the ERP's.
func toERP(ctx context.Context, key string, f map[string]concord.Value) (map[string]concord.Value, error) {
	r, err := erpMapping.Outbound().Transform(ctx, concord.Record{Key: key, Fields: f})
	return r.Fields, err
}

// engine stands in for the sync engine: it knows the canonical records
// and what it is doing, and repairs a system by writing it the canonical
// values (the real engine does this as an audited change).
type engine struct {
	canonical map[string]map[string]concord.Value
	states    map[string]reconcile.KeyState
	systems   map[concord.SystemID]*fake.System
	log       []string
}

func (e *engine) Known(_ context.Context, keys []string) (map[string]reconcile.KeyState, error) {
	out := map[string]reconcile.KeyState{}
	for _, k := range keys {
		st := e.states[k]
		st.Canonical = e.canonical[k]
		if st.Canonical != nil || st.Pending != nil || st.Behind != nil {
			out[k] = st
		}
	}
	return out, nil
}

func (e *engine) Repair(ctx context.Context, key string, system concord.SystemID, person, reason string) error {
	values := concord.CloneFields(e.canonical[key])
	if values == nil {
		return fmt.Errorf("no canonical record for %q", key)
	}
	if system == erp {
		var err error
		if values, err = toERP(ctx, key, values); err != nil {
			return err
		}
	}
	sys := e.systems[system]
	_, exists := sys.Record(key)
	res, err := sys.Apply(ctx, []connector.Patch{{Key: key, Set: values, Create: !exists}})
	if err != nil {
		return err
	}
	if res[0].Err != nil {
		return res[0].Err
	}
	e.log = append(e.log, fmt.Sprintf("%s: wrote %s in %s (%s)", person, key, system, reason))
	return nil
}

// story builds the two systems with one difference of each kind.
func story(ctx context.Context) (*engine, error) {
	e := &engine{canonical: map[string]map[string]concord.Value{}, states: map[string]reconcile.KeyState{},
		systems: map[concord.SystemID]*fake.System{crm: fake.New("crm"), erp: fake.New("erp")}}
	for i := 1; i <= 20; i++ {
		c := customer(i)
		e.canonical[key(i)] = c
		crmFields := concord.CloneFields(c)
		erpFields := concord.CloneFields(c)
		switch i {
		case 3: // someone typed another city into the ERP: nobody knows why
			erpFields["city"] = "Salzburg"
		case 5: // the CRM's credit limit was edited by hand; the ERP owns it
			crmFields["credit_limit"] = int64(99000)
		case 8: // a write of the new e-mail to the ERP failed (dead letter)
			erpFields["email"] = "old@example.com"
			e.states[key(i)] = reconcile.KeyState{Behind: map[concord.SystemID][]string{erp: {"email"}}}
		case 11: // the engine is writing the ERP right now
			erpFields["name"] = "Cust. 11"
			e.states[key(i)] = reconcile.KeyState{Pending: map[concord.SystemID]bool{erp: true}}
		case 14: // never reached the ERP, and the engine knows the record
			erpFields = nil
		case 17: // the credit limit as a float in the ERP: the same number
			erpFields["credit_limit"] = float64(c["credit_limit"].(int64))
		}
		e.systems[crm].Edit(key(i), crmFields)
		if erpFields != nil {
			f, err := toERP(ctx, key(i), erpFields)
			if err != nil {
				return nil, err
			}
			e.systems[erp].Edit(key(i), f)
		}
	}
	// Only in the ERP, unknown to the engine: for a person.
	f, err := toERP(ctx, "C-900", customer(900))
	if err != nil {
		return nil, err
	}
	e.systems[erp].Edit("C-900", f)
	return e, nil
}

func run(ctx context.Context, w io.Writer, htmlPath string) error {
	e, err := story(ctx)
	if err != nil {
		return err
	}
	cfg := reconcile.Config{
		Sides: []reconcile.Side{
			{System: crm, Scanner: e.systems[crm]},
			{System: erp, Scanner: e.systems[erp], Transformer: erpMapping.Inbound()},
		},
		Owners:    map[string]concord.SystemID{"credit_limit": erp},
		Knowledge: e,
		PageSize:  8,
	}
	rep, err := reconcile.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.WriteMarkdown(w); err != nil {
		return err
	}
	f, err := os.Create(htmlPath)
	if err != nil {
		return err
	}
	if err := rep.WriteHTML(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nHTML report written to %s\n", htmlPath)

	n, err := reconcile.ApplyRepairs(ctx, rep.Plan, e, "ops@example.com", "monthly reconciliation")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n## Repairs applied: %d\n\n", n)
	for _, l := range e.log {
		fmt.Fprintln(w, "-", l)
	}
	again, err := reconcile.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n## After the repairs\n\n%d differences left:\n\n", again.Total())
	for _, d := range again.Differences {
		fmt.Fprintf(w, "- %s %s: %s\n", d.Key, d.Field, d.Class)
	}
	active := func(r concord.Record) bool { return r.Fields["active"] == true }
	c, err := reconcile.CountCheck(ctx, cfg.Sides[0], cfg.Sides[1], active)
	fmt.Fprintf(w, "\nActive customers: %d in the CRM, %d in the ERP", c.Selected[0], c.Selected[1])
	if err != nil {
		fmt.Fprintf(w, " (%v)", err)
	}
	fmt.Fprintln(w)
	return nil
}
