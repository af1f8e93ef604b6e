package suggest_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/concordsync/concord/transform/normalize"
	"github.com/concordsync/concord/transform/suggest"
)

// qwerty lists, for each lower-case ASCII letter and digit, the keys that
// touch it on a US QWERTY keyboard. It is written out by hand, apart from
// the package's own table, so that the test checks the package's layout
// rather than repeating it.
var qwerty = map[rune]string{
	'q': "12wa", 'w': "23qeas", 'e': "34wrsd", 'r': "45etdf", 't': "56ryfg",
	'y': "67tugh", 'u': "78yihj", 'i': "89uojk", 'o': "90ipkl", 'p': "0ol",
	'a': "qwsz", 's': "weadzx", 'd': "erfsxc", 'f': "rtgdcv", 'g': "tyhfvb",
	'h': "yujgbn", 'j': "uikhnm", 'k': "ioljm", 'l': "opk",
	'z': "asx", 'x': "sdzc", 'c': "dfxv", 'v': "fgcb", 'b': "ghvn", 'n': "hjbm", 'm': "jkn",
	'1': "2q", '2': "13qw", '3': "24we", '4': "35er", '5': "46rt", '6': "57ty",
	'7': "68yu", '8': "79ui", '9': "80io", '0': "9op",
}

// typoClass generates every single-typo variant of a name of one kind.
type typoClass struct {
	name string
	gen  func(name []rune) []string
}

// typoClasses are the four kinds of single typo: a letter left out, a key
// next to a letter pressed too (before or after it), a letter replaced by
// a key next to it, two adjacent letters swapped.
var typoClasses = []typoClass{
	{"deletion", func(n []rune) (out []string) {
		for i := range n {
			if unicode.IsLetter(n[i]) {
				out = append(out, string(n[:i])+string(n[i+1:]))
			}
		}
		return out
	}},
	{"insertion", func(n []rune) (out []string) {
		for i, r := range n {
			for _, k := range qwerty[unicode.ToLower(r)] {
				out = append(out, string(n[:i])+string(k)+string(n[i:]), string(n[:i+1])+string(k)+string(n[i+1:]))
			}
		}
		return out
	}},
	{"substitution", func(n []rune) (out []string) {
		for i, r := range n {
			for _, k := range qwerty[unicode.ToLower(r)] {
				if unicode.IsLetter(k) {
					out = append(out, string(n[:i])+string(k)+string(n[i+1:]))
				}
			}
		}
		return out
	}},
	{"transposition", func(n []rune) (out []string) {
		for i := 0; i+1 < len(n); i++ {
			if n[i] != n[i+1] && unicode.IsLetter(n[i]) && unicode.IsLetter(n[i+1]) {
				m := []rune(string(n))
				m[i], m[i+1] = m[i+1], m[i]
				out = append(out, string(m))
			}
		}
		return out
	}},
}

// lookupKey is how normalize looks a name up: letters and digits only, in
// lower case. A variant that looks up as some candidate is no typo (it is
// accepted as it is) and is left out.
func lookupKey(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// topOneAccuracy runs every single-typo variant of every name in names
// through Suggest and returns, per typo class, how many variants had the
// name ranked first and how many there were. want maps a name to the
// values accepted as right (the name itself; for a country, its other
// names too).
func topOneAccuracy(t *testing.T, ix *suggest.Index, field string, names []string, cands []suggest.Candidate, want func(name, got string) bool) map[string][2]int {
	t.Helper()
	known := map[string]bool{}
	for _, c := range cands {
		known[lookupKey(c.Value)] = true
	}
	res := map[string][2]int{}
	for _, class := range typoClasses {
		right, total := 0, 0
		for _, name := range names {
			seen := map[string]bool{}
			for _, v := range class.gen([]rune(name)) {
				if seen[v] || known[lookupKey(v)] {
					continue
				}
				seen[v] = true
				total++
				got := ix.Suggest(field, v)
				if len(got) > 0 && want(name, got[0].Value) {
					right++
				} else if testing.Verbose() {
					top := "nothing"
					if len(got) > 0 {
						top = got[0].Value
					}
					t.Logf("%s %q: %q ranked first, not %q", class.name, v, top, name)
				}
			}
		}
		res[class.name] = [2]int{right, total}
	}
	return res
}

func checkAccuracy(t *testing.T, what string, res map[string][2]int) {
	t.Helper()
	allRight, allTotal := 0, 0
	for _, class := range typoClasses {
		r := res[class.name]
		allRight += r[0]
		allTotal += r[1]
		if r[1] == 0 {
			t.Fatalf("%s, %s: no variant generated", what, class.name)
		}
		pct := 100 * float64(r[0]) / float64(r[1])
		t.Logf("%s, %-13s top-1 %6.2f%% (%d of %d)", what, class.name+":", pct, r[0], r[1])
		if pct < 95 {
			t.Errorf("%s, %s: top-1 accuracy %.2f%% is below 95%%", what, class.name, pct)
		}
	}
	t.Logf("%s, all:           top-1 %6.2f%% (%d of %d)", what, 100*float64(allRight)/float64(allTotal), allRight, allTotal)
}

// TestAccuracyCountries is the acceptance test of the issue: every
// single-typo variant of every ISO 3166-1 short name has that country's
// name ranked first in at least 95% of the cases, per typo class.
func TestAccuracyCountries(t *testing.T) {
	if testing.Short() {
		t.Skip("scores every typo of every country name")
	}
	cands := suggest.Countries()
	// Max 1: only the first suggestion counts, and the ranking does not
	// depend on Max (TestScanMatchesBruteForce), so the scan may stop
	// widening early.
	ix := suggest.New(suggest.Options{Max: 1})
	ix.Add("country", cands...)
	var names []string
	for _, c := range normalize.Countries() {
		names = append(names, c.Name)
	}
	if len(names) < 249 {
		t.Fatalf("only %d countries", len(names))
	}
	// Right is the name itself or another name of the same country: a
	// typo of "Korea, Republic of" corrected to "South Korea" is right.
	want := func(name, got string) bool {
		a, ok1 := normalize.LookupCountry(name)
		b, ok2 := normalize.LookupCountry(got)
		return ok1 && ok2 && a.Alpha2 == b.Alpha2
	}
	checkAccuracy(t, "ISO 3166-1 names", topOneAccuracy(t, ix, "country", names, cands, want))
}

// TestAccuracySubdivisions does the same over every subdivision name of
// the countries that package normalize carries, each country's names a
// field of its own (a state is suggested among its country's states).
func TestAccuracySubdivisions(t *testing.T) {
	if testing.Short() {
		t.Skip("scores every typo of every subdivision name")
	}
	total := map[string][2]int{}
	for _, country := range []string{"AU", "CA", "DE", "GB", "US"} {
		cands, err := suggest.Subdivisions(country)
		if err != nil {
			t.Fatal(err)
		}
		ix := suggest.New(suggest.Options{Max: 1})
		ix.Add(country, cands...)
		var names []string
		for _, s := range normalize.Subdivisions(country) {
			names = append(names, s.Name)
		}
		want := func(name, got string) bool {
			a, ok1 := normalize.LookupSubdivision(country, name)
			b, ok2 := normalize.LookupSubdivision(country, got)
			return ok1 && ok2 && a.Code == b.Code
		}
		for class, r := range topOneAccuracy(t, ix, country, names, cands, want) {
			total[class] = [2]int{total[class][0] + r[0], total[class][1] + r[1]}
		}
	}
	checkAccuracy(t, "ISO 3166-2 names", total)
}
