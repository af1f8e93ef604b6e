package transform

import (
	"context"
	"fmt"
	"slices"

	"github.com/concordsync/concord"
)

// Chain returns a Transformer that applies ts in order, each to the result
// of the one before. A Chain of no Transformers returns its input.
//
// The first error stops the chain. It is wrapped with %w and names the
// step that failed ("step 2 of 3 (mapping inbound): ..."; the part in
// parentheses is the step's String method, when it has one), so errors.Is
// and errors.As still reach the step's own error, such as a [*FieldError].
//
// Chain panics if a step is nil: a pipeline is assembled once, at start-up.
// The result is safe for concurrent use when every step is.
func Chain(ts ...Transformer) Transformer {
	for i, t := range ts {
		if t == nil {
			panic(fmt.Sprintf("transform.Chain: step %d of %d is nil", i+1, len(ts)))
		}
	}
	return chain(slices.Clone(ts))
}

type chain []Transformer

// lineage composes the steps' lineages: what the first step's output
// fields named can change is the input of the second, and so on.
func (c chain) lineage(in []string) ([]string, bool) {
	if len(c) == 0 {
		return Lineage(Identity, in) // returns its input, sorted
	}
	out := in
	for _, t := range c {
		var ok bool
		if out, ok = Lineage(t, out); !ok {
			return nil, false
		}
	}
	return out, true
}

// readOnly: a chain modifies nothing if none of its steps does.
func (c chain) readOnly() bool {
	for _, t := range c {
		if !ReadOnly(t) {
			return false
		}
	}
	return true
}

func (c chain) Transform(ctx context.Context, rec concord.Record) (concord.Record, error) {
	for i, t := range c {
		out, err := t.Transform(ctx, rec)
		if err != nil {
			name := ""
			if s, ok := t.(fmt.Stringer); ok {
				name = " (" + s.String() + ")"
			}
			return concord.Record{}, fmt.Errorf("step %d of %d%s: %w", i+1, len(c), name, err)
		}
		rec = out
	}
	return rec, nil
}
