package sync

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/transform"
)

// Cleansing configures what the engine does with a value of one field that
// the Dictionary refuses: ranked suggestions (transform/suggest) go into
// the dead letter's reason, and a suggestion the Policy applies replaces
// the value, audited as a correction (audit.ValueCorrected, with the
// original), never silently.
type Cleansing struct {
	// Suggester ranks replacements for a refused value (a *suggest.Index
	// with ISO country names, the field's allowed values, values the
	// system already holds).
	Suggester transform.Suggester
	// Policy says when the best suggestion is applied automatically
	// (Policy.AutoApply, with a lead over the runner-up); otherwise the
	// record is dead-lettered with the suggestions for a person.
	Policy transform.Policy
}

// RuleCleansing is the Rule of an audit.ValueCorrected event.
const RuleCleansing concord.Rule = "cleansing"

// maxSuggestionsShown bounds the suggestions a dead letter's reason lists.
const maxSuggestionsShown = 3

// cleanse tries the configured cleansing on a record the dictionary
// refused with err: if every violation is of a field with Cleansing whose
// policy applies a suggestion, and the corrected record passes the
// dictionary, it returns the corrected record and the correction events;
// otherwise it returns err with the suggestions added to its text.
func (c *cycle) cleanse(s *system, rec concord.Record, err error) (concord.Record, []audit.Event, error) {
	var vs *transform.Violations
	if !errors.As(err, &vs) {
		var v transform.Violation
		if !errors.As(err, &v) {
			return rec, nil, err
		}
		vs = &transform.Violations{Key: v.Key, List: []transform.Violation{v}}
	}
	fixed := maps.Clone(rec.Fields)
	var events []audit.Event
	var notes []string
	all := true
	for _, v := range vs.List {
		cl, ok := c.e.cfg.Cleansing[v.Field]
		str, isStr := v.Value.(string)
		if !ok || !isStr || cl.Suggester == nil {
			all = false
			continue
		}
		var sugs []transform.Suggestion
		// User code, on the engine's goroutines: a panic fails this
		// record (dead-lettered with the reason), never the host.
		if perr := guard("suggester of field "+v.Field, func() { sugs = cl.Suggester.Suggest(v.Field, str) }); perr != nil {
			return rec, nil, fmt.Errorf("%w; the suggester for %s failed: %w", err, v.Field, perr)
		}
		d := cl.Policy.Decide(sugs)
		if d.Apply == "" {
			all = false
			if len(sugs) > 0 {
				notes = append(notes, fmt.Sprintf("suggestions for %s: %s", v.Field, showSuggestions(sugs, c.e.sens.is(v.Field))))
			}
			continue
		}
		fixed[v.Field] = d.Apply
		events = append(events, audit.Event{Time: c.e.now(), Kind: audit.ValueCorrected, Cycle: c.report.Cycle, System: s.id,
			Key: rec.Key, Unit: c.e.layout.unitOf(v.Field), Fields: []string{v.Field},
			From: map[string]concord.Value{v.Field: str}, To: map[string]concord.Value{v.Field: d.Apply}, Rule: RuleCleansing,
			Reason: fmt.Sprintf("%q refused by the dictionary (%s); corrected to %q, score %.2f: %s; %s", str, v.Reason, d.Apply, d.Best.Score, d.Best.Why, d.Reason)})
	}
	if all && len(events) > 0 {
		corrected := rec
		corrected.Fields = fixed
		// A correction is a value like any other: valid (UTF-8, a
		// supported type) and accepted by the dictionary, or not applied.
		if corrected.Validate() == nil && c.e.cfg.Dictionary.Validate(corrected) == nil {
			return corrected, events, nil
		}
	}
	if len(notes) > 0 {
		err = fmt.Errorf("%w (%s)", err, strings.Join(notes, "; "))
	}
	return rec, nil, err
}

func showSuggestions(s []transform.Suggestion, sensitive bool) string {
	if sensitive {
		return Redacted
	}
	parts := make([]string, 0, maxSuggestionsShown)
	for _, x := range s[:min(len(s), maxSuggestionsShown)] {
		parts = append(parts, fmt.Sprintf("%q %.2f (%s)", x.Value, x.Score, x.Why))
	}
	return strings.Join(parts, ", ")
}
