package sync_test

import (
	"context"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/suggest"
)

// usStates refuses a state that is not a US state's name.
type usStates map[string]bool

func (v usStates) Validate(rec concord.Record) error {
	s, ok := rec.Fields["state"].(string)
	if !ok || v[s] {
		return nil
	}
	return &transform.Violations{Key: rec.Key, List: []transform.Violation{{Key: rec.Key, Field: "state", Value: s,
		Rule: transform.ErrRequired, Reason: "not a US state"}}}
}

func TestRefusedValuesGetSuggestionsOrACorrection(t *testing.T) {
	ctx := context.Background()
	states, err := suggest.Subdivisions("US")
	if err != nil {
		t.Fatal(err)
	}
	ix := suggest.New(suggest.Options{})
	ix.Add("state", states...)
	valid := usStates{}
	for _, c := range states {
		valid[c.Value] = true
	}
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, func(c *recsync.Config) {
		c.Dictionary = valid
		c.Cleansing = map[string]recsync.Cleansing{"state": {Suggester: ix, Policy: transform.Policy{AutoApply: 0.85}}}
	})
	r.sys["portal"].Edit("c1", map[string]any{"name": "Ada", "state": "Californa"})
	r.sys["portal"].Edit("c2", map[string]any{"name": "Bob", "state": "Texsa"}) // not close enough for the policy
	r.settle()

	// Corrected, audited with the original, and the correction written
	// everywhere (the portal's own copy too).
	r.requireAll("c1", map[string]any{"name": "Ada", "state": "California"})
	ev := r.audit.Require(t, audittest.Match{Kind: audit.ValueCorrected, System: "portal", Key: "c1"})
	if ev.From["state"] != "Californa" || ev.To["state"] != "California" || !strings.Contains(ev.Reason, "score") {
		t.Fatalf("correction event %+v; want Californa → California with the score", ev)
	}
	// Not corrected: dead-lettered, the suggestions in the reason.
	dead, err := r.engine.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Key != "c2" || !strings.Contains(dead[0].Reason, "suggestions for state:") {
		t.Fatalf("dead letters %+v; want c2 with suggestions", dead)
	}
	if _, ok := r.sys["warehouse"].Record("c2"); ok {
		t.Fatal("the refused record reached the warehouse")
	}
	x, err := r.engine.Explain(ctx, "c2", "state")
	if err != nil {
		t.Fatal(err)
	}
	if x.Known || len(x.DeadLetters) != 1 || !strings.Contains(x.String(), `"Texas"`) {
		t.Fatalf("Explain of the refused record:\n%s", x)
	}
}

// fixedSuggester suggests one value for every refused one.
type fixedSuggester string

func (s fixedSuggester) Suggest(field, value string) []transform.Suggestion {
	return []transform.Suggestion{{Value: string(s), Score: 1, Why: "always"}}
}

// A correction that is not a valid value (here invalid UTF-8, which a
// dictionary checking names alone would accept) is not applied: the record
// is dead-lettered with the dictionary's reason, and nothing reaches the
// other system.
func TestInvalidCorrectionIsNotApplied(t *testing.T) {
	bad := "Cal\xffifornia"
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, func(c *recsync.Config) {
		c.Dictionary = usStates{"California": true, bad: true}
		c.Cleansing = map[string]recsync.Cleansing{"state": {Suggester: fixedSuggester(bad), Policy: transform.Policy{AutoApply: 0.85}}}
	})
	r.sys["portal"].Edit("c1", map[string]any{"name": "Ada", "state": "Californa"})
	r.settle()
	dead, err := r.engine.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Key != "c1" || !strings.Contains(dead[0].Reason, "not a US state") {
		t.Fatalf("dead letters %+v; want c1, refused by the dictionary", dead)
	}
	if _, ok := r.sys["warehouse"].Record("c1"); ok {
		t.Fatal("the record with an invalid correction reached the warehouse")
	}
	r.audit.RequireNone(t, audittest.Match{Kind: audit.ValueCorrected})
}

// panickySuggester panics: a bug in user code.
type panickySuggester struct{}

func (panickySuggester) Suggest(field, value string) []transform.Suggestion { panic("suggester bug") }

// A suggester that panics fails only the record it was asked about: it is
// dead-lettered with the dictionary's reason and the panic, and the other
// records sync. Before, the panic crashed the host.
func TestAPanickingSuggesterFailsOnlyItsRecord(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, func(c *recsync.Config) {
		c.Dictionary = usStates{"California": true}
		c.Cleansing = map[string]recsync.Cleansing{"state": {Suggester: panickySuggester{}, Policy: transform.Policy{AutoApply: 0.85}}}
	})
	r.sys["portal"].Edit("c1", map[string]any{"name": "Ada", "state": "Californa"})
	r.sys["portal"].Edit("c2", map[string]any{"name": "Bob", "state": "California"})
	r.settle()
	r.requireAll("c2", map[string]any{"name": "Bob", "state": "California"})
	dead, err := r.engine.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Key != "c1" || !strings.Contains(dead[0].Reason, "not a US state") || !strings.Contains(dead[0].Reason, "suggester bug") {
		t.Fatalf("dead letters %+v; want c1, with the dictionary's reason and the panic", dead)
	}
}
