package suggest_test

import (
	"math"
	"strings"
	"testing"

	"github.com/concordsync/concord/transform/suggest"
)

func TestDecide(t *testing.T) {
	s := func(v string, score float64) suggest.Suggestion {
		return suggest.Suggestion{Value: v, Score: score, Why: "w"}
	}
	for _, c := range []struct {
		name   string
		p      suggest.Policy
		in     []suggest.Suggestion
		apply  string
		hold   bool
		reason string
	}{
		{"none", suggest.Policy{AutoApply: 0.9, Hold: true}, nil, "", false, "no suggestion"},
		{"off", suggest.Policy{}, []suggest.Suggestion{s("a", 1)}, "", false, "off"},
		{"off, hold", suggest.Policy{Hold: true}, []suggest.Suggestion{s("a", 1)}, "", true, "off"},
		{"NaN threshold is off", suggest.Policy{AutoApply: math.NaN()}, []suggest.Suggestion{s("a", 1)}, "", false, "off"},
		{"negative threshold is off", suggest.Policy{AutoApply: -1}, []suggest.Suggestion{s("a", 1)}, "", false, "off"},
		{"alone above", suggest.Policy{AutoApply: 0.9}, []suggest.Suggestion{s("California", 0.91)}, "California", false, "no other"},
		{"at threshold", suggest.Policy{AutoApply: 0.91}, []suggest.Suggestion{s("California", 0.91)}, "California", false, "at least"},
		{"below", suggest.Policy{AutoApply: 0.95}, []suggest.Suggestion{s("California", 0.91)}, "", false, "below"},
		{"below, hold", suggest.Policy{AutoApply: 0.95, Hold: true}, []suggest.Suggestion{s("California", 0.91)}, "", true, "below"},
		{"clear lead", suggest.Policy{AutoApply: 0.8}, []suggest.Suggestion{s("Germany", 0.86), s("Guernsey", 0.6)}, "Germany", false, "leads \"Guernsey\""},
		{"ambiguous", suggest.Policy{AutoApply: 0.8}, []suggest.Suggestion{s("Nigeria", 0.871), s("Niger", 0.85)}, "", true, "ambiguous"},
		{"ambiguous even without hold", suggest.Policy{AutoApply: 0.8, Hold: false}, []suggest.Suggestion{s("a", 0.9), s("b", 0.9)}, "", true, "ambiguous"},
		{"custom margin", suggest.Policy{AutoApply: 0.8, Margin: 0.01}, []suggest.Suggestion{s("Nigeria", 0.871), s("Niger", 0.85)}, "Nigeria", false, "leads"},
		{"unsorted input", suggest.Policy{AutoApply: 0.8}, []suggest.Suggestion{s("Guernsey", 0.6), s("Germany", 0.86)}, "Germany", false, "leads"},
		{"tie broken by nothing", suggest.Policy{AutoApply: 0.5, Margin: 1e-12}, []suggest.Suggestion{s("b", 0.9), s("a", 0.9)}, "", true, "ambiguous"},
		{"same value twice is no rival", suggest.Policy{AutoApply: 0.8}, []suggest.Suggestion{s("a", 0.9), s("a", 0.89)}, "a", false, "no other"},
		{"empty and NaN ignored", suggest.Policy{AutoApply: 0.8}, []suggest.Suggestion{s("", 1), s("x", math.NaN()), s("a", 0.9)}, "a", false, "no other"},
		{"only unusable", suggest.Policy{AutoApply: 0.8, Hold: true}, []suggest.Suggestion{s("", 1), s("x", math.NaN())}, "", false, "no suggestion"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := c.p.Decide(c.in)
			if d.Apply != c.apply || d.Hold != c.hold || !strings.Contains(d.Reason, c.reason) {
				t.Errorf("Decide = %+v, want apply %q hold %v reason ~%q", d, c.apply, c.hold, c.reason)
			}
			if d.Apply != "" && d.Best.Value != d.Apply {
				t.Errorf("applied %q but best is %+v", d.Apply, d.Best)
			}
			if d.Apply != "" && d.Hold {
				t.Error("applied and held")
			}
		})
	}
}

// TestDecideOnSuggestions runs the policy on real suggestions.
func TestDecideOnSuggestions(t *testing.T) {
	ix := suggest.New(suggest.Options{})
	ix.Add("country", suggest.Countries()...)
	p := suggest.Policy{AutoApply: 0.8, Hold: true}
	if d := p.Decide(ix.Suggest("country", "Germny")); d.Apply != "Germany" {
		t.Errorf("Germny: %+v", d)
	}
	if d := p.Decide(ix.Suggest("country", "Nigera")); d.Apply != "" || !d.Hold {
		t.Errorf("Nigera is ambiguous (Niger, Nigeria): %+v", d)
	}
	if d := p.Decide(ix.Suggest("country", "Atlantis")); d.Apply != "" {
		t.Errorf("Atlantis: %+v", d)
	}
}
