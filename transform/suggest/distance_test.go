package suggest

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"Côte d'Ivoire":           "cote d ivoire",
		"  COTE--D  IVOIRE!! ":    "cote d ivoire",
		"Baden-Württemberg":       "baden wurttemberg",
		"Straße":                  "strasse",
		"Åland Islands":           "aland islands",
		"Cote\u0301":              "cote", // decomposed accent
		"\xff\xfeBad\xffUTF8":     "bad utf8",
		"":                        "",
		"!!!":                     "",
		"Ærø Şişli Łódź İstanbul": "aero sisli lodz istanbul",
	} {
		if got := string(fold(in)); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAdjacent checks the package's keyboard against the test's own
// hand-written table of touching keys.
func TestAdjacent(t *testing.T) {
	want := map[rune]string{
		'q': "12wa", 'w': "23qeas", 'e': "34wrsd", 'r': "45etdf", 't': "56ryfg",
		'y': "67tugh", 'u': "78yihj", 'i': "89uojk", 'o': "90ipkl", 'p': "0ol",
		'a': "qwsz", 's': "weadzx", 'd': "erfsxc", 'f': "rtgdcv", 'g': "tyhfvb",
		'h': "yujgbn", 'j': "uikhnm", 'k': "ioljm", 'l': "opk",
		'z': "asx", 'x': "sdzc", 'c': "dfxv", 'v': "fgcb", 'b': "ghvn", 'n': "hjbm", 'm': "jkn",
		'1': "2q", '2': "13qw", '3': "24we", '4': "35er", '5': "46rt", '6': "57ty",
		'7': "68yu", '8': "79ui", '9': "80io", '0': "9op",
	}
	for a := rune(0); a < 128; a++ {
		for b := rune(0); b < 128; b++ {
			if got, exp := neighbours(a, b), strings.ContainsRune(want[a], b); got != exp {
				t.Errorf("neighbours(%q, %q) = %v, want %v", a, b, got, exp)
			}
		}
	}
	if neighbours('é', 'e') || neighbours(-1, 'a') || neighbours('a', 1<<20) {
		t.Error("non-ASCII runes are nobody's neighbours")
	}
}

func TestDistanceCosts(t *testing.T) {
	for _, c := range []struct {
		q, c string
		want int // half edits
	}{
		{"california", "california", 0},
		{"californa", "california", full},              // missing letter
		{"califirnia", "california", half},             // i for o: neighbouring keys
		{"calixornia", "california", full},             // x for f: not neighbours
		{"califronia", "california", full},             // swap
		{"califoprnia", "california", half},            // extra p beside o
		{"californnia", "california", half},            // doubled n
		{"calif0rnia", "california", half},             // 0 beside o
		{"tenessee", "tennessee", half},                // one of a doubled pair
		{"californiap", "california", full},            // p touches no letter next to it
		{"", "abc", 3 * full},                          // every letter missing
		{"abc", "", 3 * full},                          // every letter extra, none neighbours
		{"asd", "", 3 * half},                          // a, s, d touch each other
		{"ca", "abc", 3 * full},                        // OSA edits a position once: no swap then insert
		{"ab", "ba", full},                             // the swap itself
		{"aa", "aa", 0},                                // no swap of equal letters
		{"germny", "germany", full},                    // missing a
		{"korea republic of", "korea, republic of", 0}, // folded before
	} {
		q, cand := fold(c.q), fold(c.c)
		got := distance(newQuery(q), cand, missingCosts(cand), 1000, make([]int, 3*(len(cand)+1)))
		if got != c.want {
			t.Errorf("distance(%q, %q) = %d half edits, want %d", c.q, c.c, got, c.want)
		}
		if m := matrix(q, cand); m[len(q)][len(cand)] != c.want {
			t.Errorf("matrix(%q, %q) = %d half edits, want %d", c.q, c.c, m[len(q)][len(cand)], c.want)
		}
	}
}

// TestDistanceCutoff checks the pruned distance against the whole table
// on random strings over a small alphabet (so that swaps, doubled letters
// and neighbouring keys are frequent), for every limit.
func TestDistanceCutoff(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("asdqwe é")
	word := func() []rune {
		w := make([]rune, r.IntN(12))
		for i := range w {
			w[i] = alphabet[r.IntN(len(alphabet))]
		}
		return w
	}
	for range 20000 {
		q, c := word(), word()
		exact := matrix(q, c)[len(q)][len(c)]
		pq := newQuery(q)
		miss := missingCosts(c)
		rows := make([]int, 3*(len(c)+1))
		for _, limit := range []int{0, 1, 2, 3, 5, 8, 13, 40} {
			got := distance(pq, c, miss, limit, rows)
			want := min(exact, limit+1)
			if got != want {
				t.Fatalf("distance(%q, %q, limit %d) = %d, want %d (exact %d)", string(q), string(c), limit, got, want, exact)
			}
		}
	}
}

func TestScore(t *testing.T) {
	q, c := fold("Californa"), fold("California")
	s := score(q, c, full)
	// base 1 - 1/10 = 0.9; prefix 4: 0.9 + 0.025*4*0.1 = 0.91.
	if s < 0.9099 || s > 0.9101 {
		t.Errorf("score(Californa, California) = %v, want 0.91", s)
	}
	if score(q, q, 0) != 1 {
		t.Error("equal keys must score 1")
	}
	if s := score([]rune("a"), []rune("bcdefgh"), 40); s != 0 {
		t.Errorf("a distance beyond the length scores %v, want 0", s)
	}
	// Only a distance of 0 scores 1.
	if s := score([]rune("abcd"), []rune("abcd"), half); s >= 1 {
		t.Errorf("half an edit scores %v", s)
	}
	// limitFor is the largest distance that can still reach the score.
	for _, minScore := range []float64{0.3, 0.5, 0.6, 0.75, 0.9, 0.99} {
		for l := 1; l < 60; l++ {
			lim := limitFor(minScore, l)
			a := make([]rune, l)
			for i := range a {
				a[i] = 'x'
			}
			// The best case for the score: a common prefix of maxPrefix.
			if score(a, a, lim+1) >= minScore {
				t.Errorf("limitFor(%v, %d) = %d but %d half edits still score %v", minScore, l, lim, lim+1, score(a, a, lim+1))
			}
		}
	}
}

func TestExplain(t *testing.T) {
	for _, c := range []struct{ q, c, want string }{
		{"californa", "california", `1 edit: missing 'i'`},
		{"califirnia", "california", `1 edit: 'i' for 'o' (neighbouring key)`},
		{"calixornia", "california", `1 edit: 'x' for 'f'`},
		{"califronia", "california", `1 edit: "ro" swapped`},
		{"californiap", "california", `1 edit: extra 'p'`},
		{"california", "california", "the same letters, ignoring case, accents and punctuation"},
		{"ppppp", "abcde", `5 edits: 'p' for 'a', 'p' for 'b', 'p' for 'c', and 2 more`},
	} {
		if got := explain(fold(c.q), fold(c.c)); got != c.want {
			t.Errorf("explain(%q, %q) = %q, want %q", c.q, c.c, got, c.want)
		}
	}
}

// TestScanMatchesBruteForce checks that the pruning in scan (length
// buckets, the length and histogram bounds, the cut-off, the rising
// floor) loses no suggestion: the result is the best Max of every
// candidate scored on the whole table.
func TestScanMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cands := Countries()
	sub, err := Subdivisions("GB")
	if err != nil {
		t.Fatal(err)
	}
	cands = append(cands, sub...)
	for _, o := range []Options{{}, {Max: 1}, {Max: 3, MinScore: 0.7}, {Max: 50, MinScore: 0.3}} {
		ix := New(o)
		ix.Add("f", cands...)
		for range 150 {
			// A candidate with up to three random typos, or random letters.
			var query string
			if r.IntN(5) == 0 {
				b := make([]rune, 1+r.IntN(15))
				for i := range b {
					b[i] = rune('a' + r.IntN(26))
				}
				query = string(b)
			} else {
				w := []rune(cands[r.IntN(len(cands))].Value)
				for range 1 + r.IntN(3) {
					if len(w) < 2 {
						break
					}
					i := r.IntN(len(w) - 1)
					switch r.IntN(4) {
					case 0:
						w = slices.Delete(w, i, i+1)
					case 1:
						w = slices.Insert(w, i, rune('a'+r.IntN(26)))
					case 2:
						w[i] = rune('a' + r.IntN(26))
					case 3:
						w[i], w[i+1] = w[i+1], w[i]
					}
				}
				query = string(w)
			}
			got := ix.Suggest("f", query)
			want := bruteForce(ix, cands, query)
			if len(got) != len(want) {
				t.Fatalf("%+v %q: %d suggestions, brute force %d:\n%v\n%v", o, query, len(got), len(want), got, want)
			}
			for i := range got {
				if got[i].Value != want[i].Value || got[i].Score != want[i].Score {
					t.Fatalf("%+v %q: suggestion %d is %q %v, brute force %q %v", o, query, i, got[i].Value, got[i].Score, want[i].Value, want[i].Score)
				}
			}
		}
	}
}

func bruteForce(ix *Index, cands []Candidate, query string) []Suggestion {
	q := fold(query)
	var all []Suggestion
	for _, c := range cands {
		if c.Value == query {
			return nil // a fixed candidate is right as it is
		}
	}
	for _, c := range cands {
		k := fold(c.Value)
		d := matrix(q, k)[len(q)][len(k)]
		if s := score(q, k, d); s >= ix.minScore {
			all = append(all, Suggestion{Value: c.Value, Score: s})
		}
	}
	slices.SortFunc(all, func(a, b Suggestion) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	if len(all) > ix.max {
		all = all[:ix.max]
	}
	if len(all) == 0 {
		return nil
	}
	return all
}
