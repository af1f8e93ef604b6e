package suggest_test

import (
	"math"
	"testing"
	"unicode/utf8"

	"github.com/concordsync/concord/transform/suggest"
)

// fuzzIndex has every kind of candidate: ISO names, allowed values and
// learned values.
var fuzzIndex = func() *suggest.Index {
	ix := suggest.New(suggest.Options{MinScore: 0.3, Max: 8})
	ix.Add("f", suggest.Countries()...)
	subs, err := suggest.Subdivisions("GB")
	if err != nil {
		panic(err)
	}
	ix.Add("f", subs...)
	ix.Add("f", suggest.Values("list", "open", "closed", "on hold", "ÜBER", "日本")...)
	for _, s := range streets(200, 5) {
		ix.Learn("f", s)
	}
	return ix
}()

// FuzzSuggest checks that Suggest never panics, that scores are in [0,1]
// and ranked, that no value comes twice or equals the query, that the
// answer is the same twice, and that Decide agrees with the scores.
func FuzzSuggest(f *testing.F) {
	for _, s := range []string{"Californa", "Germny", "Untied Kingdom", "", " ", "\xff", "Cote d Ivorie",
		"Ca\u0301li", "1 Oak Hill Stret", "日本人", "open", "opne", "\x00\x00", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := fuzzIndex.Suggest("f", q)
		seen := map[string]bool{}
		for i, s := range got {
			if !(s.Score >= 0.3 && s.Score <= 1) || math.IsNaN(s.Score) {
				t.Fatalf("%q: score %v", q, s.Score)
			}
			if i > 0 && s.Score > got[i-1].Score {
				t.Fatalf("%q: not ranked: %+v", q, got)
			}
			if seen[s.Value] || s.Value == q {
				t.Fatalf("%q: %q again or the query itself: %+v", q, s.Value, got)
			}
			seen[s.Value] = true
			if !utf8.ValidString(s.Why) || s.Why == "" {
				t.Fatalf("%q: why %q", q, s.Why)
			}
		}
		if len(got) > 8 {
			t.Fatalf("%q: %d suggestions", q, len(got))
		}
		again := fuzzIndex.Suggest("f", q)
		if len(again) != len(got) {
			t.Fatalf("%q: another answer the second time", q)
		}
		for i := range got {
			if got[i] != again[i] {
				t.Fatalf("%q: another answer the second time", q)
			}
		}
		d := suggest.Policy{AutoApply: 0.9, Hold: true}.Decide(got)
		if d.Apply != "" && (len(got) == 0 || d.Apply != got[0].Value || got[0].Score < 0.9) {
			t.Fatalf("%q: applied %q from %+v", q, d.Apply, got)
		}
	})
}
