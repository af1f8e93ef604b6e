package dedupe_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dedupe"
)

// population is a generated set of contacts with planted duplicates.
type population struct {
	recs    []concord.Record
	planted map[[2]string]bool // key pairs, ordered
	// reachableOnlyFuzzy counts planted pairs that share no e-mail or
	// phone: only the fuzzy matcher can find them.
	fuzzyOnly int
}

var syllables = strings.Fields("an bel cor dan el fa gri hal is jo ka lu mar nor ol pe quin ro sa tor ul ven wil xa yor zel bri cha dro fen")

// word makes a pronounceable capitalised name of n syllables.
func word(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(syllables[r.IntN(len(syllables))])
	}
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

var suffixes = []string{"Street", "Road", "Lane", "Avenue", "Way"}

// generate makes n contacts: distinct people (5% of them sharing family
// name and address with another: households, which must not be suggested),
// and dupFraction of n planted copies of some of them with realistic damage
// (typos, swapped letters, case and spacing, reformatted phones,
// abbreviated streets, other e-mail addresses).
func generate(n int, dupFraction float64, seed uint64) population {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	dups := int(float64(n) * dupFraction)
	base := n - dups
	pop := population{planted: make(map[[2]string]bool, dups)}
	streets := make([]string, 300)
	for i := range streets {
		streets[i] = word(r, 2)
	}
	for i := range base {
		first, last := word(r, 2), word(r, 3)
		street := fmt.Sprintf("%d %s %s", 1+r.IntN(200), streets[r.IntN(len(streets))], suffixes[r.IntN(len(suffixes))])
		postal := fmt.Sprint(1000 + r.IntN(2000))
		if i > 0 && r.Float64() < 0.05 {
			// A hard negative: another person of the household before,
			// same family name and address, who must not be suggested.
			prev := pop.recs[i-1].Fields
			last, street, postal = prev["last_name"].(string), prev["street"].(string), prev["postal_code"].(string)
		}
		pop.recs = append(pop.recs, concord.Record{Key: fmt.Sprintf("c%06d", i), Fields: map[string]concord.Value{
			"first_name":  first,
			"last_name":   last,
			"email":       fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(last), i),
			"phone":       fmt.Sprintf("+41 44 %03d %02d %02d", i/10000, i/100%100, i%100), // unique below 10 million
			"street":      street,
			"postal_code": postal,
		}})
	}
	// Each original is duplicated at most once, so that the planted pairs
	// are exactly the duplicates.
	for d, i := range r.Perm(base)[:dups] {
		orig := pop.recs[i]
		f := orig.Clone().Fields
		key := fmt.Sprintf("d%06d", d)
		if r.Float64() < 0.6 {
			f["first_name"] = typo(r, f["first_name"].(string))
		} else {
			f["last_name"] = typo(r, f["last_name"].(string))
		}
		if r.Float64() < 0.3 {
			f["last_name"] = strings.ToUpper(f["last_name"].(string))
		}
		if r.Float64() < 0.3 {
			f["first_name"] = " " + f["first_name"].(string) + "  "
		}
		street := f["street"].(string)
		switch r.IntN(4) {
		case 0:
			street = strings.ToLower(street)
		case 1:
			street = strings.ReplaceAll(street, " ", "  ") + ","
		case 2:
			for _, s := range suffixes {
				street = strings.Replace(street, s, s[:2]+".", 1)
			}
		}
		f["street"] = street
		shares := false
		if r.Float64() < 0.5 {
			f["email"] = "  " + strings.ToUpper(f["email"].(string))
			shares = true
		} else {
			f["email"] = fmt.Sprintf("private%d@mail.test", d)
		}
		if r.Float64() < 0.5 {
			digits := strings.ReplaceAll(strings.TrimPrefix(f["phone"].(string), "+41 "), " ", "")
			f["phone"] = "0" + digits[:2] + "-" + digits[2:5] + "." + digits[5:]
			shares = true
		} else {
			f["phone"] = nil
		}
		if !shares {
			pop.fuzzyOnly++
		}
		pop.recs = append(pop.recs, concord.Record{Key: key, Fields: f})
		pop.planted[[2]string{orig.Key, key}] = true
	}
	return pop
}

// typo damages s once: a substituted, swapped, dropped or doubled letter
// (never the first letter, which people rarely get wrong).
func typo(r *rand.Rand, s string) string {
	b := []byte(s)
	if len(b) < 3 {
		return s + "e"
	}
	i := 1 + r.IntN(len(b)-2)
	switch r.IntN(4) {
	case 0:
		b[i] = byte('a' + r.IntN(26))
	case 1:
		b[i], b[i+1] = b[i+1], b[i]
	case 2:
		b = append(b[:i], b[i+1:]...)
	default:
		b = append(b[:i+1], b[i:]...)
	}
	return string(b)
}

func TestFindLarge(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	pop := generate(n, 0.1, 1)
	f := newFinder(t, contactConfig)
	start := time.Now()
	res, err := f.Find(t.Context(), pop.recs)
	require.NoError(t, err)
	elapsed := time.Since(start)

	truePos, fuzzyFound := 0, 0
	for _, s := range res.Suggestions {
		if pop.planted[[2]string{s.A, s.B}] {
			truePos++
			if s.Match == dedupe.Fuzzy {
				fuzzyFound++
			}
		}
	}
	precision := float64(truePos) / float64(len(res.Suggestions))
	recall := float64(truePos) / float64(len(pop.planted))
	fuzzyRecall := float64(fuzzyFound) / float64(pop.fuzzyOnly)
	t.Logf("%d records, %d planted duplicates (%d findable only by fuzzy matching), %v",
		res.Records, len(pop.planted), pop.fuzzyOnly, elapsed)
	t.Logf("comparisons %d (n²/2 = %d, %.3f%%), suggestions %d, precision %.4f, recall %.4f, fuzzy-only recall %.4f",
		res.Comparisons, n*(n-1)/2, 100*float64(res.Comparisons)/float64(n*(n-1)/2),
		len(res.Suggestions), precision, recall, fuzzyRecall)

	if limit := 2 * 10 * n; res.Comparisons > limit || res.Comparisons == 0 {
		t.Errorf("Comparisons = %d; want 1..%d (2 passes, window 10)", res.Comparisons, limit)
	}
	if res.Records != n {
		t.Errorf("Records = %d; want %d", res.Records, n)
	}
	const minPrecision, minRecall, minFuzzyRecall = 0.98, 0.95, 0.85
	if precision < minPrecision {
		t.Errorf("precision %.4f; want >= %v", precision, minPrecision)
	}
	if recall < minRecall {
		t.Errorf("recall %.4f; want >= %v", recall, minRecall)
	}
	if fuzzyRecall < minFuzzyRecall {
		t.Errorf("fuzzy-only recall %.4f; want >= %v", fuzzyRecall, minFuzzyRecall)
	}
}

func BenchmarkFind(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		pop := generate(n, 0.1, 2)
		f := newFinder(b, contactConfig)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := f.Find(b.Context(), pop.recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
