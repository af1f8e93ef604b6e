package suggest

import (
	"fmt"
	"strings"
	"unicode"
)

// maxRunes bounds the length, in runes after folding, of the values this
// package compares: a longer query gets no suggestion and a longer
// candidate is not indexed, so that hostile input cannot make one call
// quadratic in a megabyte.
const maxRunes = 256

// fold reduces s to the form that distances are measured on: letters and
// digits in lower case, Latin diacritics removed ("ü" is "u", "ß" is "ss"),
// combining marks dropped, and every run of other characters (spaces,
// punctuation, invalid UTF-8) one space, trimmed at both ends. So
// "Côte d'Ivoire", "cote d ivoire" and "COTE-D-IVOIRE" fold alike.
func fold(s string) []rune {
	out := make([]rune, 0, len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && len(out) > 0 {
				out = append(out, ' ')
			}
			space = false
			r = unicode.ToLower(r)
			if plain, ok := plainLatin[r]; ok {
				out = append(out, []rune(plain)...)
			} else {
				out = append(out, r)
			}
		case unicode.Is(unicode.Mn, r):
			// A combining accent of a decomposed letter: drop it.
		default:
			space = true
		}
	}
	return out
}

// plainLatin maps lower-case Latin letters with diacritics, and the few
// letters conventionally written as two, to plain ASCII.
var plainLatin = func() map[rune]string {
	m := map[rune]string{
		'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'đ': "d", 'ð': "d",
		'ł': "l", 'þ': "th", 'ı': "i", 'ħ': "h", 'ŧ': "t", 'ŀ': "l",
	}
	for plain, accented := range map[string]string{
		"a": "àáâãäåāăąǎȁȃạảấầẩẫậắằẳẵặ",
		"c": "çćĉċč",
		"d": "ďḍ",
		"e": "èéêëēĕėęěȅȇẹẻẽếềểễệ",
		"g": "ĝğġģǧ",
		"h": "ĥḥ",
		"i": "ìíîïĩīĭįǐȉȋịỉ",
		"j": "ĵ",
		"k": "ķǩ",
		"l": "ĺļľ",
		"n": "ñńņňŉ",
		"o": "òóôõöōŏőơǒȍȏọỏốồổỗộớờởỡợ",
		"r": "ŕŗřȑȓ",
		"s": "śŝşšș",
		"t": "ţťț",
		"u": "ùúûüũūŭůűųưǔȕȗụủứừửữự",
		"w": "ŵ",
		"y": "ýÿŷỳỵỷỹ",
		"z": "źżž",
	} {
		for _, r := range accented {
			m[r] = plain
		}
	}
	return m
}()

// Costs are counted in half edits, so that the discounted edits stay
// integers: a full edit costs 2, a discounted one 1.
const (
	full = 2
	half = 1
)

// keyboard is the US QWERTY layout, one string per row, each row shifted
// half a key to the right of the one above it.
var keyboard = [...]string{"1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"}

// adjacent[a][b] says whether the ASCII keys a and b touch on [keyboard]:
// beside each other on a row, or the two keys above or below (the key at
// column c of a row touches columns c and c+1 of the row above and c-1
// and c of the row below).
var adjacent = func() (t [128][128]bool) {
	type pos struct{ row, col int }
	at := map[byte]pos{}
	for r, row := range keyboard {
		for c := range len(row) {
			at[row[c]] = pos{r, c}
		}
	}
	key := func(r, c int) (byte, bool) {
		if r < 0 || r >= len(keyboard) || c < 0 || c >= len(keyboard[r]) {
			return 0, false
		}
		return keyboard[r][c], true
	}
	for k, p := range at {
		for _, n := range [][2]int{{0, -1}, {0, 1}, {-1, 0}, {-1, 1}, {1, -1}, {1, 0}} {
			if o, ok := key(p.row+n[0], p.col+n[1]); ok {
				t[k][o], t[o][k] = true, true
			}
		}
	}
	return t
}()

// neighbours reports whether a and b are distinct keys that touch on a
// QWERTY keyboard (see [adjacent]).
func neighbours(a, b rune) bool {
	return uint32(a) < 128 && uint32(b) < 128 && a != b && adjacent[a][b]
}

// subCost is the cost of typing q where c was meant.
func subCost(q, c rune) int {
	switch {
	case q == c:
		return 0
	case neighbours(q, c):
		return half
	}
	return full
}

// extraCost is the cost of the query holding q[i] where the candidate
// holds nothing: half an edit if it repeats or touches a key next to it in
// the query (a finger that hit two keys, or one key twice), else a full
// edit.
func extraCost(q []rune, i int) int {
	r := q[i]
	if (i > 0 && (q[i-1] == r || neighbours(q[i-1], r))) ||
		(i+1 < len(q) && (q[i+1] == r || neighbours(q[i+1], r))) {
		return half
	}
	return full
}

// missingCost is the cost of the query lacking c[j]: half an edit for one
// letter of a doubled pair ("Tenessee"), else a full edit.
func missingCost(c []rune, j int) int {
	r := c[j]
	if (j > 0 && c[j-1] == r) || (j+1 < len(c) && c[j+1] == r) {
		return half
	}
	return full
}

// query is a folded query prepared for [distance]: its runes, the cost of
// each being extra ([extraCost]) and, for each ASCII rune, the keys that
// touch it as a 128-bit set.
type query struct {
	key   []rune
	extra []int
	adj   [][2]uint64
}

func newQuery(key []rune) *query {
	q := &query{key: key, extra: make([]int, len(key)), adj: make([][2]uint64, len(key))}
	for i, r := range key {
		q.extra[i] = extraCost(key, i)
		if uint32(r) < 128 {
			for o := range 128 {
				if adjacent[r][o] {
					q.adj[i][o/64] |= 1 << (o % 64)
				}
			}
		}
	}
	return q
}

// missingCosts returns [missingCost] for every position of c.
func missingCosts(c []rune) []int8 {
	out := make([]int8, len(c))
	for j := range c {
		out[j] = int8(missingCost(c, j))
	}
	return out
}

// distance returns the weighted optimal-string-alignment distance, in half
// edits, from the query q to the candidate c, or limit+1 as soon as it is
// known to exceed limit. The edits, each used at most once per position as
// in the restricted Damerau–Levenshtein distance, are: a character of c
// missing from q ([missingCost], given for every position of c as miss),
// an extra character in q ([extraCost]), one character for another
// ([subCost]), and two adjacent characters swapped (a full edit). rows is
// scratch space of at least 3*(len(c)+1) ints.
//
// Costs are never negative, so a cell can be within limit only if one of
// the cells it is computed from is (a swap from two rows up comes with a
// diagonal cell in the row above that costs no more). Each row is
// computed only from the first to the last column within limit in the
// row above (Ukkonen's cut-off), plus the cells right of them that the
// row's own missing characters reach within limit; the walk stops at a
// row with no cell within limit.
func distance(q *query, c []rune, miss []int8, limit int, rows []int) int {
	n := len(c)
	out := limit + 1
	if abs(len(q.key)-n) > limit {
		return out
	}
	prev2, prev, cur := rows[:n+1], rows[n+1:2*n+2], rows[2*n+2:3*n+3]
	// [plo, phi] is the span of the row above that holds every cell within
	// limit, all of it computed; [p2lo, p2hi] the same two rows up.
	prev[0] = 0
	plo, phi := 0, 0
	for j := 1; j <= n; j++ {
		v := prev[j-1] + int(miss[j-1])
		if v > limit {
			break
		}
		prev[j], phi = v, j
	}
	p2lo, p2hi := 0, -1
	for i := 1; i <= len(q.key); i++ {
		qr, ex, adj := q.key[i-1], q.extra[i-1], q.adj[i-1]
		clo, chi := -1, -1 // first and last column of this row within limit
		if plo == 0 {
			if v := prev[0] + ex; v <= limit {
				cur[0], clo, chi = v, 0, 0
			}
		}
		for j := max(1, plo); j <= n; j++ {
			if j > phi+1 && chi != j-1 {
				break
			}
			d := out
			if j-1 >= plo && j-1 <= phi {
				cr := c[j-1]
				d = prev[j-1]
				if qr != cr {
					if uint32(cr) < 128 && adj[cr/64]&(1<<(cr%64)) != 0 {
						d += half
					} else {
						d += full
					}
				}
			}
			if j <= phi {
				if v := prev[j] + ex; v < d {
					d = v
				}
			}
			if chi == j-1 && chi >= 0 {
				if v := cur[j-1] + int(miss[j-1]); v < d {
					d = v
				}
			}
			if i > 1 && j > 1 && j-2 >= p2lo && j-2 <= p2hi && qr == c[j-2] && q.key[i-2] == c[j-1] && qr != c[j-1] {
				if v := prev2[j-2] + full; v < d {
					d = v
				}
			}
			cur[j] = d
			if d <= limit {
				if clo < 0 {
					clo = j
				}
				chi = j
			}
		}
		if clo < 0 {
			return out
		}
		prev2, prev, cur = prev, cur, prev2
		p2lo, p2hi, plo, phi = plo, phi, clo, chi
	}
	if n < plo || n > phi {
		return out
	}
	return min(prev[n], out)
}

// extraCosts returns [extraCost] for every position of q.
func extraCosts(q []rune) []int {
	out := make([]int, len(q))
	for i := range q {
		out[i] = extraCost(q, i)
	}
	return out
}

// Score weights. A candidate's score is
//
//	base  = 1 - d/max(|q|, |c|)
//	score = base + prefixWeight*p*(1-base)
//
// where d is the distance in edits and p the length of the common prefix
// of the folded forms, at most maxPrefix.
const (
	prefixWeight = 0.025
	maxPrefix    = 4
)

// score returns the score of a candidate at distance d half edits, given
// the folded query and candidate. It is 1 exactly when d is 0, and in
// [0,1) otherwise.
func score(q, c []rune, d int) float64 {
	if d == 0 {
		return 1
	}
	base := 1 - float64(d)/2/float64(max(len(q), len(c)))
	if base < 0 {
		base = 0
	}
	p := 0
	for p < maxPrefix && p < len(q) && p < len(c) && q[p] == c[p] {
		p++
	}
	return base + prefixWeight*float64(p)*(1-base)
}

// limitFor returns the largest distance, in half edits, at which a
// candidate can still reach minScore when the longer of query and
// candidate has l runes: the prefix bonus adds at most
// prefixWeight*maxPrefix*(1-base), so base must be at least
// (minScore - w)/(1 - w) with w = prefixWeight*maxPrefix.
func limitFor(minScore float64, l int) int {
	const w = prefixWeight * maxPrefix
	baseMin := (minScore - w) / (1 - w)
	if baseMin < 0 {
		baseMin = 0
	}
	return int((1-baseMin)*2*float64(l) + 1e-9)
}

// matrix returns the whole table of the distance that [distance]
// computes in part: d[i][j] is the distance from q[:i] to c[:j].
func matrix(q, c []rune) [][]int {
	extra := extraCosts(q)
	m, n := len(q), len(c)
	d := make([][]int, m+1)
	for i := range d {
		d[i] = make([]int, n+1)
	}
	for j := 1; j <= n; j++ {
		d[0][j] = d[0][j-1] + missingCost(c, j-1)
	}
	for i := 1; i <= m; i++ {
		d[i][0] = d[i-1][0] + extra[i-1]
		for j := 1; j <= n; j++ {
			v := d[i-1][j-1] + subCost(q[i-1], c[j-1])
			v = min(v, d[i-1][j]+extra[i-1], d[i][j-1]+missingCost(c, j-1))
			if i > 1 && j > 1 && q[i-1] == c[j-2] && q[i-2] == c[j-1] && q[i-1] != q[i-2] {
				v = min(v, d[i-2][j-2]+full)
			}
			d[i][j] = v
		}
	}
	return d
}

// explain describes the cheapest edits from the query q to the candidate
// c, for a person: `1 edit: missing "i"`, `2 edits: "n" for "m"
// (neighbouring key), "ie" swapped`.
func explain(q, c []rune) string {
	extra := extraCosts(q)
	m, n := len(q), len(c)
	d := matrix(q, c)
	if d[m][n] == 0 {
		return "the same letters, ignoring case, accents and punctuation"
	}
	var edits []string
	for i, j := m, n; i > 0 || j > 0; {
		switch {
		case i > 0 && j > 0 && d[i][j] == d[i-1][j-1]+subCost(q[i-1], c[j-1]):
			switch {
			case q[i-1] == c[j-1]:
			case neighbours(q[i-1], c[j-1]):
				edits = append(edits, fmt.Sprintf("%q for %q (neighbouring key)", q[i-1], c[j-1]))
			default:
				edits = append(edits, fmt.Sprintf("%q for %q", q[i-1], c[j-1]))
			}
			i, j = i-1, j-1
		case i > 1 && j > 1 && q[i-1] == c[j-2] && q[i-2] == c[j-1] && q[i-1] != q[i-2] && d[i][j] == d[i-2][j-2]+full:
			edits = append(edits, fmt.Sprintf("%q swapped", string(q[i-2:i])))
			i, j = i-2, j-2
		case i > 0 && d[i][j] == d[i-1][j]+extra[i-1]:
			edits = append(edits, fmt.Sprintf("extra %q", q[i-1]))
			i--
		default:
			edits = append(edits, fmt.Sprintf("missing %q", c[j-1]))
			j--
		}
	}
	// The walk went backwards; a person reads left to right.
	for l, r := 0, len(edits)-1; l < r; l, r = l+1, r-1 {
		edits[l], edits[r] = edits[r], edits[l]
	}
	const show = 3
	more := ""
	total := len(edits)
	if total > show {
		more = fmt.Sprintf(", and %d more", total-show)
		edits = edits[:show]
	}
	unit := "edits"
	if total == 1 {
		unit = "edit"
	}
	return fmt.Sprintf("%d %s: %s%s", total, unit, strings.Join(edits, ", "), more)
}
