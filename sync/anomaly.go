package sync

import (
	"context"
	"fmt"
	"slices"

	"github.com/concordsync/concord/resolve"
)

// anomalyGate is the engine's gate for [Config.Anomalies]: it holds a
// change of a numeric field whose size is an outlier for that field
// (resolve.AnomalyRule), with the evidence in the hold's reason. The
// statistics of each field's recent changes, across every record, are
// stored in the store (engine value "anomaly/<field>"), loaded at the
// start of each cycle and committed with it; every change that becomes
// canonical is learned.
type anomalyGate struct {
	rules map[string]resolve.AnomalyRule // by field
	stats map[string]*resolve.FieldStats
	dirty map[string]bool
}

func anomalyValueName(field string) string { return "anomaly/" + field }

func newAnomalyGate(rules []resolve.AnomalyRule) (*anomalyGate, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	g := &anomalyGate{rules: map[string]resolve.AnomalyRule{}}
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if _, dup := g.rules[r.Field]; dup {
			return nil, fmt.Errorf("two anomaly rules for field %q", r.Field)
		}
		g.rules[r.Field] = r
	}
	return g, nil
}

// load reads every field's statistics from the store.
func (g *anomalyGate) load(ctx context.Context, e *Engine) error {
	g.stats, g.dirty = map[string]*resolve.FieldStats{}, map[string]bool{}
	for f, r := range g.rules {
		b, err := e.store.Value(ctx, anomalyValueName(f))
		if err != nil {
			return fmt.Errorf("concord: loading the anomaly statistics of field %q: %w", f, err)
		}
		st := r.NewStats()
		if b != nil {
			if err := st.UnmarshalBinary(b); err != nil {
				// Statistics are a convenience: damaged ones are
				// started again (and said so), not a stalled pipeline.
				e.log.Warn("concord: anomaly statistics damaged; starting them again", "field", f, "error", err)
				st = r.NewStats()
				g.dirty[f] = true
			}
		}
		g.stats[f] = st
	}
	return nil
}

// Check judges c by the rule of each of its fields that has one; the first
// hold decides.
func (g *anomalyGate) Check(_ context.Context, c resolve.Change) (resolve.Verdict, error) {
	for _, f := range c.Fields {
		r, ok := g.rules[f]
		if !ok {
			continue
		}
		v, _, err := r.Judge(g.statsOf(f), c)
		if err != nil || v.Outcome != resolve.Accept {
			return v, err
		}
	}
	return resolve.Verdict{Outcome: resolve.Accept}, nil
}

// learn adds a change that became canonical to its fields' statistics.
func (g *anomalyGate) learn(c resolve.Change) {
	for _, f := range c.Fields {
		if r, ok := g.rules[f]; ok && r.Learn(g.statsOf(f), c) {
			g.dirty[f] = true
		}
	}
}

// statsOf returns the statistics of field f (new ones if none are loaded).
func (g *anomalyGate) statsOf(f string) *resolve.FieldStats {
	if g.stats == nil {
		g.stats, g.dirty = map[string]*resolve.FieldStats{}, map[string]bool{}
	}
	st := g.stats[f]
	if st == nil {
		st = g.rules[f].NewStats()
		g.stats[f] = st
	}
	return st
}

// values returns the changed statistics to commit, and forgets that they
// changed.
func (g *anomalyGate) values(into map[string][]byte) map[string][]byte {
	for _, f := range slices.Sorted(func(yield func(string) bool) {
		for f := range g.dirty {
			if !yield(f) {
				return
			}
		}
	}) {
		b, err := g.stats[f].MarshalBinary()
		if err != nil {
			continue // cannot fail for stats built by Observe
		}
		if into == nil {
			into = map[string][]byte{}
		}
		into[anomalyValueName(f)] = b
	}
	clear(g.dirty)
	return into
}
