// Package dedupe finds records of one system that probably describe the same
// contact, and merges two of them when, and only when, the host asks.
//
// [Finder.Find] looks for two kinds of evidence:
//
//   - Exact: the same e-mail address (trimmed, lower-cased) or the same
//     phone number (its last 9 digits, so that "+41 44 668 18 00" and
//     "044 668 18 00" agree). These are [Exact] suggestions, which a host
//     may merge with [Merge] after a look.
//   - Fuzzy: similar names and addresses, scored with [JaroWinkler]. To
//     stay far from comparing every pair, records are compared only with
//     their neighbours in two sort orders (the sorted-neighbourhood
//     method): by name (family name first) and by postal code and
//     address. The number of pairs scored is reported in
//     [Result.Comparisons]. Fuzzy suggestions carry the evidence (each
//     field's score) and are never merged by this package.
//
// Nothing here modifies the records it is given.
package dedupe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/concordsync/concord"
)

// Config names the contact fields and tunes the matcher. Only Name is
// required; a field left empty is not used. Zero numbers take the defaults
// documented on each.
type Config struct {
	// Name lists the fields that make up a person's name, first to last
	// ("first_name", "last_name"), or one field with the whole name.
	// Each is scored on its own and the name scores as the least similar
	// of them, so that two people of one household (same family name and
	// address) are not taken for one.
	Name []string
	// Email is the e-mail address field.
	Email string
	// Phone is the phone number field.
	Phone string
	// Address lists the address fields compared as one text ("street",
	// "city"). Groups of digits (house numbers) must be equal; the rest
	// is scored with Jaro-Winkler.
	Address []string
	// PostalCode is compared exactly (letters and digits only, case
	// ignored) and leads the address sort order.
	PostalCode string

	// Threshold is the weighted score a fuzzy pair needs to be suggested.
	// Default 0.9.
	Threshold float64
	// MinName is the name score a fuzzy pair needs, whatever its address
	// scores. Default 0.85.
	MinName float64
	// Window is how many neighbours, in each sort order, a record is
	// compared with (the window of the sorted-neighbourhood method).
	// Comparisons are at most about 2*Window per record. Default 10.
	Window int
	// PhoneDigits is how many trailing digits of a phone number are
	// compared, so that country codes and trunk prefixes do not matter:
	// with the default 9, "+41 44 668 18 00" and "044 668 18 00" agree,
	// and so do "+1 (555) 010-0200" and "555-010-0200". Two numbers that
	// differ only before their last PhoneDigits digits are taken as one;
	// use 10 for North American data. Numbers with fewer than 7 digits are
	// ignored. Default 9.
	PhoneDigits int
	// MaxGroup is the largest number of records sharing one e-mail or
	// phone that are suggested as duplicates of each other: a value
	// shared by more (a switchboard, "info@") is reported in
	// [Result.Shared] instead. Default 20.
	MaxGroup int
}

// Weights of the fuzzy score.
const (
	nameWeight    = 0.5
	addressWeight = 0.35
	postalWeight  = 0.15
)

// ErrInvalidConfig is wrapped by the errors of [New].
var ErrInvalidConfig = errors.New("invalid dedupe config")

// ErrDuplicateKey is returned, in a [*concord.RecordError], when two
// records given to [Finder.Find] have the same key.
var ErrDuplicateKey = errors.New("duplicate record key")

// Finder finds likely duplicates. It is immutable and safe for concurrent
// use.
type Finder struct {
	cfg Config
}

// New checks cfg, fills in the defaults and returns a Finder.
func New(cfg Config) (*Finder, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
	}
	if len(cfg.Name) == 0 {
		bad("no name field")
	}
	for _, f := range slices.Concat(cfg.Name, cfg.Address) {
		if f == "" {
			bad("empty field name")
		}
	}
	for name, x := range map[string]float64{"Threshold": cfg.Threshold, "MinName": cfg.MinName} {
		if x < 0 || x > 1 {
			bad("%s %v outside 0..1", name, x)
		}
	}
	if cfg.Window < 0 || cfg.PhoneDigits < 0 || cfg.MaxGroup < 0 {
		bad("negative Window, PhoneDigits or MaxGroup")
	}
	if cfg.PhoneDigits > 0 && cfg.PhoneDigits < 7 {
		bad("PhoneDigits %d below 7", cfg.PhoneDigits)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.Name = slices.Clone(cfg.Name)
	cfg.Address = slices.Clone(cfg.Address)
	cfg.Threshold = cmp.Or(cfg.Threshold, 0.9)
	cfg.MinName = cmp.Or(cfg.MinName, 0.85)
	cfg.Window = max(cmp.Or(cfg.Window, 10), 2)
	cfg.PhoneDigits = cmp.Or(cfg.PhoneDigits, 9)
	cfg.MaxGroup = max(cmp.Or(cfg.MaxGroup, 20), 2)
	return &Finder{cfg: cfg}, nil
}

// Match is the kind of a [Suggestion].
type Match int

const (
	// Fuzzy: names and addresses are similar. Only a person should decide.
	Fuzzy Match = iota + 1
	// Exact: the records share an e-mail address or phone number.
	Exact
)

// String returns "fuzzy" or "exact".
func (m Match) String() string {
	switch m {
	case Fuzzy:
		return "fuzzy"
	case Exact:
		return "exact"
	}
	return fmt.Sprintf("Match(%d)", int(m))
}

// Suggestion is a pair of records that probably describe the same contact.
type Suggestion struct {
	// A and B are the keys of the two records, A < B.
	A, B string
	// Match says what kind of evidence there is.
	Match Match
	// Score is 1 for an Exact match, else the weighted fuzzy score.
	Score float64
	// Evidence lists what matched: for Exact, the shared values; for
	// Fuzzy, every field compared, with its score.
	Evidence []Evidence
}

// Evidence is one comparison behind a Suggestion.
type Evidence struct {
	// Field names the field compared, or the fields joined with "+"
	// ("first_name+last_name").
	Field string
	// Score from 0 to 1; 1 for an exact match.
	Score float64
	// A and B are the normalised values compared.
	A, B string
}

// Shared is an e-mail address or phone number held by more than
// Config.MaxGroup records: not suggested, but worth a look.
type Shared struct {
	Field string
	Value string // normalised
	Keys  []string
}

// Result is what [Finder.Find] found.
type Result struct {
	// Records is the number of records examined (deleted ones are not).
	Records int
	// Comparisons is the number of record pairs scored by the fuzzy
	// matcher: the cost that blocking keeps near Records*2*Window.
	Comparisons int
	// Suggestions, exact ones first, then by score, highest first.
	Suggestions []Suggestion
	// Shared lists the values too widely shared to suggest, by field
	// and value.
	Shared []Shared
}

// prepared holds one record's normalised matching material.
type prepared struct {
	key           string
	email, phone  string
	names         [][]rune // normalised name parts, as Config.Name
	hasName       bool
	sortName      string // family name first
	addr          []rune // address without digit groups
	addrText      string
	addrDigits    string // the digit groups, space-separated
	postal        string
	hasAddr       bool
	sortByAddress string
}

// Find returns the likely duplicates among recs. Deleted records are
// skipped. Records must have distinct, non-empty keys ([ErrDuplicateKey],
// [concord.ErrNoKey]). Cancelling ctx stops the search: Find then returns
// ctx's error. Find does not modify recs.
func (f *Finder) Find(ctx context.Context, recs []concord.Record) (*Result, error) {
	ps := make([]prepared, 0, len(recs))
	seen := make(map[string]bool, len(recs))
	for _, r := range recs {
		if r.Deleted {
			continue
		}
		switch {
		case r.Key == "":
			return nil, &concord.RecordError{Err: concord.ErrNoKey}
		case seen[r.Key]:
			return nil, &concord.RecordError{Key: r.Key, Err: ErrDuplicateKey}
		}
		seen[r.Key] = true
		ps = append(ps, f.prepare(r))
	}
	res := &Result{Records: len(ps)}
	found := make(map[[2]int]*Suggestion)
	f.exact(ps, found, res)

	// Sorted neighbourhood, two passes. The second skips pairs the first
	// already scored (near each other in the first order).
	w := f.cfg.Window
	byName := order(ps, func(p *prepared) string { return p.sortName })
	pos := make([]int, len(ps))
	for rank, i := range byName {
		pos[i] = rank
	}
	byAddress := order(ps, func(p *prepared) string { return p.sortByAddress })
	for pass, ord := range [][]int{byName, byAddress} {
		for r := range ord {
			if r%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			for s := r + 1; s < min(len(ord), r+w); s++ {
				i, j := ord[r], ord[s]
				if pass == 1 && abs(pos[i]-pos[j]) < w {
					continue
				}
				res.Comparisons++
				if sg := f.fuzzy(&ps[i], &ps[j]); sg != nil {
					k := pairKey(i, j)
					if _, dup := found[k]; !dup {
						found[k] = sg
					}
				}
			}
		}
	}
	for _, s := range found {
		res.Suggestions = append(res.Suggestions, *s)
	}
	slices.SortFunc(res.Suggestions, func(x, y Suggestion) int {
		return cmp.Or(cmp.Compare(y.Match, x.Match), cmp.Compare(y.Score, x.Score),
			strings.Compare(x.A, y.A), strings.Compare(x.B, y.B))
	})
	return res, nil
}

// exact adds the suggestions of shared e-mail addresses and phone numbers.
func (f *Finder) exact(ps []prepared, found map[[2]int]*Suggestion, res *Result) {
	for _, by := range []struct {
		field string
		value func(*prepared) string
	}{
		{f.cfg.Email, func(p *prepared) string { return p.email }},
		{f.cfg.Phone, func(p *prepared) string { return p.phone }},
	} {
		groups := make(map[string][]int)
		for i := range ps {
			if v := by.value(&ps[i]); v != "" {
				groups[v] = append(groups[v], i)
			}
		}
		for _, v := range sortedKeys(groups) {
			g := groups[v]
			if len(g) > f.cfg.MaxGroup {
				keys := make([]string, len(g))
				for n, i := range g {
					keys[n] = ps[i].key
				}
				slices.Sort(keys)
				res.Shared = append(res.Shared, Shared{Field: by.field, Value: v, Keys: keys})
				continue
			}
			for x := range g {
				for _, j := range g[x+1:] {
					i := g[x]
					k := pairKey(i, j)
					s := found[k]
					if s == nil {
						a, b := ordered(ps[i].key, ps[j].key)
						s = &Suggestion{A: a, B: b, Match: Exact, Score: 1}
						found[k] = s
					}
					s.Evidence = append(s.Evidence, Evidence{Field: by.field, Score: 1, A: v, B: v})
				}
			}
		}
	}
}

// fuzzy scores a pair and returns a suggestion if it passes the thresholds.
func (f *Finder) fuzzy(p, q *prepared) *Suggestion {
	if !p.hasName || !q.hasName {
		return nil // no name, no evidence
	}
	// The name scores as its least similar part, so that a household
	// (same family name, other first name) does not pass on the family
	// name. A part missing on either side is left out.
	name := 1.0
	for i := range p.names {
		if len(p.names[i]) > 0 && len(q.names[i]) > 0 {
			if name = min(name, jaroWinkler(p.names[i], q.names[i])); name < f.cfg.MinName {
				return nil
			}
		}
	}
	if p.key > q.key {
		p, q = q, p // evidence A is the suggestion's A
	}
	var ev []Evidence
	for i, field := range f.cfg.Name {
		a, b := p.names[i], q.names[i]
		if len(a) > 0 && len(b) > 0 {
			ev = append(ev, Evidence{Field: field, Score: jaroWinkler(a, b), A: string(a), B: string(b)})
		}
	}
	sum, weight := nameWeight*name, nameWeight
	if p.hasAddr && q.hasAddr {
		s := 0.0
		if p.addrDigits == q.addrDigits {
			s = jaroWinkler(p.addr, q.addr)
		}
		ev = append(ev, Evidence{Field: strings.Join(f.cfg.Address, "+"), Score: s, A: p.addrText, B: q.addrText})
		sum, weight = sum+addressWeight*s, weight+addressWeight
	}
	if p.postal != "" && q.postal != "" {
		s := 0.0
		if p.postal == q.postal {
			s = 1
		}
		ev = append(ev, Evidence{Field: f.cfg.PostalCode, Score: s, A: p.postal, B: q.postal})
		sum, weight = sum+postalWeight*s, weight+postalWeight
	}
	score := sum / weight
	if score < f.cfg.Threshold {
		return nil
	}
	return &Suggestion{A: p.key, B: q.key, Match: Fuzzy, Score: score, Evidence: ev}
}

func (f *Finder) prepare(r concord.Record) prepared {
	p := prepared{key: r.Key}
	if f.cfg.Email != "" {
		p.email = strings.ToLower(strings.TrimSpace(text(r.Fields[f.cfg.Email])))
	}
	if f.cfg.Phone != "" {
		p.phone = phoneKey(text(r.Fields[f.cfg.Phone]), f.cfg.PhoneDigits)
	}
	names := make([]string, len(f.cfg.Name))
	p.names = make([][]rune, len(f.cfg.Name))
	for i, n := range f.cfg.Name {
		names[i] = fold(text(r.Fields[n]))
		p.names[i] = []rune(names[i])
		p.hasName = p.hasName || names[i] != ""
	}
	slices.Reverse(names)
	p.sortName = strings.Join(strings.Fields(strings.Join(names, " ")), " ")
	var addr []string
	for _, a := range f.cfg.Address {
		addr = append(addr, fold(text(r.Fields[a])))
	}
	var letters, digits []string
	for _, tok := range strings.Fields(strings.Join(addr, " ")) {
		if strings.IndexFunc(tok, unicode.IsDigit) >= 0 {
			digits = append(digits, tok)
		} else {
			letters = append(letters, tok)
		}
	}
	p.addrText = strings.Join(slices.Concat(digits, letters), " ")
	p.addr = []rune(strings.Join(letters, " "))
	p.addrDigits = strings.Join(digits, " ")
	p.hasAddr = len(letters)+len(digits) > 0
	if f.cfg.PostalCode != "" {
		p.postal = strings.ToUpper(strings.ReplaceAll(fold(text(r.Fields[f.cfg.PostalCode])), " ", ""))
	}
	p.sortByAddress = p.postal + "|" + string(p.addr) + "|" + p.addrDigits + "|" + p.sortName
	return p
}

// text returns v as a string: strings as they are, numbers and other
// scalars printed, nil as "".
func text(v concord.Value) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// fold lower-cases s and turns everything but letters and digits into
// single spaces.
func fold(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}), " ")
}

// phoneKey returns the last n digits of s, or "" if s has fewer than 7.
func phoneKey(s string, n int) string {
	d := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
	if len(d) < 7 {
		return ""
	}
	return d[max(0, len(d)-n):]
}

// order returns the indices of ps sorted by key (ties by record key).
func order(ps []prepared, key func(*prepared) string) []int {
	idx := make([]int, len(ps))
	keys := make([]string, len(ps))
	for i := range ps {
		idx[i] = i
		keys[i] = key(&ps[i])
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(strings.Compare(keys[a], keys[b]), strings.Compare(ps[a].key, ps[b].key))
	})
	return idx
}

func pairKey(i, j int) [2]int {
	if i > j {
		i, j = j, i
	}
	return [2]int{i, j}
}

func ordered(a, b string) (string, string) {
	if a > b {
		return b, a
	}
	return a, b
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
