package transformtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/transformtest"
)

// printTB stands in for the *testing.T of a real test: it prints the first
// line of each failure (the diff that follows is left out here).
type printTB struct{ testing.TB }

func (printTB) Helper()                  {}
func (printTB) Context() context.Context { return context.Background() }
func (printTB) Errorf(format string, args ...any) {
	first, _, _ := strings.Cut(fmt.Sprintf(format, args...), "\n")
	fmt.Println("FAIL:", first)
}

func ExampleTable() {
	var t testing.TB = printTB{} // in a test: the *testing.T
	crm := transform.MustMapping(transform.Rename("zip", "postal_code"))

	transformtest.Table(t, crm.Inbound(), []transformtest.Case{
		{Name: "rename", In: rec("c1", "zip", "1000"), Want: rec("c1", "postal_code", "1000")},
		{Name: "partial", In: rec("c1", "note", 1), Want: rec("c1", "note", 1.0)},
		{Name: "wrong want", In: rec("c1", "zip", "1000"), Want: rec("c1", "zip", "1000")},
	})
	// Output:
	// FAIL: case "wrong want": record "c1": result differs (-want +got):
}

func ExampleRoundTrip() {
	var t testing.TB = printTB{} // in a test: the *testing.T
	crm := transform.MustMapping(
		transform.Rename("tel", "phone"),
		transform.Drop("internal_id"),
		transform.Constant("source", "concord"),
	)
	samples := []concord.Record{
		rec("c1", "tel", "+43 1 234", "internal_id", 17, "note", "VIP"),
		rec("c2", "source", "concord"),
	}
	transformtest.RoundTrip(t, crm.Inbound(), crm.Outbound(), samples...)
	transformtest.CanonicalRoundTrip(t, crm.Inbound(), crm.Outbound(), rec("c1", "phone", "+43 1 234"))
	fmt.Println("lawful mapping: no failures")

	// An outbound transform that formats phone numbers differently from
	// what the system reports: every sync would look like an edit.
	compact := transform.Func(func(ctx context.Context, r concord.Record) (concord.Record, error) {
		out, err := crm.Outbound().Transform(ctx, r)
		if s, ok := out.Fields["tel"].(string); ok {
			out.Fields["tel"] = strings.ReplaceAll(s, " ", "")
		}
		return out, err
	})
	transformtest.RoundTrip(t, crm.Inbound(), compact, samples...)
	// Output:
	// lawful mapping: no failures
	// FAIL: RoundTrip: record "c1": writing back what was read changes it: outbound(inbound(x)) differs from x on their common fields (-x +written):
}

func ExampleNoMutation() {
	var t testing.TB = printTB{} // in a test: the *testing.T
	sloppy := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		r.Fields["email"] = strings.ToLower(r.Fields["email"].(string)) // writes into the caller's map
		return r, nil
	})
	transformtest.NoMutation(t, sloppy, rec("c1", "email", "Ada@Example.com"))
	// Output:
	// FAIL: NoMutation: record "c1": the transformer modified its input (-before +after):
}
