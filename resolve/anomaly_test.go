package resolve_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
)

// priceChange is a change of the single-field unit "price".
func priceChange(from, to concord.Value) resolve.Change {
	return resolve.Change{Key: "sku-1", Unit: "price", Fields: []string{"price"}, System: "erp",
		From: map[string]concord.Value{"price": from}, To: map[string]concord.Value{"price": to}}
}

// fivepercent is a history of 40 price changes within ±5%.
var fiveShifts = []float64{0.02, -0.03, 0.05, -0.01, 0.04, -0.05, 0.01, -0.02, 0.03, -0.04}

// learnHistory feeds rule the changes 100 → 100·(1+d) for each d, n times
// round the list, and returns the statistics.
func learnHistory(t testing.TB, rule resolve.AnomalyRule, shifts []float64, rounds int) *resolve.FieldStats {
	t.Helper()
	stats := rule.NewStats()
	for range rounds {
		for _, d := range shifts {
			require.True(t, rule.Learn(stats, priceChange(100.0, 100*(1+d))), "learn %v", d)
		}
	}
	return stats
}

func judge(t testing.TB, rule resolve.AnomalyRule, stats *resolve.FieldStats, c resolve.Change) (resolve.Verdict, resolve.Evidence) {
	t.Helper()
	v, e, err := rule.Judge(stats, c)
	require.NoError(t, err)
	return v, e
}

// The story: after forty changes of at most ±5%, a price falling
// from 100 to 1 is held with the evidence, and a 5% rise passes.
func TestAnomalyHoldsTheHundredfoldFall(t *testing.T) {
	rule := resolve.AnomalyRule{Field: "price", MaxChange: 1}
	stats := learnHistory(t, rule, fiveShifts, 4)
	require.Equal(t, 40, stats.Len())

	// The statistics, computed here the slow way.
	var logs []float64
	for _, d := range fiveShifts {
		logs = append(logs, math.Log(100*(1+d))-math.Log(100))
	}
	med := median(logs)
	var devs []float64
	for _, x := range logs {
		devs = append(devs, math.Abs(x-med))
	}
	assert.InDelta(t, med, stats.Median(), 1e-15)
	assert.InDelta(t, median(devs), stats.MAD(), 1e-15)

	v, e := judge(t, rule, stats, priceChange(100, 1))
	assert.Equal(t, resolve.HoldChange, v.Outcome)
	assert.Equal(t, resolve.RuleAnomaly, v.Rule)
	assert.Equal(t, "price 100 → 1: −99%, beyond the limit −50% to +100%; typical ±4.5% (median −0.01%, MAD 3% over 40 changes), outside −20% to +25%", v.Reason)
	assert.Equal(t, resolve.Anomalous, e.Kind)
	assert.True(t, e.Held && e.BeyondLimit && e.Outlier && e.Warm)
	assert.InDelta(t, -0.99, e.Change, 1e-12)
	assert.InDelta(t, math.Log(0.01), e.LogRatio, 1e-12)

	v, e = judge(t, rule, stats, priceChange(100, 105))
	assert.Equal(t, resolve.Verdict{Outcome: resolve.Accept}, v)
	assert.Equal(t, resolve.Typical, e.Kind)
	assert.False(t, e.Held || e.BeyondLimit || e.Outlier)

	// Within the fixed limit but an outlier for this field: held, and the
	// Reason says so without a fixed limit.
	v, _ = judge(t, rule, stats, priceChange(100, 140))
	assert.Equal(t, resolve.HoldChange, v.Outcome)
	assert.Equal(t, "price 100 → 140: +40%, typical ±4.5% (median −0.01%, MAD 3% over 40 changes), outside −20% to +25%", v.Reason)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Below MinSamples only the fixed limit applies; from MinSamples on the
// statistics do too.
func TestAnomalyColdStart(t *testing.T) {
	rule := resolve.AnomalyRule{Field: "price", MaxChange: 0.5, MinSamples: 10}
	stats := rule.NewStats()
	for i, d := range fiveShifts[:9] {
		require.True(t, rule.Learn(stats, priceChange(100.0, 100*(1+d))), "change %d", i)
	}
	v, e := judge(t, rule, stats, priceChange(100, 140))
	assert.Equal(t, resolve.Accept, v.Outcome, "9 changes: cold, +40%% is within +50%%")
	assert.False(t, e.Warm)
	assert.Equal(t, 9, e.Samples)

	v, _ = judge(t, rule, stats, priceChange(100, 151))
	assert.Equal(t, resolve.HoldChange, v.Outcome)
	assert.Equal(t, "price 100 → 151: +51%, beyond the limit −33% to +50%", v.Reason)
	v, _ = judge(t, rule, stats, priceChange(100, 66))
	assert.Equal(t, resolve.HoldChange, v.Outcome, "a fall to less than 1/1.5")
	v, _ = judge(t, rule, stats, priceChange(100, 67))
	assert.Equal(t, resolve.Accept, v.Outcome, "a fall to more than 1/1.5")

	require.True(t, rule.Learn(stats, priceChange(100.0, 100*(1+fiveShifts[9]))))
	v, e = judge(t, rule, stats, priceChange(100, 140))
	assert.Equal(t, resolve.HoldChange, v.Outcome, "10 changes: warm")
	assert.True(t, e.Warm && e.Outlier && !e.BeyondLimit)

	// Nil statistics are empty statistics.
	v, e = judge(t, rule, nil, priceChange(100, 140))
	assert.Equal(t, resolve.Accept, v.Outcome)
	assert.Zero(t, e.Samples)
	assert.False(t, rule.Learn(nil, priceChange(100, 140)))
}

// A field whose changes are usually large holds only what is large for it;
// and the statistics are centred on the median, not on zero.
func TestAnomalyLearnsTheFieldsOwnScale(t *testing.T) {
	rule := resolve.AnomalyRule{Field: "price", MaxChange: math.Inf(1), K: 3}
	stats := rule.NewStats()
	// Every change multiplies by 2 to 3 (an index that keeps doubling).
	for i := range 20 {
		require.True(t, rule.Learn(stats, priceChange(100, 200+5*i)))
	}
	v, _ := judge(t, rule, stats, priceChange(100, 250))
	assert.Equal(t, resolve.Accept, v.Outcome)
	v, _ = judge(t, rule, stats, priceChange(100, 105))
	assert.Equal(t, resolve.HoldChange, v.Outcome, "a 5%% change is the outlier here")
	v, _ = judge(t, rule, stats, priceChange(100, 50))
	assert.Equal(t, resolve.HoldChange, v.Outcome)
}

// All changes alike: the MAD is 0, and MinSpread keeps a slightly different
// change from being held.
func TestAnomalyMinSpread(t *testing.T) {
	rule := resolve.AnomalyRule{Field: "price", MaxChange: 1, MinSpread: 0.01}
	stats := rule.NewStats()
	for range 20 {
		rule.Learn(stats, priceChange(100, 102))
	}
	require.Zero(t, stats.MAD())
	v, e := judge(t, rule, stats, priceChange(100, 105))
	assert.Equal(t, resolve.Accept, v.Outcome, "within 5·1%% of +2%%")
	assert.InDelta(t, 0.01, e.Spread, 0)
	v, _ = judge(t, rule, stats, priceChange(100, 108))
	assert.Equal(t, resolve.HoldChange, v.Outcome)
	assert.Contains(t, v.Reason, "typical ±1% (median +2%, MAD 0% over 20 changes)")
}

func TestAnomalyDecisions(t *testing.T) {
	base := resolve.AnomalyRule{Field: "price", MaxChange: 0.5}
	with := func(f func(*resolve.AnomalyRule)) resolve.AnomalyRule { r := base; f(&r); return r }
	group := func(from, to map[string]concord.Value) resolve.Change {
		return resolve.Change{Key: "sku-1", Unit: "money", Fields: []string{"currency", "price"}, From: from, To: to}
	}
	type m = map[string]concord.Value
	cases := []struct {
		name   string
		rule   resolve.AnomalyRule
		c      resolve.Change
		kind   resolve.AnomalyKind
		held   bool
		reason string
	}{
		{"small rise", base, priceChange(100, 110), resolve.Typical, false, ""},
		{"large rise", base, priceChange(100, 200), resolve.Anomalous, true, "price 100 → 200: +100%, beyond the limit −33% to +50%"},
		{"negative values, same sign, small", base, priceChange(-100, -110), resolve.Typical, false, ""},
		{"negative values, same sign, large", base, priceChange(-100, -1), resolve.Anomalous, true, "price -100 → -1: +99%, beyond the limit −33% to +50%"},
		{"to zero", base, priceChange(100, 0), resolve.ZeroChange, true, "price 100 → 0: −100%, a change to zero"},
		{"from zero", base, priceChange(0, 5), resolve.ZeroChange, true, "price 0 → 5: a change from zero"},
		{"from negative zero", base, priceChange(math.Copysign(0, -1), 5.0), resolve.ZeroChange, true, ""},
		{"to zero allowed", with(func(r *resolve.AnomalyRule) { r.AllowZero = true }), priceChange(100, 0), resolve.ZeroChange, false, ""},
		{"sign change", base, priceChange(100, -100), resolve.SignChange, true, "price 100 → -100: −200%, a change of sign"},
		{"sign change allowed", with(func(r *resolve.AnomalyRule) { r.AllowSignChange = true }), priceChange(-5, 5), resolve.SignChange, false, ""},
		{"NaN", base, priceChange(100, math.NaN()), resolve.NonFinite, true, "price 100 → NaN: not a finite number"},
		{"+Inf", base, priceChange(100, math.Inf(1)), resolve.NonFinite, true, "price 100 → +Inf: not a finite number"},
		{"json.Number beyond float64", base, priceChange(100, json.Number("1e400")), resolve.NonFinite, true, "price 100 → 1e400: not a finite number"},
		{"NaN to NaN", base, priceChange(math.NaN(), math.NaN()), resolve.NonFinite, true, ""},
		{"from NaN: a repair", base, priceChange(math.NaN(), 100), resolve.Repair, false, ""},
		{"from -Inf: a repair", base, priceChange(math.Inf(-1), 100), resolve.Repair, false, ""},
		{"equal numbers of other types", base, priceChange(int64(100), 100.0), resolve.NotJudged, false, ""},
		{"string not parsed", base, priceChange("100", "1"), resolve.NotJudged, false, ""},
		{"string parsed", with(func(r *resolve.AnomalyRule) { r.ParseStrings = true }), priceChange("100.00", "1"), resolve.Anomalous, true, "price 100.00 → 1: −99%"},
		{"string not a JSON number", with(func(r *resolve.AnomalyRule) { r.ParseStrings = true }), priceChange("100", " 1"), resolve.NotJudged, false, ""},
		{"string NaN is not a number", with(func(r *resolve.AnomalyRule) { r.ParseStrings = true }), priceChange("100", "NaN"), resolve.NotJudged, false, ""},
		{"string hex is not a number", with(func(r *resolve.AnomalyRule) { r.ParseStrings = true }), priceChange("100", "0x1p3"), resolve.NotJudged, false, ""},
		{"json.Number", base, priceChange(json.Number("100"), json.Number("1.0e0")), resolve.Anomalous, true, "price 100 → 1.0e0: −99%"},
		{"invalid json.Number", base, priceChange(json.Number("100"), json.Number("1.")), resolve.NotJudged, false, ""},
		{"int kinds", base, priceChange(int8(100), uint16(1)), resolve.Anomalous, true, ""},
		{"uint64 max", base, priceChange(uint64(math.MaxUint64), uint32(7)), resolve.Anomalous, true, ""},
		{"float32", base, priceChange(float32(1.5), float32(1.6)), resolve.Typical, false, ""},
		{"bool", base, priceChange(true, false), resolve.NotJudged, false, ""},
		{"to nil", base, priceChange(100, nil), resolve.NotJudged, false, ""},
		{"from nil: a first value", base, priceChange(nil, 1), resolve.NotJudged, false, ""},
		{"field absent", base, resolve.Change{Unit: "price", Fields: []string{"price"}, From: m{}, To: m{"price": 1}}, resolve.NotJudged, false, ""},
		{"nil maps", base, resolve.Change{Unit: "price", Fields: []string{"price"}}, resolve.NotJudged, false, ""},
		{"delete", base, resolve.Change{Unit: resolve.RecordUnit, Fields: []string{"price"}, From: m{"price": 100}, Deleted: true}, resolve.NotJudged, false, ""},
		{"record unit", base, resolve.Change{Unit: resolve.RecordUnit, Fields: []string{"price"}, From: m{"price": 100}, To: m{"price": 1}}, resolve.NotJudged, false, ""},
		{"other unit", base, resolve.Change{Unit: "cost", Fields: []string{"cost"}, From: m{"price": 100}, To: m{"price": 1}}, resolve.NotJudged, false, ""},
		{"group, the rule's field", base, group(m{"currency": "EUR", "price": 100}, m{"currency": "EUR", "price": 1}), resolve.Anomalous, true, "price 100 → 1: −99%"},
		{"group, another field changed", base, group(m{"currency": "EUR", "price": 100}, m{"currency": "USD", "price": 100}), resolve.NotJudged, false, ""},
		{"a map is not a number", base, priceChange(m{"v": 1}, m{"v": 100}), resolve.NotJudged, false, ""},
		{"largest log-ratio", base, priceChange(math.SmallestNonzeroFloat64, math.MaxFloat64), resolve.Anomalous, true, "+Inf%, beyond the limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, e := judge(t, tc.rule, nil, tc.c)
			assert.Equal(t, tc.kind, e.Kind, "kind %s", e.Kind)
			assert.Equal(t, tc.held, e.Held, "Evidence.Held")
			if tc.held {
				assert.Equal(t, resolve.HoldChange, v.Outcome)
				assert.Equal(t, resolve.RuleAnomaly, v.Rule)
				assert.Contains(t, v.Reason, tc.reason)
				if tc.reason != "" && tc.kind != resolve.Anomalous {
					assert.Equal(t, tc.reason, v.Reason)
				}
			} else {
				assert.Equal(t, resolve.Verdict{Outcome: resolve.Accept}, v)
			}
			// Only measured changes are learned.
			stats := tc.rule.NewStats()
			learned := tc.rule.Learn(stats, tc.c)
			assert.Equal(t, tc.kind == resolve.Typical || tc.kind == resolve.Anomalous, learned, "Learn")
			assert.Equal(t, btoi(learned), stats.Len())
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestAnomalyRuleValidate(t *testing.T) {
	ok := resolve.AnomalyRule{Field: "price", MaxChange: 0.5}
	require.NoError(t, ok.Validate())
	for _, r := range []resolve.AnomalyRule{
		{Field: "price", MaxChange: math.Inf(1), K: math.Inf(1), Window: resolve.MaxAnomalyWindow, MinSamples: resolve.MaxAnomalyWindow},
		{Field: "price", MaxChange: 1, Window: 3}, // MinSamples defaults to the window
		{Field: "price", MaxChange: 1, Window: 1, MinSamples: 1, MinSpread: 1e-9},
	} {
		assert.NoError(t, r.Validate(), "%+v", r)
	}
	for _, tc := range []struct {
		setting string
		r       resolve.AnomalyRule
	}{
		{"Field", resolve.AnomalyRule{MaxChange: 1}},
		{"MaxChange", resolve.AnomalyRule{Field: "price"}},
		{"MaxChange", resolve.AnomalyRule{Field: "price", MaxChange: -1}},
		{"MaxChange", resolve.AnomalyRule{Field: "price", MaxChange: math.NaN()}},
		{"K", resolve.AnomalyRule{Field: "price", MaxChange: 1, K: -1}},
		{"K", resolve.AnomalyRule{Field: "price", MaxChange: 1, K: math.NaN()}},
		{"Window", resolve.AnomalyRule{Field: "price", MaxChange: 1, Window: -1}},
		{"Window", resolve.AnomalyRule{Field: "price", MaxChange: 1, Window: resolve.MaxAnomalyWindow + 1}},
		{"MinSamples", resolve.AnomalyRule{Field: "price", MaxChange: 1, MinSamples: -1}},
		{"MinSamples", resolve.AnomalyRule{Field: "price", MaxChange: 1, Window: 8, MinSamples: 9}},
		{"MinSamples", resolve.AnomalyRule{Field: "price", MaxChange: 1, MinSamples: resolve.DefaultAnomalyWindow + 1}},
		{"MinSpread", resolve.AnomalyRule{Field: "price", MaxChange: 1, MinSpread: -0.1}},
		{"MinSpread", resolve.AnomalyRule{Field: "price", MaxChange: 1, MinSpread: math.Inf(1)}},
		{"MinSpread", resolve.AnomalyRule{Field: "price", MaxChange: 1, MinSpread: math.NaN()}},
	} {
		err := tc.r.Validate()
		require.ErrorIs(t, err, resolve.ErrBadAnomalyRule, "%+v", tc.r)
		re, ok := errors.AsType[*resolve.AnomalyRuleError](err)
		require.True(t, ok)
		assert.Equal(t, tc.setting, re.Setting)
		assert.Contains(t, err.Error(), tc.setting)

		// Judge names the change; Learn learns nothing.
		_, _, err = tc.r.Judge(nil, priceChange(100, 1))
		require.ErrorIs(t, err, resolve.ErrBadAnomalyRule)
		ue, ok := errors.AsType[*resolve.UnitError](err)
		require.True(t, ok)
		assert.Equal(t, "sku-1", ue.Key)
		assert.Contains(t, err.Error(), `record "sku-1" unit "price" change by "erp"`)
		assert.False(t, tc.r.Learn(tc.r.NewStats(), priceChange(100, 101)))
	}
}

func TestFieldStatsRing(t *testing.T) {
	s := resolve.NewFieldStats(4)
	assert.Zero(t, s.Median())
	assert.Zero(t, s.MAD())
	assert.Empty(t, s.Values())
	for _, x := range []float64{1, 2, 3, 4, 100} {
		require.True(t, s.Observe(x))
	}
	assert.Equal(t, []float64{2, 3, 4, 100}, s.Values(), "oldest dropped")
	assert.Equal(t, 3.5, s.Median())
	assert.Equal(t, 1.0, s.MAD(), "deviations 0.5 0.5 1.5 96.5")
	require.True(t, s.Observe(-7))
	assert.Equal(t, []float64{3, 4, 100, -7}, s.Values())
	assert.Equal(t, 3.5, s.Median())

	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1501, -1e300} {
		assert.False(t, s.Observe(bad), "%v", bad)
	}
	assert.Equal(t, []float64{3, 4, 100, -7}, s.Values(), "ignored values leave no trace")

	s.SetWindow(2)
	assert.Equal(t, []float64{100, -7}, s.Values(), "the most recent kept")
	assert.Equal(t, 2, s.Window())
	assert.Equal(t, 46.5, s.Median())
	s.SetWindow(8)
	require.True(t, s.Observe(1))
	assert.Equal(t, []float64{100, -7, 1}, s.Values())
	assert.Equal(t, 1.0, s.Median())

	var zero resolve.FieldStats
	assert.Equal(t, resolve.DefaultAnomalyWindow, zero.Window())
	for i := range resolve.DefaultAnomalyWindow + 3 {
		zero.Observe(float64(i))
	}
	assert.Equal(t, resolve.DefaultAnomalyWindow, zero.Len())

	assert.Panics(t, func() { resolve.NewFieldStats(0) })
	assert.Panics(t, func() { resolve.NewFieldStats(resolve.MaxAnomalyWindow + 1) })
	assert.Panics(t, func() { s.SetWindow(0) })
}

// Learn resizes statistics made with another window to the rule's.
func TestAnomalyLearnResizes(t *testing.T) {
	s := resolve.NewFieldStats(100)
	for i := range 50 {
		s.Observe(float64(i) / 100)
	}
	rule := resolve.AnomalyRule{Field: "price", MaxChange: 1, Window: 10}
	require.True(t, rule.Learn(s, priceChange(100, 101)))
	assert.Equal(t, 10, s.Window())
	assert.Equal(t, 10, s.Len())
	assert.InDelta(t, math.Log(1.01), s.Values()[9], 1e-15)
	assert.InDelta(t, 0.41, s.Values()[0], 1e-15)
}

// The statistics depend on the changes, not on their order; and match
// a median computed from scratch.
func TestFieldStatsProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		window := rapid.IntRange(1, 40).Draw(t, "window")
		xs := rapid.SliceOfN(rapid.Float64Range(-3, 3), 0, 80).Draw(t, "xs")
		s := resolve.NewFieldStats(window)
		for _, x := range xs {
			s.Observe(x)
		}
		kept := xs[max(0, len(xs)-window):]
		if !slices.Equal(kept, s.Values()) {
			t.Fatalf("Values %v, want %v", s.Values(), kept)
		}
		if len(kept) > 0 {
			if got, want := s.Median(), median(kept); math.Abs(got-want) > 1e-12 {
				t.Fatalf("Median %v, want %v", got, want)
			}
		}
		perm := rapid.Permutation(kept).Draw(t, "perm")
		p := resolve.NewFieldStats(window)
		for _, x := range perm {
			p.Observe(x)
		}
		if p.Median() != s.Median() || p.MAD() != s.MAD() {
			t.Fatalf("order matters: %v/%v vs %v/%v", s.Median(), s.MAD(), p.Median(), p.MAD())
		}
		// Round trip.
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back resolve.FieldStats
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(back.Values(), s.Values()) || back.Window() != window || back.Median() != s.Median() || back.MAD() != s.MAD() {
			t.Fatalf("round trip changed the statistics")
		}
	})
}

// A change inside median ± K·σ and within the fixed limit is never held;
// one outside either is held once the statistics are warm; and the verdict
// does not depend on the order of the history.
func TestAnomalyBandProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rule := resolve.AnomalyRule{
			Field:      "price",
			MaxChange:  rapid.Float64Range(0.05, 5).Draw(t, "maxChange"),
			K:          rapid.Float64Range(0.5, 8).Draw(t, "k"),
			Window:     rapid.IntRange(1, 50).Draw(t, "window"),
			MinSpread:  rapid.Float64Range(0.001, 0.1).Draw(t, "minSpread"),
			MinSamples: 1,
		}
		centre := rapid.Float64Range(-0.2, 0.2).Draw(t, "centre")
		width := rapid.Float64Range(0, 0.3).Draw(t, "width")
		hist := rapid.SliceOfN(rapid.Float64Range(centre-width, centre+width), 1, 60).Draw(t, "history")
		stats := rule.NewStats()
		for _, x := range hist {
			stats.Observe(x)
		}
		from := rapid.Float64Range(0.01, 1e6).Draw(t, "from")
		if rapid.Bool().Draw(t, "negative") {
			from = -from
		}
		_, probe, err := rule.Judge(stats, priceChange(from, from*2))
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := probe.Low, probe.High
		if want := math.Log1p(rule.MaxChange); probe.Limit != want {
			t.Fatalf("Limit %v, want %v", probe.Limit, want)
		}
		// Inside, with a margin for the rounding of from·eᵐ.
		if lo < hi-2e-9 {
			m := rapid.Float64Range(lo+1e-9, hi-1e-9).Draw(t, "inside")
			to := from * math.Exp(m)
			if to == from {
				return
			}
			v, e, err := rule.Judge(stats, priceChange(from, to))
			if err != nil {
				t.Fatal(err)
			}
			if v.Outcome != resolve.Accept {
				t.Fatalf("m=%v in [%v, %v] held: %s (%+v)", m, lo, hi, v.Reason, e)
			}
		}
		// Outside.
		var m float64
		if rapid.Bool().Draw(t, "above") {
			m = hi + rapid.Float64Range(1e-6, 3).Draw(t, "beyond")
		} else {
			m = lo - rapid.Float64Range(1e-6, 3).Draw(t, "beyond")
		}
		to := from * math.Exp(m)
		v, e, err := rule.Judge(stats, priceChange(from, to))
		if err != nil {
			t.Fatal(err)
		}
		if v.Outcome != resolve.HoldChange || v.Rule != resolve.RuleAnomaly || v.Reason == "" {
			t.Fatalf("m=%v outside [%v, %v] accepted (%+v)", m, lo, hi, e)
		}
		// The same history in another order judges alike.
		shuffled := resolve.NewFieldStats(stats.Window())
		for _, x := range rapid.Permutation(stats.Values()).Draw(t, "perm") {
			shuffled.Observe(x)
		}
		v2, e2, _ := rule.Judge(shuffled, priceChange(from, to))
		if v2 != v || e2 != e {
			t.Fatalf("order-dependent verdict: %+v vs %+v", v, v2)
		}
	})
}

func TestFieldStatsUnmarshalRefuses(t *testing.T) {
	good := resolve.NewFieldStats(3)
	good.Observe(0.5)
	good.Observe(-0.25)
	enc, err := good.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, []byte{1, 0, 3, 0, 2, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0, 0xbf, 0xd0, 0, 0, 0, 0, 0, 0}, enc)

	withValue := func(v float64) []byte {
		b := slices.Clone(enc)
		bits := math.Float64bits(v)
		for i := range 8 {
			b[5+i] = byte(bits >> (56 - 8*i))
		}
		return b
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"short header":    enc[:4],
		"version 0":       append([]byte{0}, enc[1:]...),
		"version 2":       append([]byte{2}, enc[1:]...),
		"window 0":        {1, 0, 0, 0, 0},
		"window too big":  {1, 0x10, 0x01, 0, 0},
		"count > window":  {1, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"truncated value": enc[:len(enc)-1],
		"trailing byte":   append(slices.Clone(enc), 0),
		"hostile count":   {1, 0xff, 0xff, 0xff, 0xff},
		"NaN":             withValue(math.NaN()),
		"+Inf":            withValue(math.Inf(1)),
		"too large":       withValue(-1e4),
	} {
		s := resolve.NewFieldStats(7)
		s.Observe(1)
		err := s.UnmarshalBinary(b)
		require.ErrorIs(t, err, resolve.ErrBadFieldStats, name)
		assert.Equal(t, []float64{1}, s.Values(), "%s: unchanged on error", name)
		assert.Equal(t, 7, s.Window(), name)
	}
}

// FuzzFieldStatsUnmarshal: no input panics; what decodes encodes back to
// the same bytes and has consistent statistics.
func FuzzFieldStatsUnmarshal(f *testing.F) {
	for _, xs := range [][]float64{nil, {0}, {0.1, -0.2, 0.3}, {1500, -1500, 0}} {
		s := resolve.NewFieldStats(4)
		for _, x := range xs {
			s.Observe(x)
		}
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{1, 0, 1, 0, 1, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s resolve.FieldStats
		if err := s.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, resolve.ErrBadFieldStats) {
				t.Fatalf("error %v does not wrap ErrBadFieldStats", err)
			}
			return
		}
		out, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoded %x, read %x", out, b)
		}
		if s.Len() > s.Window() || math.IsNaN(s.Median()) || math.IsNaN(s.MAD()) || s.MAD() < 0 {
			t.Fatalf("inconsistent statistics: %d/%d %v %v", s.Len(), s.Window(), s.Median(), s.MAD())
		}
		s.Observe(0.1) // still usable
		rule := resolve.AnomalyRule{Field: "price", MaxChange: 1, MinSamples: 1}
		if _, _, err := rule.Judge(&s, priceChange(100, 1)); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzAnomalyJudge: any pair of float64s is judged without panic, held
// changes have a Reason, and the verdict agrees with the Evidence.
func FuzzAnomalyJudge(f *testing.F) {
	f.Add(100.0, 1.0, 0.5)
	f.Add(0.0, 1.0, 1.0)
	f.Add(-1.0, 1.0, 1.0)
	f.Add(math.MaxFloat64, math.SmallestNonzeroFloat64, 1.0)
	f.Add(math.NaN(), math.Inf(1), 1.0)
	stats := resolve.NewFieldStats(16)
	for _, d := range fiveShifts {
		stats.Observe(math.Log1p(d))
	}
	f.Fuzz(func(t *testing.T, from, to, maxChange float64) {
		rule := resolve.AnomalyRule{Field: "price", MaxChange: maxChange, MinSamples: 5}
		v, e, err := rule.Judge(stats, priceChange(from, to))
		if err != nil {
			if !errors.Is(err, resolve.ErrBadAnomalyRule) {
				t.Fatal(err)
			}
			return
		}
		if e.Held != (v.Outcome == resolve.HoldChange) || (e.Held && v.Reason == "") {
			t.Fatalf("verdict %+v disagrees with evidence %+v", v, e)
		}
		if e.Kind == resolve.Typical && (e.LogRatio < e.Low || e.LogRatio > e.High) {
			t.Fatalf("typical change outside its band: %+v", e)
		}
	})
}

// Judges may share statistics; Learn on other statistics runs beside them.
func TestAnomalyConcurrentJudges(t *testing.T) {
	rule := resolve.AnomalyRule{Field: "price", MaxChange: 1}
	shared := learnHistory(t, rule, fiveShifts, 2)
	want := make([]resolve.Verdict, 150)
	for i := range want {
		want[i], _ = judge(t, rule, shared, priceChange(100, 1+i))
	}
	require.Equal(t, resolve.HoldChange, want[0].Outcome)
	require.Equal(t, resolve.Accept, want[99].Outcome)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			own := rule.NewStats()
			for i := range 300 {
				v, _, err := rule.Judge(shared, priceChange(100, 1+i%150))
				if err != nil || v != want[i%150] {
					t.Errorf("goroutine %d: %d: %v %v", g, i, v, err)
					return
				}
				rule.Learn(own, priceChange(100, 101+i%3))
			}
		})
	}
	wg.Wait()
}

func TestAnomalyJudgeAllocs(t *testing.T) {
	rule := resolve.AnomalyRule{Field: "price", MaxChange: 1}
	stats := learnHistory(t, rule, fiveShifts, 4)
	for name, c := range map[string]resolve.Change{
		"typical":    priceChange(100, 103),
		"json":       priceChange(json.Number("100"), json.Number("103.5")),
		"not number": priceChange("a", "b"),
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if v, _, _ := rule.Judge(stats, c); v.Outcome != resolve.Accept {
				t.Fatal("held")
			}
		})
		assert.Zero(t, allocs, name)
	}
	full := resolve.NewFieldStats(64)
	for i := range 64 {
		full.Observe(float64(i) / 1000)
	}
	allocs := testing.AllocsPerRun(100, func() { full.Observe(0.01) })
	assert.Zero(t, allocs, "Observe on full statistics")
}

func BenchmarkAnomalyJudge(b *testing.B) {
	rule := resolve.AnomalyRule{Field: "price", MaxChange: 1}
	stats := learnHistory(b, rule, fiveShifts, 7)
	for _, bc := range []struct {
		name string
		c    resolve.Change
	}{
		{"accept", priceChange(100, 103)},
		{"hold", priceChange(100, 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = rule.Judge(stats, bc.c)
			}
		})
	}
}

func BenchmarkFieldStatsObserve(b *testing.B) {
	s := resolve.NewFieldStats(resolve.DefaultAnomalyWindow)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Observe(float64(i%97) / 1000)
		i++
	}
}
