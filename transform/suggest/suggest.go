// Package suggest ranks cleansing suggestions for values that a field
// refuses: a state spelled "Californa", a country name one letter off, a
// street name close to one the system already holds. It is a pure
// library: it never changes a record. The host shows the suggestions (in a
// dead letter, an explanation, a reconciliation report) and, through a
// per-field [Policy], applies the best one automatically only when it is
// both good enough and clearly better than the next, as an audited
// correction that keeps the original, or holds it for a person.
//
// An [Index] is a [Suggester] over named fields. Each field's candidates
// come from fixed lists added with [Index.Add] — the allowed values of a
// dictionary field ([Allowed]), ISO 3166-1 country names ([Countries]),
// ISO 3166-2 subdivision names ([Subdivisions]), any list ([Values]) — and
// from the values the system already holds, which the host feeds with
// [Index.Learn] into a bounded set per field.
//
// # Scoring
//
// Query and candidate are folded first: letters and digits in lower case,
// Latin accents removed, every run of spaces and punctuation one space.
// The distance d between the folded forms is the optimal string alignment
// (restricted Damerau–Levenshtein) distance, in which a missing
// character, an extra character, a wrong character and two adjacent
// characters swapped each cost one edit, with three discounts for the
// typos that fingers make, each costing half an edit:
//
//   - a wrong character on a key that touches the right one on a US
//     QWERTY keyboard ("Califirnia");
//   - an extra character that repeats or touches a character next to it
//     ("Califoprnia", "Californnia");
//   - a missing letter of a doubled pair ("Tenessee").
//
// With |q| and |c| the lengths of the folded query and candidate in
// characters and p the length of their common prefix (at most 4; people
// seldom mistype the first letters), the score is
//
//	base  = 1 - d / max(|q|, |c|)     (0 if negative)
//	score = base + 0.025 * p * (1 - base)
//
// in [0,1]: 1 exactly when the folded forms are equal ("CALIFORNIA"),
// never 1 otherwise. "Californa" scores 0.91 against "California".
// Suggestions are ranked by score, then (for learned values) by how often
// the value was learned, then by value, so the ranking is deterministic.
//
// Candidates are bucketed by length, and a candidate whose length or set
// of characters differs from the query's more than its score could make
// up is never compared; the comparison itself stops as soon as the
// distance exceeds what the minimum score allows.
//
// Two- and three-letter codes (ISO 3166-1 alpha-2 and alpha-3, subdivision
// codes) are not candidates: a code one letter off is usually another
// valid code, so no suggestion for it could be trusted.
package suggest

import (
	"cmp"
	"container/list"
	"fmt"
	"slices"
	"sync"

	"github.com/concordsync/concord/transform"
)

// Suggestion is one ranked replacement for a refused value: the
// contract type lives in package transform (which the engine imports
// without this package's reference data).
type Suggestion = transform.Suggestion

// Suggester ranks replacements for a value that a field refuses, best
// first; see [transform.Suggester].
type Suggester = transform.Suggester

// Candidate is one value a field may be corrected to.
type Candidate struct {
	// Value is what a suggestion proposes.
	Value string
	// Why says where the value comes from: "ISO 3166-1 DE", "allowed
	// value of \"status\"". It starts the suggestion's Why.
	Why string
}

// Defaults of [Options].
const (
	DefaultMax      = 5
	DefaultMinScore = 0.7
	DefaultLearned  = 1000
)

// Options tune an [Index]. The zero Options are the defaults.
type Options struct {
	// Max is the most suggestions returned for one value; 0 or less means
	// DefaultMax.
	Max int
	// MinScore is the lowest score a suggestion may have; 0 or less (or
	// NaN) means DefaultMinScore. Above 1, nothing is ever suggested.
	MinScore float64
	// Learned bounds the values learned per field with [Index.Learn];
	// past it, the value learned or seen least recently is forgotten. 0
	// or less means DefaultLearned.
	Learned int
}

// Index is a [Suggester] over named fields, from fixed candidate lists
// and from values learned as the system holds them. It is safe for
// concurrent use. The zero Index is not usable: call [New].
type Index struct {
	max      int
	minScore float64
	learnCap int

	mu     sync.RWMutex
	fields map[string]*fieldIndex
}

// New returns an empty Index with the options o.
func New(o Options) *Index {
	ix := &Index{max: o.Max, minScore: o.MinScore, learnCap: o.Learned, fields: map[string]*fieldIndex{}}
	if ix.max <= 0 {
		ix.max = DefaultMax
	}
	if !(ix.minScore > 0) {
		ix.minScore = DefaultMinScore
	}
	if ix.learnCap <= 0 {
		ix.learnCap = DefaultLearned
	}
	return ix
}

// form is one candidate as indexed: its value, its folded key and the
// bookkeeping of the bucket and, if learned, of the LRU list that hold it.
type form struct {
	value, why string
	key        []rune
	miss       []int8 // missingCost of every position of key
	cheap      int    // positions of key whose missingCost is half
	hist       *histogram
	learned    bool
	count      int           // times learned
	pos        int           // position in its length bucket
	elem       *list.Element // in fieldIndex.lru, if learned
}

// indexed fills in what the scan needs of f's key besides the key itself.
func (f *form) indexed() *form {
	f.miss = missingCosts(f.key)
	f.hist = histogramOf(f.key)
	for _, m := range f.miss {
		if m == half {
			f.cheap++
		}
	}
	return f
}

// lengthBound is the least distance, in half edits, between keys of
// lengths lq and lc when the longer one has cheap positions that may be
// left out for half an edit: the difference in length is made up of that
// many characters left out of the longer one, the cheap ones first.
func lengthBound(lq, lc, cheap int) int {
	diff := abs(lq - lc)
	c := min(diff, cheap)
	return c*half + (diff-c)*full
}

// buckets holds forms by the length of their key.
type buckets struct {
	byLen map[int][]*form
	lens  []int // the keys of byLen, sorted
}

func (b *buckets) add(f *form) {
	if b.byLen == nil {
		b.byLen = map[int][]*form{}
	}
	l := len(f.key)
	if _, ok := b.byLen[l]; !ok {
		i, _ := slices.BinarySearch(b.lens, l)
		b.lens = slices.Insert(b.lens, i, l)
	}
	f.pos = len(b.byLen[l])
	b.byLen[l] = append(b.byLen[l], f)
}

func (b *buckets) remove(f *form) {
	l := len(f.key)
	s := b.byLen[l]
	last := s[len(s)-1]
	s[f.pos], last.pos = last, f.pos
	s[len(s)-1] = nil
	s = s[:len(s)-1]
	if len(s) > 0 {
		b.byLen[l] = s
		return
	}
	delete(b.byLen, l)
	if i, ok := slices.BinarySearch(b.lens, l); ok {
		b.lens = slices.Delete(b.lens, i, i+1)
	}
}

// fieldIndex holds one field's candidates.
type fieldIndex struct {
	fixed       buckets
	fixedValues map[string]bool
	learned     buckets
	held        map[string]*form
	lru         *list.List // of *form, most recently learned first
}

func (ix *Index) field(name string) *fieldIndex {
	fi := ix.fields[name]
	if fi == nil {
		fi = &fieldIndex{fixedValues: map[string]bool{}, held: map[string]*form{}, lru: list.New()}
		ix.fields[name] = fi
	}
	return fi
}

// Add makes cands candidates of field. A candidate whose value the field
// already has from an earlier Add is skipped (the first Why stays), as is
// one with no letter or digit, or longer than 256 characters. A value
// that is a fixed candidate of a field is taken as right: Suggest returns
// nothing for it.
func (ix *Index) Add(field string, cands ...Candidate) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	fi := ix.field(field)
	for _, c := range cands {
		if fi.fixedValues[c.Value] {
			continue
		}
		key := fold(c.Value)
		if len(key) == 0 || len(key) > maxRunes {
			continue
		}
		fi.fixedValues[c.Value] = true
		fi.fixed.add((&form{value: c.Value, why: c.Why, key: key}).indexed())
	}
}

// Learn records that the system holds value in field, for suggestions
// such as a street name close to one already known. Each field keeps at
// most Options.Learned values, forgetting the one learned least recently;
// learning a value again counts it (more often held values rank first
// among equal scores) and makes it the most recent. Values with no letter
// or digit, or longer than 256 characters, are ignored. Learned values are
// not taken as right: a value that was learned still gets suggestions
// (other than itself).
func (ix *Index) Learn(field, value string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	fi := ix.field(field)
	if f, ok := fi.held[value]; ok {
		f.count++
		fi.lru.MoveToFront(f.elem)
		return
	}
	key := fold(value)
	if len(key) == 0 || len(key) > maxRunes {
		return
	}
	if len(fi.held) >= ix.learnCap {
		old := fi.lru.Remove(fi.lru.Back()).(*form)
		delete(fi.held, old.value)
		fi.learned.remove(old)
	}
	f := (&form{value: value, key: key, learned: true, count: 1}).indexed()
	f.elem = fi.lru.PushFront(f)
	fi.held[value] = f
	fi.learned.add(f)
}

// Learned returns how many values field holds from [Index.Learn].
func (ix *Index) Learned(field string) int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if fi := ix.fields[field]; fi != nil {
		return len(fi.held)
	}
	return 0
}

// hit is a candidate that scored, with what Suggest needs of it after the
// lock is released.
type hit struct {
	value, why string
	key        []rune
	learned    bool
	count      int
	score      float64
}

// Suggest returns up to Options.Max candidates of field scoring at least
// Options.MinScore against value, best first (see the package doc for
// the score and the order). It returns nil for a field without
// candidates, for a value that is a fixed candidate of the field, and for
// a value with no letter or digit or longer than 256 characters.
func (ix *Index) Suggest(field, value string) []Suggestion {
	q := fold(value)
	if len(q) == 0 || len(q) > maxRunes {
		return nil
	}
	hits := ix.scan(field, value, q)
	if len(hits) == 0 {
		return nil
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if a.learned != b.learned { // a fixed list is the better authority
			if b.learned {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		if c := cmp.Compare(a.value, b.value); c != 0 {
			return c
		}
		return cmp.Compare(a.why, b.why)
	})
	// A value may be both fixed and learned: keep its first, best, entry.
	out := make([]Suggestion, 0, min(len(hits), ix.max))
	seen := map[string]bool{}
	for _, h := range hits {
		if len(out) == ix.max {
			break
		}
		if seen[h.value] {
			continue
		}
		seen[h.value] = true
		why := h.why
		if h.learned {
			why = fmt.Sprintf("held value (learned %d %s)", h.count, plural(h.count, "time", "times"))
		}
		out = append(out, Suggestion{Value: h.value, Score: h.score, Why: why + "; " + explain(q, h.key)})
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// scan scores the candidates of field that may rank among the best
// Options.Max. It visits the length buckets nearest the query's length
// first and, once it holds Options.Max hits, raises the score a candidate
// must reach to the lowest of the best Options.Max (ties included, so the
// order among equal scores is still decided in Suggest), which narrows
// the distance it computes. A learned value that is also a fixed
// candidate is skipped: the fixed one scores the same and ranks first.
func (ix *Index) scan(field, value string, q []rune) []hit {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	fi := ix.fields[field]
	if fi == nil || fi.fixedValues[value] {
		return nil
	}
	pq := newQuery(q)
	qhist := histogramOf(q)
	qcheap := 0
	for _, e := range pq.extra {
		if e == half {
			qcheap++
		}
	}
	var rows []int
	var hits []hit
	top := make([]float64, 0, ix.max) // the best scores so far, ascending
	floor := ix.minScore
	for _, b := range []*buckets{&fi.fixed, &fi.learned} {
		lens := slices.Clone(b.lens)
		slices.SortStableFunc(lens, func(x, y int) int { return cmp.Compare(abs(x-len(q)), abs(y-len(q))) })
		for _, l := range lens {
			if need := 3 * (l + 1); len(rows) < need {
				rows = make([]int, need)
			}
			for _, f := range b.byLen[l] {
				limit := limitFor(floor, max(len(q), l))
				if abs(len(q)-l)*half > limit {
					break
				}
				if f.value == value || (f.learned && fi.fixedValues[f.value]) {
					continue
				}
				cheap := f.cheap
				if len(q) > l {
					cheap = qcheap
				}
				if lengthBound(len(q), l, cheap) > limit {
					continue
				}
				if qhist.bound(f.hist) > limit {
					continue
				}
				d := distance(pq, f.key, f.miss, limit, rows)
				if d > limit {
					continue
				}
				s := score(q, f.key, d)
				if s < floor {
					continue
				}
				hits = append(hits, hit{value: f.value, why: f.why, key: f.key, learned: f.learned, count: f.count, score: s})
				// Keep the best ix.max scores; the lowest of them is the floor.
				i, _ := slices.BinarySearch(top, s)
				if len(top) < ix.max {
					top = slices.Insert(top, i, s)
				} else if i > 0 {
					top = slices.Insert(top[1:], i-1, s)
				}
				if len(top) == ix.max {
					floor = max(floor, top[0])
				}
			}
		}
	}
	return hits
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// histogram counts the characters of a key by class: one class for each
// ASCII letter and digit and for the space, and the rest shared by the
// other characters.
type histogram [64]uint16

func histogramOf(key []rune) *histogram {
	var h histogram
	for _, r := range key {
		var c int
		switch {
		case r >= 'a' && r <= 'z':
			c = int(r - 'a')
		case r >= '0' && r <= '9':
			c = 26 + int(r-'0')
		case r == ' ':
			c = 36
		default:
			c = 37 + int(uint32(r)%27)
		}
		h[c]++ // at most maxRunes: no overflow
	}
	return &h
}

// bound is a lower bound, in half edits, on the distance between the keys
// of h and o. Swapping two characters leaves the counts as they are; a
// wrong character lowers by at most one both the surplus of h over o and
// that of o over h, summed over the classes; an extra or a missing
// character lowers one of them by one. Each costs at least half an edit,
// so at least as many edits as the larger surplus are needed. (Characters
// sharing a class only make the surpluses smaller.)
func (h *histogram) bound(o *histogram) int {
	more, less := 0, 0
	for i := range h {
		d := int(h[i]) - int(o[i])
		if d > 0 {
			more += d
		} else {
			less -= d
		}
	}
	return max(more, less) * half
}
