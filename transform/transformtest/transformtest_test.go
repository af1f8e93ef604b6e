package transformtest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/transformtest"
)

// recorder is a testing.TB that records failures instead of failing the
// test, so that the helpers' own failures can be tested.
type recorder struct {
	testing.TB
	msgs  []string
	fatal bool
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
func (r *recorder) Error(args ...any) { r.msgs = append(r.msgs, fmt.Sprint(args...)) }
func (r *recorder) Fail()             { r.msgs = append(r.msgs, "Fail") }
func (r *recorder) Failed() bool      { return len(r.msgs) > 0 }
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.fatal = true
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }
func (r *recorder) FailNow()          { r.Fatalf("FailNow") }

// capture runs fn with a recorder in its own goroutine, so that Fatal can
// end it, and returns what was recorded.
func capture(t *testing.T, fn func(tb testing.TB)) *recorder {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

// expectFailures checks that the recorded messages contain each of want,
// in order, and nothing else.
func expectFailures(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	if len(r.msgs) != len(want) {
		t.Errorf("recorded %d failures; want %d:\n%s", len(r.msgs), len(want), strings.Join(r.msgs, "\n---\n"))
		return
	}
	for i, w := range want {
		if !strings.Contains(r.msgs[i], w) {
			t.Errorf("failure %d = %q; want it to contain %q", i, r.msgs[i], w)
		}
	}
}

func rec(key string, kv ...any) concord.Record {
	r := concord.Record{Key: key, Fields: map[string]concord.Value{}}
	for i := 0; i < len(kv); i += 2 {
		r.Fields[kv[i].(string)] = kv[i+1]
	}
	return r
}

// Deliberately broken transformers.
var (
	// mutating writes into its input's Fields map.
	mutating = transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		r.Fields["touched"] = true
		return r, nil
	})
	// mutatingNested changes a list nested in a value, in place.
	mutatingNested = transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		if l, ok := r.Fields["tags"].([]any); ok && len(l) > 0 {
			l[0] = "changed"
		}
		return r, nil
	})
	// appending is not idempotent.
	appending = transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		out := r.Clone()
		out.Fields["n"] = fmt.Sprint(out.Fields["n"], "!")
		return out, nil
	})
	// rejecting rejects every record.
	rejecting = transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		return concord.Record{}, &transform.FieldError{Key: r.Key, Field: "x", Err: transform.ErrBadValue}
	})
)

// A mapping and broken variants of it for the round-trip laws.
var (
	good = transform.MustMapping(transform.Rename("tel", "phone"), transform.Drop("secret"), transform.Constant("src", "c"))
	// lossy forgets "tel"/"phone": as outbound it does not write "phone"
	// back as "tel", as inbound it never reads "tel".
	lossy = transform.MustMapping(transform.Drop("tel"), transform.Drop("secret"), transform.Constant("src", "c"))
	// digits writes phone numbers without spaces: what was read and is
	// written back differs, an echo the engine would take for an edit.
	digits = transform.Func(func(ctx context.Context, r concord.Record) (concord.Record, error) {
		out, err := good.Outbound().Transform(ctx, r)
		if s, ok := out.Fields["tel"].(string); ok {
			out.Fields["tel"] = strings.ReplaceAll(s, " ", "")
		}
		return out, err
	})
)

func TestTable(t *testing.T) {
	upper := transform.MustMapping(transform.RenameWith("vip", "vip", transform.BoolString("Y", "N")))
	tests := []struct {
		name  string
		cases []transformtest.Case
		want  []string
	}{
		{"passing cases", []transformtest.Case{
			{Name: "ok", In: rec("k", "vip", "Y"), Want: rec("k", "vip", true)},
			{Name: "1 equals 1.0", In: rec("k", "n", 1), Want: rec("k", "n", 1.0)},
			{Name: "nil fields equal empty", In: concord.Record{Key: "k"}, Want: concord.Record{Key: "k"}},
			{Name: "err", In: rec("k", "vip", 1), WantErr: transform.ErrWrongType, WantErrContains: `"vip"`},
		}, nil},
		{"wrong result", []transformtest.Case{
			{Name: "c1", In: rec("k", "vip", "Y"), Want: rec("k", "vip", false)},
		}, []string{`case "c1": record "k": result differs (-want +got)`}},
		{"wrong metadata", []transformtest.Case{
			{Name: "c1", In: rec("k"), Want: concord.Record{Key: "k", Tag: "t"}},
		}, []string{`case "c1": record "k": result differs`}},
		{"missing field", []transformtest.Case{
			{Name: "c1", In: rec("k", "a", nil), Want: rec("k")},
		}, []string{`result differs`}},
		{"unexpected error", []transformtest.Case{
			{Name: "c1", In: rec("k", "vip", "maybe"), Want: rec("k")},
		}, []string{`case "c1": unexpected error: record "k" field "vip"`}},
		{"no error", []transformtest.Case{
			{Name: "c1", In: rec("k"), WantErr: transform.ErrBadValue, WantErrContains: "vip"},
		}, []string{`case "c1": got no error; want an error: one matching "bad value" and one containing "vip"`}},
		{"wrong error", []transformtest.Case{
			{Name: "c1", In: rec("k", "vip", 1), WantErr: transform.ErrBadValue},
		}, []string{`want one matching "bad value" (errors.Is)`}},
		{"wrong message", []transformtest.Case{
			{Name: "c1", In: rec("k", "vip", 1), WantErrContains: "nope"},
		}, []string{`want one containing "nope"`}},
		{"no cases", nil, []string{"no cases"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := capture(t, func(tb testing.TB) { transformtest.Table(tb, upper.Inbound(), tt.cases) })
			expectFailures(t, r, tt.want...)
		})
	}
}

func TestTableSubtests(t *testing.T) {
	// With a *testing.T the cases run as subtests, in order.
	var keys []string
	seen := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		keys = append(keys, r.Key)
		return r, nil
	})
	transformtest.Table(t, seen, []transformtest.Case{{Name: "one", In: rec("a"), Want: rec("a")}, {Name: "two", In: rec("b"), Want: rec("b")}})
	if d := cmp.Diff([]string{"a", "b"}, keys); d != "" {
		t.Errorf("cases run (-want +got):\n%s", d)
	}
}

func TestRoundTrip(t *testing.T) {
	system := []concord.Record{
		rec("c1", "tel", "+43 1", "secret", 1, "note", "x"),
		rec("c2", "src", "c"),
		{Key: "c3", Deleted: true},
	}
	tests := []struct {
		name    string
		in, out transform.Transformer
		recs    []concord.Record
		want    []string
	}{
		{"lawful mapping", good.Inbound(), good.Outbound(), system, nil},
		{"outbound loses a field", good.Inbound(), lossy.Outbound(), system[:1],
			[]string{`RoundTrip: record "c1": canonical record changes on a trip through the system`}},
		{"written differs from read", good.Inbound(), digits, system[:1],
			[]string{`RoundTrip: record "c1": writing back what was read changes it`}},
		{"inbound error", rejecting, good.Outbound(), system[:2],
			[]string{`record "c1": inbound(x): record "c1" field "x"`, `record "c2": inbound(x)`}},
		{"outbound error", good.Inbound(), rejecting, system[:1],
			[]string{`record "c1": outbound(inbound(x))`}},
		{"no records", good.Inbound(), good.Outbound(), nil, []string{"no records"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := capture(t, func(tb testing.TB) { transformtest.RoundTrip(tb, tt.in, tt.out, tt.recs...) })
			expectFailures(t, r, tt.want...)
		})
	}
}

func TestCanonicalRoundTrip(t *testing.T) {
	canonical := []concord.Record{
		rec("c1", "phone", "+43 1", "note", map[string]any{"a": []any{1, 2.5}}),
		{Key: "c2", Modified: time.Unix(1, 0), Tag: "v2"},
	}
	tests := []struct {
		name    string
		in, out transform.Transformer
		recs    []concord.Record
		want    []string
	}{
		{"lawful mapping", good.Inbound(), good.Outbound(), canonical, nil},
		{"inbound loses a field", lossy.Inbound(), good.Outbound(), canonical[:1],
			[]string{`CanonicalRoundTrip: record "c1": inbound(outbound(c)) differs from c`}},
		{"outbound loses a field", good.Inbound(), lossy.Outbound(), canonical[:1],
			[]string{`CanonicalRoundTrip: record "c1": inbound(outbound(c)) differs from c`}},
		{"canonical field the system cannot hold", good.Inbound(), good.Outbound(), []concord.Record{rec("c3", "secret", 1)},
			[]string{`record "c3": inbound(outbound(c)) differs from c`}},
		{"written differs from read", transform.Identity, digits, canonical[:1],
			[]string{`record "c1": inbound(outbound(c)) differs from c`}},
		{"outbound error", good.Inbound(), rejecting, canonical[:1], []string{`record "c1": outbound(c)`}},
		{"no records", good.Inbound(), good.Outbound(), nil, []string{"no records"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := capture(t, func(tb testing.TB) { transformtest.CanonicalRoundTrip(tb, tt.in, tt.out, tt.recs...) })
			expectFailures(t, r, tt.want...)
		})
	}
}

func TestIdempotent(t *testing.T) {
	trim := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		out := r.Clone()
		for k, v := range out.Fields {
			if s, ok := v.(string); ok {
				out.Fields[k] = strings.TrimSpace(s)
			}
		}
		return out, nil
	})
	recs := []concord.Record{rec("a", "n", " x "), rec("b")}
	tests := []struct {
		name string
		tr   transform.Transformer
		recs []concord.Record
		want []string
	}{
		{"idempotent", trim, recs, nil},
		{"not idempotent", appending, recs, []string{`Idempotent: record "a": tr(tr(x)) differs`, `Idempotent: record "b"`}},
		{"error", rejecting, recs[:1], []string{`record "a": tr(x)`}},
		{"no records", trim, nil, []string{"no records"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := capture(t, func(tb testing.TB) { transformtest.Idempotent(tb, tt.tr, tt.recs...) })
			expectFailures(t, r, tt.want...)
		})
	}
}

func TestNoMutation(t *testing.T) {
	recs := []concord.Record{rec("a", "tags", []any{"x"}), rec("b", "n", 1)}
	tests := []struct {
		name string
		tr   transform.Transformer
		want []string
	}{
		{"pure", good.Inbound(), nil},
		{"rejecting is fine", rejecting, nil},
		{"writes to Fields", mutating, []string{`NoMutation: record "a": the transformer modified its input`, `record "b"`}},
		{"writes to a nested list", mutatingNested, []string{`NoMutation: record "a"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := capture(t, func(tb testing.TB) { transformtest.NoMutation(tb, tt.tr, recs...) })
			expectFailures(t, r, tt.want...)
		})
	}
	if d := cmp.Diff([]any{"x"}, recs[0].Fields["tags"]); d != "" {
		t.Errorf("NoMutation let the transformer modify the caller's record (-want +got):\n%s", d)
	}
	r := capture(t, func(tb testing.TB) { transformtest.NoMutation(tb, mutating) })
	expectFailures(t, r, "no records")
}

func TestGenRecord(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		r := transformtest.GenRecord("a", "b").Draw(rt, "record")
		if r.Key == "" {
			rt.Fatalf("empty key")
		}
		for name := range r.Fields {
			if name != "a" && name != "b" {
				rt.Fatalf("field %q not asked for", name)
			}
		}
		if err := r.Validate(); err != nil {
			rt.Fatalf("generated record is not valid: %v", err)
		}
	})
	rapid.Check(t, func(rt *rapid.T) {
		if err := transformtest.GenRecord().Draw(rt, "record").Validate(); err != nil {
			rt.Fatalf("generated record is not valid: %v", err)
		}
	})
}

// Inside rapid.Check, RapidTB hands the helpers' failures to rapid, which
// shrinks the record and fails the test.
func TestRapidTBReportsToRapid(t *testing.T) {
	t.Chdir(t.TempDir()) // rapid saves a fail file under ./testdata
	r := capture(t, func(tb testing.TB) {
		rapid.Check(tb, func(rt *rapid.T) {
			rec := transformtest.GenRecord("n").Draw(rt, "record")
			transformtest.NoMutation(transformtest.RapidTB(tb, rt), mutating, rec)
		})
	})
	if !r.fatal || len(r.msgs) == 0 || !strings.Contains(strings.Join(r.msgs, "\n"), "the transformer modified its input") {
		t.Errorf("rapid did not report the mutation; recorded:\n%s", strings.Join(r.msgs, "\n"))
	}
}

func TestCmpOptions(t *testing.T) {
	a := concord.Record{Key: "k", Fields: map[string]concord.Value{"n": int64(1), "m": map[string]any{"x": 2.0}}}
	b := concord.Record{Key: "k", Fields: map[string]concord.Value{"n": 1.0, "m": map[string]any{"x": 2}}}
	if d := cmp.Diff(a, b, transformtest.CmpOptions()); d != "" {
		t.Errorf("equal values reported as different:\n%s", d)
	}
	b.Fields["n"] = 2
	if cmp.Equal(a, b, transformtest.CmpOptions()) {
		t.Errorf("different values reported as equal")
	}
	if !cmp.Equal(concord.Record{}, concord.Record{Fields: map[string]concord.Value{}}, transformtest.CmpOptions()) {
		t.Errorf("nil Fields not equal to empty Fields")
	}
	if cmp.Equal(concord.Record{}, rec("", "a", nil), transformtest.CmpOptions()) {
		t.Errorf("absent field equal to nil field")
	}
}

var errSentinel = errors.New("sentinel")

func TestTableErrorsIs(t *testing.T) {
	wrapped := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		return concord.Record{}, fmt.Errorf("outer: %w", errSentinel)
	})
	transformtest.Table(t, wrapped, []transformtest.Case{{Name: "wrapped", In: rec("k"), WantErr: errSentinel}})
}
