package dict

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"
)

// KindFunc checks that a string has a format. It returns nil if it does and
// an error saying why not otherwise; the error becomes the Cause of an
// [ErrFormat] [Violation]. It must be safe for concurrent use.
type KindFunc func(s string) error

// Names of the kinds. The ISO kinds need reference tables, which the
// built-in registry does not have: register them with [Kinds.With] (package
// transform/normalize holds the tables).
const (
	// KindEmail: an addr-spec such as "ada@example.com" (no display name,
	// no comments, no quoted local part; the domain has a dot).
	KindEmail = "email"
	// KindE164: an E.164 telephone number: "+", a non-zero digit, and at
	// most 15 digits in all ("+41446681800").
	KindE164 = "e164"
	// KindCountry: an ISO 3166-1 alpha-2 country code ("CH"). Not built
	// in.
	KindCountry = "iso3166-1-alpha2"
	// KindSubdivision: an ISO 3166-2 subdivision code ("CH-ZH"). Not
	// built in.
	KindSubdivision = "iso3166-2"
	// KindCurrency: an ISO 4217 currency code ("CHF"). Not built in.
	KindCurrency = "iso4217"
)

// KindDate returns the name of the kind of strings that parse with
// [time.Parse] in layout: KindDate(time.DateOnly) is "date:2006-01-02".
// Every registry resolves such names; layout must not be empty.
func KindDate(layout string) string { return datePrefix + layout }

const datePrefix = "date:"

// Kinds is a registry of formats by name. It is immutable: [Kinds.With]
// returns a new registry. The zero value and nil hold no kinds except the
// date kinds ([KindDate]).
type Kinds struct {
	m map[string]KindFunc
}

// BuiltinKinds returns the registry of the formats that need no reference
// data: [KindEmail], [KindE164] and the date kinds.
func BuiltinKinds() *Kinds {
	return &Kinds{m: map[string]KindFunc{
		KindEmail: checkEmail,
		KindE164:  checkE164,
	}}
}

// With returns a registry holding k's kinds and name, checked by f
// (replacing a kind of that name). It panics if name is empty, starts
// with "date:" or f is nil: registries are assembled at start-up. A host
// plugs in its ISO tables this way:
//
//	kinds := dict.BuiltinKinds().
//		With(dict.KindCountry, isCountry).
//		With(dict.KindCurrency, isCurrency)
//	d, err := dict.Options{Kinds: kinds}.New(fields...)
func (k *Kinds) With(name string, f KindFunc) *Kinds {
	if name == "" || strings.HasPrefix(name, datePrefix) || f == nil {
		panic(fmt.Sprintf("dict.Kinds.With: invalid kind %q (or nil func)", name))
	}
	var m map[string]KindFunc
	if k != nil {
		m = maps.Clone(k.m)
	}
	if m == nil {
		m = make(map[string]KindFunc)
	}
	m[name] = f
	return &Kinds{m: m}
}

// Lookup returns the check for the kind name.
func (k *Kinds) Lookup(name string) (KindFunc, bool) {
	if layout, ok := strings.CutPrefix(name, datePrefix); ok && layout != "" {
		return func(s string) error {
			if _, err := time.Parse(layout, s); err != nil {
				return fmt.Errorf("not a date in layout %q", layout)
			}
			return nil
		}, true
	}
	if k == nil {
		return nil, false
	}
	f, ok := k.m[name]
	return f, ok
}

var (
	emailRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*" +
		"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$")
	e164RE = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

	errEmail = errors.New("not an e-mail address")
	errE164  = errors.New("not an E.164 number (+ and up to 15 digits)")
)

func checkEmail(s string) error {
	local, _, _ := strings.Cut(s, "@")
	if len(s) > 254 || len(local) > 64 || !emailRE.MatchString(s) {
		return errEmail
	}
	return nil
}

func checkE164(s string) error {
	if !e164RE.MatchString(s) {
		return errE164
	}
	return nil
}
