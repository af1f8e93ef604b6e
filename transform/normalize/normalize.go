package normalize

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// Reasons a Normalizer rejects a value; test them with errors.Is. Each
// wraps [transform.ErrBadValue], so errors.Is(err, transform.ErrBadValue)
// holds for all of them. A value of a type a Normalizer does not accept
// fails with [transform.ErrWrongType] instead.
var (
	ErrUnknownCountry     = fmt.Errorf("%w: unknown country", transform.ErrBadValue)
	ErrUnknownSubdivision = fmt.Errorf("%w: unknown subdivision", transform.ErrBadValue)
	ErrUnknownCurrency    = fmt.Errorf("%w: unknown currency", transform.ErrBadValue)
	// ErrBadDate: the value does not match the declared layout.
	ErrBadDate = fmt.Errorf("%w: bad date", transform.ErrBadValue)
	// ErrAmbiguousDate: a date such as "03/04/2025" whose day and month
	// order cannot be known without a declared layout.
	ErrAmbiguousDate = fmt.Errorf("%w: ambiguous date", transform.ErrBadValue)
	ErrBadPhone      = fmt.Errorf("%w: bad phone number", transform.ErrBadValue)
	ErrBadEmail      = fmt.Errorf("%w: bad e-mail address", transform.ErrBadValue)
	// ErrBadAmount: not a decimal number, or more decimal places than the
	// currency's minor unit allows (amounts are never rounded).
	ErrBadAmount = fmt.Errorf("%w: bad amount", transform.ErrBadValue)
)

// Normalizer maps one field value to its normal form: "Deutschland" to
// "DE", " Ada@EXAMPLE.com " to "Ada@example.com". It returns an error
// wrapping one of this package's sentinels (or [transform.ErrWrongType])
// for a value it cannot normalise, and passes nil (an empty field) through
// as nil.
//
// Every Normalizer in this package is idempotent (normalising its output
// again changes nothing), never modifies its input, and is safe for
// concurrent use.
//
// A Normalizer has the type of the functions in a [transform.Converter],
// so a pair of them is a Converter for [transform.RenameWith]:
//
//	transform.Converter{In: normalize.CountryAlpha2(), Out: normalize.CountryName()}
//
// and [Fields] applies Normalizers to named fields as a
// [transform.Transformer].
type Normalizer func(v concord.Value) (concord.Value, error)

// Chain returns the Normalizer that applies ns in order, stopping at the
// first error.
func Chain(ns ...Normalizer) Normalizer {
	ns = slices.Clone(ns)
	return func(v concord.Value) (concord.Value, error) {
		for _, n := range ns {
			var err error
			if v, err = n(v); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
}

// Fields returns a Transformer that normalises the named fields of each
// record with their Normalizers, and passes every other field, and the
// record's Key, Deleted, Modified and Tag, through unchanged. A field
// absent from the record stays absent. Deleted records are returned as
// they are.
//
// The first failing field, in field-name order, rejects the record with a
// [*transform.FieldError] naming the record key, the field and its value,
// and wrapping the Normalizer's error. The input record is never modified.
// It panics if a Normalizer is nil.
func Fields(normalizers map[string]Normalizer) transform.Transformer {
	f := fields{names: slices.Sorted(maps.Keys(normalizers)), ns: maps.Clone(normalizers)}
	for _, name := range f.names {
		if f.ns[name] == nil {
			panic(fmt.Sprintf("normalize.Fields: nil Normalizer for field %q", name))
		}
	}
	return f
}

type fields struct {
	names []string
	ns    map[string]Normalizer
}

// String names the transformer in [transform.Chain] errors.
func (f fields) String() string { return fmt.Sprintf("normalize.Fields(%q)", f.names) }

// Transform normalises rec's named fields into a new Fields map.
func (f fields) Transform(_ context.Context, rec concord.Record) (concord.Record, error) {
	if rec.Deleted {
		return rec, nil
	}
	out := maps.Clone(rec.Fields)
	for _, name := range f.names {
		v, ok := rec.Fields[name]
		if !ok {
			continue
		}
		nv, err := f.ns[name](v)
		if err != nil {
			return concord.Record{}, &transform.FieldError{Key: rec.Key, Field: name, Value: v, Err: err}
		}
		out[name] = nv
	}
	rec.Fields = out
	return rec, nil
}

// stringOf returns v as a string, or an error wrapping
// [transform.ErrWrongType].
func stringOf(v concord.Value) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: want string, got %T", transform.ErrWrongType, v)
	}
	return s, nil
}

// onString wraps a string-to-string function as a Normalizer.
func onString(f func(string) (string, error)) Normalizer {
	return func(v concord.Value) (concord.Value, error) {
		if v == nil {
			return nil, nil
		}
		s, err := stringOf(v)
		if err != nil {
			return nil, err
		}
		return f(s)
	}
}

// Space returns a Normalizer that trims leading and trailing white space
// and replaces every inner run of white space (any Unicode space, tabs,
// newlines) with one ASCII space: "  Ada \t Lovelace\n" is "Ada Lovelace".
func Space() Normalizer {
	return onString(func(s string) (string, error) { return strings.Join(strings.Fields(s), " "), nil })
}

// Lower returns a Normalizer that maps a string to lower case
// ([strings.ToLower]), for case-insensitive identifiers such as user names
// or tags. Combine it with [Space] through [Chain] to fold case and spacing.
func Lower() Normalizer {
	return onString(func(s string) (string, error) { return strings.ToLower(s), nil })
}

// Upper returns a Normalizer that maps a string to upper case
// ([strings.ToUpper]), for codes such as SKUs.
func Upper() Normalizer {
	return onString(func(s string) (string, error) { return strings.ToUpper(s), nil })
}

// Email returns a Normalizer for e-mail addresses: it trims white space and
// lower-cases the domain, keeping the local part as written (it may be case
// sensitive on the receiving server): " Ada.L@Example.COM " is
// "Ada.L@example.com".
//
// The check is basic, not RFC 5322: exactly one "@", a local part of 1 to
// 64 characters without spaces or control characters, and a domain of at
// least two dot-separated labels of letters, digits and inner hyphens.
// Anything else fails with [ErrBadEmail].
func Email() Normalizer {
	return onString(func(s string) (string, error) {
		s = strings.TrimSpace(s)
		local, domain, ok := strings.Cut(s, "@")
		switch {
		case !ok:
			return "", fmt.Errorf("%w: no @", ErrBadEmail)
		case strings.Contains(domain, "@"):
			return "", fmt.Errorf("%w: more than one @", ErrBadEmail)
		case local == "" || len(local) > 64:
			return "", fmt.Errorf("%w: local part must have 1 to 64 characters", ErrBadEmail)
		case strings.IndexFunc(local, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			return "", fmt.Errorf("%w: space or control character in the local part", ErrBadEmail)
		}
		domain = strings.ToLower(domain)
		labels := strings.Split(domain, ".")
		if len(labels) < 2 {
			return "", fmt.Errorf("%w: domain %q has no dot", ErrBadEmail, domain)
		}
		for _, l := range labels {
			bad := l == "" || l[0] == '-' || l[len(l)-1] == '-' ||
				strings.IndexFunc(l, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' }) >= 0
			if bad {
				return "", fmt.Errorf("%w: bad domain label %q", ErrBadEmail, l)
			}
		}
		return local + "@" + domain, nil
	})
}
