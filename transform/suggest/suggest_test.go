package suggest_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dict"
	"github.com/concordsync/concord/transform/suggest"
)

func usStates(t *testing.T) *suggest.Index {
	t.Helper()
	cands, err := suggest.Subdivisions("US")
	if err != nil {
		t.Fatal(err)
	}
	ix := suggest.New(suggest.Options{})
	ix.Add("state", cands...)
	return ix
}

func TestCalifornia(t *testing.T) {
	ix := usStates(t)
	got := ix.Suggest("state", "Californa")
	if len(got) == 0 || got[0].Value != "California" {
		t.Fatalf("Californa: %+v", got)
	}
	if math.Abs(got[0].Score-0.91) > 1e-9 {
		t.Errorf("score %v, want 0.91", got[0].Score)
	}
	if want := `ISO 3166-2 US-CA; 1 edit: missing 'i'`; got[0].Why != want {
		t.Errorf("why %q, want %q", got[0].Why, want)
	}
	// Case and punctuation alone: score 1.
	got = ix.Suggest("state", "  CALIFORNIA. ")
	if len(got) == 0 || got[0].Value != "California" || got[0].Score != 1 {
		t.Errorf("CALIFORNIA: %+v", got)
	}
	// A fixed candidate is right as it is: nothing to suggest.
	if got := ix.Suggest("state", "California"); got != nil {
		t.Errorf("California itself: %+v", got)
	}
	// A field without candidates, and values without letters.
	for _, c := range [][2]string{{"country", "Californa"}, {"state", ""}, {"state", " -- "}, {"state", "\xff\xfe"}} {
		if got := ix.Suggest(c[0], c[1]); got != nil {
			t.Errorf("Suggest(%q, %q) = %+v, want nil", c[0], c[1], got)
		}
	}
}

func TestRankingAndLimits(t *testing.T) {
	ix := usStates(t)
	got := ix.Suggest("state", "Nw Yrok")
	if len(got) == 0 || got[0].Value != "New York" {
		t.Fatalf("Nw Yrok: %+v", got)
	}
	checkRanked(t, got)
	// Max and MinScore.
	few := suggest.New(suggest.Options{Max: 2, MinScore: 0.3})
	cands, _ := suggest.Subdivisions("US")
	few.Add("state", cands...)
	if got := few.Suggest("state", "North Dakotta"); len(got) != 2 || got[0].Value != "North Dakota" || got[1].Value != "South Dakota" {
		t.Errorf("Max 2: %+v", got)
	}
	strict := suggest.New(suggest.Options{MinScore: 0.99})
	strict.Add("state", cands...)
	if got := strict.Suggest("state", "Californa"); got != nil {
		t.Errorf("MinScore 0.99: %+v", got)
	}
	never := suggest.New(suggest.Options{MinScore: 1.5})
	never.Add("state", cands...)
	if got := never.Suggest("state", "CALIFORNIA"); got != nil {
		t.Errorf("MinScore 1.5: %+v", got)
	}
	// Nothing close enough.
	if got := ix.Suggest("state", "Zzyzx Qqq"); got != nil {
		t.Errorf("Zzyzx Qqq: %+v", got)
	}
}

func checkRanked(t *testing.T, got []suggest.Suggestion) {
	t.Helper()
	seen := map[string]bool{}
	for i, s := range got {
		if !(s.Score >= 0 && s.Score <= 1) {
			t.Errorf("score %v of %q out of [0,1]", s.Score, s.Value)
		}
		if i > 0 && s.Score > got[i-1].Score {
			t.Errorf("not ranked: %+v before %+v", got[i-1], s)
		}
		if seen[s.Value] {
			t.Errorf("%q suggested twice", s.Value)
		}
		seen[s.Value] = true
		if s.Why == "" {
			t.Errorf("%q has no why", s.Value)
		}
	}
}

func TestCountries(t *testing.T) {
	ix := suggest.New(suggest.Options{})
	ix.Add("country", suggest.Countries()...)
	for q, want := range map[string]string{
		"Germny":             "Germany",
		"Untied Kingdom":     "United Kingdom",
		"Switzerlnad":        "Switzerland",
		"Sotuh Korea":        "South Korea",
		"Korea, Repulbic of": "Korea, Republic of",
		"Cote d Ivorie":      "Côte d'Ivoire",
		"Frnace":             "France",
	} {
		got := ix.Suggest("country", q)
		if len(got) == 0 || got[0].Value != want {
			t.Errorf("%q: %+v, want %q first", q, got, want)
			continue
		}
		checkRanked(t, got)
	}
	got := ix.Suggest("country", "Sotuh Korea")
	if !strings.HasPrefix(got[0].Why, "ISO 3166-1 KR (common name); ") {
		t.Errorf("why %q", got[0].Why)
	}
	// Codes are not candidates: DEI is one letter off many codes.
	for _, c := range suggest.Countries() {
		if len(c.Value) <= 3 && strings.ToUpper(c.Value) == c.Value {
			t.Errorf("code %q is a candidate", c.Value)
		}
	}
}

func TestSubdivisionsUnknown(t *testing.T) {
	for _, c := range []string{"XX", "FR", ""} {
		_, err := suggest.Subdivisions(c)
		if !errors.Is(err, suggest.ErrNoSubdivisions) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c)) {
			t.Errorf("Subdivisions(%q): %v", c, err)
		}
	}
	gb, err := suggest.Subdivisions("United Kingdom")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(gb, func(c suggest.Candidate) bool { return c.Value == "Caerdydd" && strings.Contains(c.Why, "GB-CRF") }) {
		t.Error("GB local names missing")
	}
}

func TestAllowedValues(t *testing.T) {
	f := dict.Field{Name: "tier", Type: dict.String, Allowed: []concord.Value{"gold", "silver", "platinum", "gold", 3}}
	cands := suggest.Allowed(f)
	if len(cands) != 3 {
		t.Fatalf("Allowed: %+v", cands)
	}
	ix := suggest.New(suggest.Options{})
	ix.Add("tier", cands...)
	got := ix.Suggest("tier", "Platnium")
	if len(got) == 0 || got[0].Value != "platinum" || !strings.HasPrefix(got[0].Why, `allowed value of "tier"; `) {
		t.Fatalf("Platnium: %+v", got)
	}
	// A value the field already holds keeps its first why.
	ix.Add("tier", suggest.Values("other", "gold", "bronze")...)
	got = ix.Suggest("tier", "gol")
	if len(got) == 0 || got[0].Value != "gold" || !strings.HasPrefix(got[0].Why, "allowed value") {
		t.Errorf("gol: %+v", got)
	}
	if vs := suggest.Values("w", "a", "b", "a"); len(vs) != 2 {
		t.Errorf("Values dedupe: %+v", vs)
	}
	// Candidates without letters, or too long, are not indexed.
	ix.Add("tier", suggest.Candidate{Value: "--"}, suggest.Candidate{Value: strings.Repeat("gold", 100)})
	if got := ix.Suggest("tier", strings.Repeat("gold", 100)+"x"); got != nil {
		t.Errorf("long: %+v", got)
	}
}

func TestLearned(t *testing.T) {
	ix := suggest.New(suggest.Options{Learned: 3})
	for range 5 {
		ix.Learn("street", "Main Street")
	}
	ix.Learn("street", "Main Stret") // a typo the system holds once
	ix.Learn("street", "Elm Road")
	got := ix.Suggest("street", "Mian Street")
	if len(got) < 2 || got[0].Value != "Main Street" {
		t.Fatalf("Mian Street: %+v", got)
	}
	if !strings.HasPrefix(got[0].Why, "held value (learned 5 times); ") {
		t.Errorf("why %q", got[0].Why)
	}
	// The held typo itself still gets suggestions: learned values are
	// not taken as right.
	got = ix.Suggest("street", "Main Stret")
	if len(got) == 0 || got[0].Value != "Main Street" {
		t.Errorf("Main Stret: %+v", got)
	}
	// Bounded: the least recently learned goes. Main Street was learned
	// before Main Stret, so learning two more forgets Main Street... unless
	// it is learned again first.
	ix.Learn("street", "Main Street")
	ix.Learn("street", "Oak Avenue")
	if n := ix.Learned("street"); n != 3 {
		t.Errorf("%d values held, want 3", n)
	}
	got = ix.Suggest("street", "Main Stret")
	if len(got) == 0 || got[0].Value != "Main Street" {
		t.Errorf("Main Street was forgotten: %+v", got)
	}
	if got := ix.Suggest("street", "Main Streets"); slices.ContainsFunc(got, func(s suggest.Suggestion) bool { return s.Value == "Main Stret" }) {
		t.Errorf("Main Stret not forgotten: %+v", got)
	}
	if ix.Learned("nothing") != 0 {
		t.Error("unknown field holds values")
	}
	// Equal scores: the value held more often first.
	ix2 := suggest.New(suggest.Options{})
	ix2.Learn("city", "Bern")
	ix2.Learn("city", "Bonn")
	ix2.Learn("city", "Bonn")
	got = ix2.Suggest("city", "Bxnn")
	if len(got) < 1 || got[0].Value != "Bonn" {
		t.Errorf("Bxnn: %+v", got)
	}
	// A learned value that is also fixed appears once, from the list.
	ix2.Add("city", suggest.Values("list", "Basel")...)
	ix2.Learn("city", "Basel")
	got = ix2.Suggest("city", "Basle")
	if len(got) == 0 || got[0].Value != "Basel" || !strings.HasPrefix(got[0].Why, "list; ") {
		t.Errorf("Basle: %+v", got)
	}
	checkRanked(t, got)
	// Ignored values.
	ix2.Learn("city", "")
	ix2.Learn("city", "...")
	ix2.Learn("city", strings.Repeat("x", 300))
	if n := ix2.Learned("city"); n != 3 {
		t.Errorf("%d values held, want 3", n)
	}
}

// TestDeterministic builds the same index in two orders and checks that
// every answer is the same.
func TestDeterministic(t *testing.T) {
	cands := suggest.Countries()
	a, b := suggest.New(suggest.Options{Max: 10}), suggest.New(suggest.Options{Max: 10})
	a.Add("c", cands...)
	rev := slices.Clone(cands)
	slices.Reverse(rev)
	b.Add("c", rev...)
	for _, s := range streets(300, 1) {
		a.Learn("c", s)
	}
	ss := streets(300, 1)
	slices.Reverse(ss)
	for _, s := range ss {
		b.Learn("c", s)
	}
	for _, q := range []string{"Germny", "Niger ia", "Guinea", "Saint", "Island", "Oak Hill Steet", "Korea"} {
		x, y := a.Suggest("c", q), b.Suggest("c", q)
		if !slices.Equal(x, y) {
			t.Errorf("%q: %+v\nvs %+v", q, x, y)
		}
		if !slices.Equal(x, a.Suggest("c", q)) {
			t.Errorf("%q: another answer the second time", q)
		}
	}
}

// TestConcurrent learns and suggests from many goroutines (run with
// -race).
func TestConcurrent(t *testing.T) {
	ix := suggest.New(suggest.Options{Learned: 50})
	ix.Add("country", suggest.Countries()...)
	held := streets(200, 3)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				s := held[(g*31+i)%len(held)]
				ix.Learn("street", s)
				checkRanked(t, ix.Suggest("street", s+"x"))
				checkRanked(t, ix.Suggest("country", "Germny"))
				if g == 0 && i%50 == 0 {
					ix.Add("country", suggest.Values("extra", fmt.Sprint("Land ", i))...)
				}
			}
		})
	}
	wg.Wait()
	if n := ix.Learned("street"); n != 50 {
		t.Errorf("%d held, want 50", n)
	}
}

// TestHostile feeds long, binary and odd values.
func TestHostile(t *testing.T) {
	ix := usStates(t)
	for _, v := range []string{
		strings.Repeat("a", 1<<20),
		strings.Repeat("Californa ", 25), // 250 runes: still compared
		strings.Repeat("\x00", 1000),
		"Cali\x00forna",
		"Ca\u0301lifo\u0308rna",
		strings.Repeat("é", 300),
	} {
		checkRanked(t, ix.Suggest("state", v))
	}
	got := ix.Suggest("state", "Ca\u0301lifo\u0308rna")
	if len(got) == 0 || got[0].Value != "California" {
		t.Errorf("decomposed accents: %+v", got)
	}
}
