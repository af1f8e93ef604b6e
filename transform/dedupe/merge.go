package dedupe

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/concordsync/concord"
)

// Prefer says whose value [Merge] keeps when both records hold different,
// non-nil values for a field.
type Prefer int

const (
	// PreferA keeps the first record's value (the zero value).
	PreferA Prefer = iota
	// PreferB keeps the second record's value.
	PreferB
	// PreferNewer keeps the value of the record with the later Modified
	// time; the first record's on a tie or when either time is zero.
	PreferNewer
)

// Policy decides the fields of a merge. The zero Policy keeps the first
// record's values.
type Policy struct {
	// Prefer applies to every field not in Fields.
	Prefer Prefer
	// Fields overrides Prefer for the fields named.
	Fields map[string]Prefer
}

// ErrMerge is wrapped by the errors of [Merge].
var ErrMerge = errors.New("cannot merge")

// Merge returns one record holding what a and b know about one contact: the
// key of a (the survivor; b's key is the one to retire), every field either
// holds, and for a field both hold with different non-nil values, the value
// p prefers. A nil or missing value never replaces a value. The merged
// record's Modified is the later of the two and its Tag is empty: it is a
// new write. Merge copies what it takes, so the result shares nothing with
// a or b, which are not modified.
//
// Merge fails, with an error wrapping [ErrMerge] and naming the keys, if
// either record is deleted or has no key, if the keys are equal, or if p
// holds an unknown Prefer value.
func Merge(a, b concord.Record, p Policy) (concord.Record, error) {
	fail := func(format string, args ...any) (concord.Record, error) {
		return concord.Record{}, fmt.Errorf("%w %q and %q: %s", ErrMerge, a.Key, b.Key, fmt.Sprintf(format, args...))
	}
	switch {
	case a.Key == "" || b.Key == "":
		return fail("%v", concord.ErrNoKey)
	case a.Key == b.Key:
		return fail("same key")
	case a.Deleted || b.Deleted:
		return fail("deleted record")
	}
	for _, field := range slices.Sorted(maps.Keys(p.Fields)) {
		if pr := p.Fields[field]; pr < PreferA || pr > PreferNewer {
			return fail("field %q: unknown Prefer %d", field, pr)
		}
	}
	if p.Prefer < PreferA || p.Prefer > PreferNewer {
		return fail("unknown Prefer %d", p.Prefer)
	}
	out := concord.Record{Key: a.Key, Fields: make(map[string]concord.Value, max(len(a.Fields), len(b.Fields)))}
	out.Modified = a.Modified
	if b.Modified.After(a.Modified) {
		out.Modified = b.Modified
	}
	bNewer := !a.Modified.IsZero() && !b.Modified.IsZero() && b.Modified.After(a.Modified)
	for field, va := range a.Fields {
		out.Fields[field] = va
	}
	for field, vb := range b.Fields {
		va, inA := a.Fields[field]
		switch {
		case !inA || va == nil:
			out.Fields[field] = vb
		case vb == nil || concord.EqualValues(va, vb):
		default:
			pr, ok := p.Fields[field]
			if !ok {
				pr = p.Prefer
			}
			if pr == PreferB || (pr == PreferNewer && bNewer) {
				out.Fields[field] = vb
			}
		}
	}
	for field, v := range out.Fields {
		out.Fields[field] = concord.CloneValue(v)
	}
	return out, nil
}
