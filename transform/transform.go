// Package transform maps records between a system's shape and the canonical
// shape that the engine merges.
//
// A [Transformer] is a small, pure function over one record. Each system in
// a pipeline has an inbound Transformer (system shape to canonical) and an
// outbound one (canonical to system shape). [Mapping] declares both at once
// from a list of field rules, so that the two directions cannot drift apart;
// [Chain] composes Transformers. Package transformtest checks a host's own
// transforms: table tests, round-trip laws and "does not mutate its input".
package transform

import (
	"context"
	"slices"

	"github.com/concordsync/concord"
)

// Transformer turns one record into another.
//
// Transform must not modify its input record, its Fields map, or any map or
// slice inside it: build a new Fields map (values that are not changed may
// be shared). (The sync engine gives each call its own deep copy, so that a
// transform that does modify it changes nothing of the engine's; a
// transform composed with others, or called by other code, gets no such
// protection. The transformers of this package are called without that
// copy: see [ReadOnly].) It may be called concurrently for different records. An error
// rejects the record: the engine quarantines it with the error as the
// reason, so the error should name the field and why (see [FieldError]).
type Transformer interface {
	Transform(ctx context.Context, rec concord.Record) (concord.Record, error)
}

// Func adapts a function to a [Transformer].
type Func func(ctx context.Context, rec concord.Record) (concord.Record, error)

// Transform calls f.
func (f Func) Transform(ctx context.Context, rec concord.Record) (concord.Record, error) {
	return f(ctx, rec)
}

// Identity is the Transformer that returns its input unchanged.
var Identity Transformer = identity{}

type identity struct{}

func (identity) Transform(_ context.Context, rec concord.Record) (concord.Record, error) {
	return rec, nil
}

func (identity) readOnly() bool { return true }

// readOnlyTransformer is a Transformer of this package that may vouch for
// never modifying its input (see [ReadOnly]); its method is unexported, so
// no other package's type can claim it.
type readOnlyTransformer interface {
	readOnly() bool
}

// ReadOnly reports whether t is known never to modify the record it is
// given, nor any map or slice in it, whatever functions it was built
// with: [Identity], a [Mapping]'s Inbound and Outbound (which hand each
// rule's functions their own copies of maps and slices), and a [Chain] of
// such Transformers. Any other Transformer, a [Func] included, may (against
// its contract): the sync engine gives those a copy of every record, and
// calls these on the record itself.
func ReadOnly(t Transformer) bool {
	r, ok := t.(readOnlyTransformer)
	return ok && r.readOnly()
}

// lineageTransformer is a Transformer of this package that knows which of
// its output fields come from which input fields (see [Lineage]).
type lineageTransformer interface {
	lineage(in []string) ([]string, bool)
}

// Lineage returns, for a Transformer that can tell, the fields of its
// output that the input fields named in can change: of two records that
// differ only in those fields (their values, or whether they are there),
// the transforms differ at most in the fields Lineage returns. Fields the
// Transformer sets from no input field (a [Constant]) are listed too. The
// result is sorted, without duplicates.
//
// [Identity] answers in itself; a [Mapping]'s Inbound and Outbound answer
// from their rules (a field no rule mentions passes through, unless
// [Strict]); a [Chain] of such Transformers composes its steps' answers.
// Any other Transformer, a [Func] included, may compute any field from any
// other: ok is false. The sync engine uses it to tell which fields of a
// system a write changes without transforming the record again.
func Lineage(t Transformer, in []string) (out []string, ok bool) {
	l, ok := t.(lineageTransformer)
	if !ok {
		return nil, false
	}
	return l.lineage(in)
}

func (identity) lineage(in []string) ([]string, bool) {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out), true
}
