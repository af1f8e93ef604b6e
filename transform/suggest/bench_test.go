package suggest_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/concordsync/concord/transform/suggest"
)

// BenchmarkSuggestCountry suggests for one misspelled country name among
// the 400-odd ISO 3166-1 names.
func BenchmarkSuggestCountry(b *testing.B) {
	for _, min := range []float64{0.5, 0.6, 0.7} {
		b.Run(fmt.Sprintf("min=%.1f", min), func(b *testing.B) {
			ix := suggest.New(suggest.Options{MinScore: min})
			ix.Add("country", suggest.Countries()...)
			queries := []string{"Germny", "Untied Kingdom", "Switzerlnad", "Brasil", "Korea, Repulbic of", "Frnace"}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				ix.Suggest("country", queries[i%len(queries)])
			}
		})
	}
}

// streets returns n distinct made-up street names.
func streets(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	first := []string{"Oak", "Maple", "Cedar", "Elm", "Pine", "Birch", "Willow", "Chestnut", "Hickory", "Walnut", "Spruce", "Aspen", "Poplar", "Sycamore", "Magnolia", "Cherry", "Dogwood", "Juniper", "Laurel", "Linden"}
	second := []string{"Hill", "Lake", "River", "Park", "Spring", "Meadow", "Forest", "Valley", "Ridge", "Brook", "Glen", "Grove", "Field", "Stone", "Mill", "Bridge", "Harbor", "Sunset", "Highland", "Fair"}
	kind := []string{"Street", "Avenue", "Road", "Lane", "Drive", "Court", "Boulevard", "Way", "Place", "Terrace"}
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		s := fmt.Sprintf("%d %s %s %s", r.IntN(999)+1, first[r.IntN(len(first))], second[r.IntN(len(second))], kind[r.IntN(len(kind))])
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// BenchmarkSuggestLearned suggests for a misspelled street name among n
// learned ones.
func BenchmarkSuggestLearned(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ix := suggest.New(suggest.Options{Learned: n})
			held := streets(n, 7)
			for _, s := range held {
				ix.Learn("street", s)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				s := []rune(held[i%len(held)])
				s[len(s)/2], s[len(s)/2+1] = s[len(s)/2+1], s[len(s)/2]
				ix.Suggest("street", string(s))
			}
		})
	}
}

// BenchmarkLearn learns street names into a full set, each evicting the
// least recent.
func BenchmarkLearn(b *testing.B) {
	ix := suggest.New(suggest.Options{Learned: 1000})
	held := streets(5000, 9)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ix.Learn("street", held[i%len(held)])
	}
}
