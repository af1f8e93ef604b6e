package transform_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/transformtest"
)

// appendTo returns a Transformer that appends s to the string in field f.
func appendTo(f, s string) transform.Transformer {
	return transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		out := r.Clone()
		out.Fields[f] = out.Fields[f].(string) + s
		return out, nil
	})
}

func TestChain(t *testing.T) {
	tests := []struct {
		name  string
		chain transform.Transformer
		cases []transformtest.Case
	}{
		{"empty chain is identity", transform.Chain(), []transformtest.Case{
			{Name: "record", In: rec("k", "a", "x"), Want: rec("k", "a", "x")},
		}},
		{"steps run in order", transform.Chain(appendTo("a", "1"), appendTo("a", "2"), transform.Identity, appendTo("a", "3")), []transformtest.Case{
			{Name: "record", In: rec("k", "a", "x"), Want: rec("k", "a", "x123")},
		}},
		{"failing step is named and its error reachable", transform.Chain(appendTo("vip", "s"), portal.Inbound()), []transformtest.Case{
			{Name: "record", In: rec("k", "vip", "ye"), Want: rec("k", "is_vip", true)},
			{Name: "error", In: rec("k", "vip", "no"), WantErr: transform.ErrBadValue,
				WantErrContains: `step 2 of 2 (mapping inbound): record "k" field "vip" value "nos"`},
		}},
		{"unnamed step", transform.Chain(transform.Identity, portal.Outbound()), []transformtest.Case{
			{Name: "error", In: rec("k", "is_vip", 1), WantErr: transform.ErrWrongType,
				WantErrContains: `step 2 of 2 (mapping outbound): record "k" field "is_vip"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			transformtest.Table(t, tt.chain, tt.cases)
		})
	}
}

func TestChainErrorAs(t *testing.T) {
	failing := transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		return concord.Record{}, &transform.FieldError{Key: r.Key, Field: "f", Err: transform.ErrWrongType}
	})
	_, err := transform.Chain(transform.Identity, transform.Chain(transform.Identity, failing)).Transform(context.Background(), rec("k"))
	var fe *transform.FieldError
	if !errors.As(err, &fe) || fe.Field != "f" || !errors.Is(err, transform.ErrWrongType) {
		t.Fatalf("error %v: want a wrapped *FieldError for field f", err)
	}
	if want := `step 2 of 2: step 2 of 2: record "k" field "f"`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q; want prefix %q", err, want)
	}
}

func TestChainDoesNotKeepCallersSlice(t *testing.T) {
	steps := []transform.Transformer{appendTo("a", "1")}
	c := transform.Chain(steps...)
	steps[0] = appendTo("a", "changed")
	transformtest.Table(t, c, []transformtest.Case{{Name: "record", In: rec("k", "a", ""), Want: rec("k", "a", "1")}})
}

func TestChainNilPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "step 2 of 2 is nil") {
			t.Errorf("recover() = %v; want a panic naming step 2", r)
		}
	}()
	transform.Chain(transform.Identity, nil)
}

func TestChainNoMutation(t *testing.T) {
	transformtest.NoMutation(t, transform.Chain(portal.Inbound(), portal.Outbound()),
		rec("c1", "zip", "1", "name", "A B", "note", map[string]any{"x": []any{1}}))
}
