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
