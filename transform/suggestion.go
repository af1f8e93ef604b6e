package transform

import (
	"fmt"
	"math"
)

// Suggestion is one ranked replacement for a refused value.
type Suggestion struct {
	// Value is the suggested replacement, as the field would hold it.
	Value string
	// Score is how close Value is to the refused value, in [0,1]; 1 means
	// the same letters apart from case, accents and punctuation.
	Score float64
	// Why says where Value comes from and which edits separate it from
	// the refused value: `ISO 3166-2 US-CA; 1 edit: missing "i"`.
	Why string
}

// Suggester ranks replacements for a value that a field refuses, best
// first. Implementations are deterministic (the same state gives the same
// answer) and safe for concurrent use. nil means no suggestion.
type Suggester interface {
	Suggest(field, value string) []Suggestion
}

// DefaultMargin is the lead over the runner-up that [Policy.Decide]
// requires when Policy.Margin is zero.
const DefaultMargin = 0.05

// Policy says what to do with a field's suggestions: apply the best one
// automatically, hold the value for a person, or neither (the value stays
// refused, with its suggestions shown where it is reported). A suggestion
// is never applied silently: the host records an applied one as a
// correction that keeps the original value, with the Decision's Reason.
type Policy struct {
	// AutoApply is the score at or above which the best suggestion may be
	// applied automatically; 0 (or less, or NaN) never applies one.
	AutoApply float64
	// Margin is how far the best suggestion's score must lead the
	// runner-up's (the best with another value) for it to be applied; 0
	// means DefaultMargin. A tie never applies.
	Margin float64
	// Hold holds a value that is not applied, and has suggestions, for a
	// person to decide.
	Hold bool
}

// Decision is the outcome of [Policy.Decide].
type Decision struct {
	// Apply is the value to apply automatically; empty if none.
	Apply string
	// Hold is true if the value should wait for a person.
	Hold bool
	// Best is the best suggestion, applied or not; zero if there was none.
	Best Suggestion
	// Reason says why, for the audit trail and the person.
	Reason string
}

// Decide applies p to the suggestions s (in any order; suggestions with
// an empty value or a NaN score are ignored, other scores are taken as
// given):
//
//   - no suggestion: nothing is applied or held;
//   - the best score is at least AutoApply (with AutoApply > 0) and leads
//     the runner-up by at least the margin (the best has no runner-up if
//     it is the only value): the best is applied;
//   - the best score is at least AutoApply but the lead is smaller: the
//     value is ambiguous and held, whatever Hold says;
//   - otherwise: held if Hold is set.
func (p Policy) Decide(s []Suggestion) Decision {
	usable := func(x Suggestion) bool { return x.Value != "" && !math.IsNaN(x.Score) }
	best := -1
	for i, x := range s {
		if usable(x) && (best < 0 || x.Score > s[best].Score || (x.Score == s[best].Score && x.Value < s[best].Value)) {
			best = i
		}
	}
	if best < 0 {
		return Decision{Reason: "no suggestion"}
	}
	runner := -1
	for i, x := range s {
		if usable(x) && x.Value != s[best].Value && (runner < 0 || x.Score > s[runner].Score) {
			runner = i
		}
	}
	d := Decision{Best: s[best]}
	if !(p.AutoApply > 0) {
		d.Hold = p.Hold
		d.Reason = "automatic correction is off for this field"
		return d
	}
	if s[best].Score < p.AutoApply {
		d.Hold = p.Hold
		d.Reason = fmt.Sprintf("best suggestion %q scores %.3f, below the threshold %.3f", s[best].Value, s[best].Score, p.AutoApply)
		return d
	}
	margin := p.Margin
	if !(margin > 0) {
		margin = DefaultMargin
	}
	if runner >= 0 {
		lead := s[best].Score - s[runner].Score
		if !(lead > 0) || lead < margin {
			d.Hold = true
			d.Reason = fmt.Sprintf("ambiguous: %q scores %.3f and %q %.3f, a lead below the margin %.3f",
				s[best].Value, s[best].Score, s[runner].Value, s[runner].Score, margin)
			return d
		}
		d.Apply = s[best].Value
		d.Reason = fmt.Sprintf("%q scores %.3f, at least the threshold %.3f, and leads %q by %.3f",
			s[best].Value, s[best].Score, p.AutoApply, s[runner].Value, lead)
		return d
	}
	d.Apply = s[best].Value
	d.Reason = fmt.Sprintf("%q scores %.3f, at least the threshold %.3f, with no other suggestion",
		s[best].Value, s[best].Score, p.AutoApply)
	return d
}
