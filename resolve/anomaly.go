package resolve

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/concordsync/concord"
)

// RuleAnomaly is the Rule of the Verdicts an [AnomalyRule] holds.
const RuleAnomaly Rule = "anomaly"

// Defaults of an [AnomalyRule]'s settings left at zero, and the largest
// window.
const (
	DefaultAnomalyK          = 5
	DefaultAnomalyWindow     = 64
	DefaultAnomalyMinSamples = 10
	DefaultAnomalyMinSpread  = 0.01
	// MaxAnomalyWindow is the largest Window, and the most changes a
	// [FieldStats] keeps or decodes.
	MaxAnomalyWindow = 4096
)

// madScale turns a median absolute deviation into a consistent estimate of
// the standard deviation of normally distributed data: 1/Φ⁻¹(3/4).
const madScale = 1.4826

// maxLogRatio bounds |ln(|to|/|from|)| for finite non-zero float64s
// (ln of the largest float64 is about 709.8, of the smallest subnormal about
// −744.4): [FieldStats.Observe] ignores, and decoding refuses, anything past
// it, so that sums and differences of statistics stay finite.
const maxLogRatio = 1500

// ErrBadAnomalyRule is returned (wrapped in an [*AnomalyRuleError]) for an
// [AnomalyRule] with an impossible setting.
var ErrBadAnomalyRule = errors.New("invalid anomaly rule")

// ErrBadFieldStats is returned (wrapped, with the reason) by
// [FieldStats.UnmarshalBinary] for bytes that are not an encoding it wrote.
var ErrBadFieldStats = errors.New("invalid field statistics encoding")

// AnomalyRuleError reports an invalid setting of an [AnomalyRule].
type AnomalyRuleError struct {
	Field   string // the rule's Field
	Setting string // "MaxChange", "K", ...
	Reason  string
	Err     error // ErrBadAnomalyRule
}

// Error names the rule, the setting and why it is refused.
func (e *AnomalyRuleError) Error() string {
	return fmt.Sprintf("%s for field %q: %s %s", e.Err, e.Field, e.Setting, e.Reason)
}

// Unwrap returns ErrBadAnomalyRule.
func (e *AnomalyRuleError) Unwrap() error { return e.Err }

// AnomalyRule holds a change of a numeric field whose size is an outlier:
// larger than a fixed limit, or far from the field's recent changes by
// robust statistics (median and MAD). It is a pure function of the rule,
// the [FieldStats] of the field and the [Change]: see [AnomalyRule.Judge]
// and [AnomalyRule.Learn].
//
// # Measure
//
// A change from a to b of the field is measured by its log-ratio
//
//	m = ln|b| − ln|a|
//
// when a and b are finite, non-zero, of the same sign and not equal. The
// log-ratio is symmetric (halving and doubling are equally large, −ln 2 and
// +ln 2, where the relative change says −50% and +100%), additive over
// successive changes, and unbounded in both directions (a fall to a
// hundredth is as large as a rise to a hundredfold; a relative change
// cannot fall below −100%, so its statistics squash every large fall
// together). For small changes it is close to the relative change:
// m ≈ (b − a)/|a|. Reasons show changes as relative percentages,
// 100·(b − a)/|a|, and statistics of m as 100·(eˣ − 1).
//
// # Decision
//
// With n the number of changes in the field's statistics, med their median
// and MAD their median absolute deviation, and
//
//	σ = max(1.4826·MAD, MinSpread)
//
// a measured change is held (Verdict HoldChange, Rule [RuleAnomaly]) if
//
//	|m| > ln(1 + MaxChange)                  (the fixed limit), or
//	n ≥ MinSamples and |m − med| > K·σ       (an outlier),
//
// and accepted otherwise. The fixed limit always applies; the statistics
// apply once there are MinSamples changes. MaxChange 0.5 thus holds a rise
// of more than 50% and a fall to less than 1/1.5 of the value (−33.3%).
// The floor MinSpread keeps a field whose changes are all alike (MAD 0)
// from holding every slightly different one.
//
// Other changes:
//
//   - to or from zero, and between a positive and a negative value, are held
//     (the ratio is unbounded), unless AllowZero or AllowSignChange accepts
//     them; they are never learned;
//   - to a number that is not finite (NaN, ±Inf, or a [json.Number] beyond
//     the float64 range) are held: concord never makes such values, so one
//     reaching a gate is suspicious;
//   - from a value that is not finite, to a finite one, are accepted (a
//     repair) and not learned;
//   - from or to a value that is not a number (nil, absent, a bool, a
//     string unless ParseStrings, a map...), a delete, a [RecordUnit]
//     change, a change whose Fields do not include Field, and a change that
//     leaves the field's number equal, are not judged: accepted.
//
// Numbers are the integer and floating-point kinds of [concord.Value] and
// [json.Number], converted to the nearest float64 (a json.Number beyond
// its range is ±Inf, so not finite; one below its smallest subnormal is
// zero), and with ParseStrings strings written as JSON numbers ("19.99";
// not " 19.99", "1,5" nor "1e").
//
// # Statistics and several rules
//
// The statistics are a [FieldStats] per judged field, fed by
// [AnomalyRule.Learn] with every change of the field that became
// canonical; the host (the engine) keeps them, as the bytes of
// [FieldStats.MarshalBinary], and passes them to Judge. A unit may be
// judged by several rules, one per field (a group of amount and discount):
// as with several gates, the first rule that holds decides.
//
// # Determinism
//
// The verdict depends only on the rule, the multiset of changes in the
// statistics (not their order: medians are taken over sorted copies) and
// the change. Floating-point results are those of Go's math package, the
// same in every run; on different architectures a change lying within one
// rounding of a limit may be judged differently.
type AnomalyRule struct {
	// Field is the name of the numeric field judged. A field group unit
	// may hold several fields; the rule judges this one.
	Field string
	// MaxChange is the fixed limit, as a relative rise: a change that
	// multiplies the value by more than 1+MaxChange, or divides it by
	// more than 1+MaxChange, is always held. It must be positive;
	// math.Inf(1) disables the fixed limit.
	MaxChange float64
	// K is how many σ (scaled MADs, see above) from the median of the
	// field's recent changes an outlier lies. Zero means
	// [DefaultAnomalyK]; math.Inf(1) disables the statistics.
	K float64
	// Window is how many recent changes the statistics keep, at most
	// [MaxAnomalyWindow]. Zero means [DefaultAnomalyWindow].
	Window int
	// MinSamples is how many changes the statistics need before outliers
	// are held; below it only the fixed limit applies. It may not exceed
	// Window. Zero means [DefaultAnomalyMinSamples] (or Window, if
	// smaller).
	MinSamples int
	// MinSpread is the least σ, in log-ratio units (0.01 ≈ 1%). Zero
	// means [DefaultAnomalyMinSpread].
	MinSpread float64
	// AllowZero accepts changes to and from zero instead of holding them
	// (for quantities such as stock that often reach zero).
	AllowZero bool
	// AllowSignChange accepts changes between a positive and a negative
	// value instead of holding them (for balances).
	AllowSignChange bool
	// ParseStrings judges strings written as JSON numbers as numbers
	// (for systems that hand decimals over as text).
	ParseStrings bool
}

// settings are the effective settings of a rule.
type anomalySettings struct {
	limit      float64 // ln(1+MaxChange)
	k          float64
	window     int
	minSamples int
	minSpread  float64
}

// Validate reports an [*AnomalyRuleError] wrapping [ErrBadAnomalyRule] for
// an empty Field, a MaxChange that is not positive, a negative or NaN K or
// MinSpread, a Window outside 0 to [MaxAnomalyWindow], or a MinSamples that
// is negative or above the window.
func (r AnomalyRule) Validate() error {
	_, err := r.settings()
	return err
}

func (r AnomalyRule) settings() (anomalySettings, error) {
	bad := func(setting, reason string) (anomalySettings, error) {
		return anomalySettings{}, &AnomalyRuleError{Field: r.Field, Setting: setting, Reason: reason, Err: ErrBadAnomalyRule}
	}
	s := anomalySettings{k: r.K, window: r.Window, minSamples: r.MinSamples, minSpread: r.MinSpread}
	switch {
	case r.Field == "":
		return bad("Field", "is empty")
	case !(r.MaxChange > 0): // also NaN
		return bad("MaxChange", fmt.Sprintf("is %v; it must be positive (math.Inf(1): no fixed limit)", r.MaxChange))
	case !(r.K >= 0):
		return bad("K", fmt.Sprintf("is %v; it must be zero (default %d) or positive", r.K, DefaultAnomalyK))
	case r.Window < 0 || r.Window > MaxAnomalyWindow:
		return bad("Window", fmt.Sprintf("is %d; it must be between 0 (default %d) and %d", r.Window, DefaultAnomalyWindow, MaxAnomalyWindow))
	case !(r.MinSpread >= 0) || math.IsInf(r.MinSpread, 1):
		return bad("MinSpread", fmt.Sprintf("is %v; it must be zero (default %v) or positive and finite", r.MinSpread, DefaultAnomalyMinSpread))
	}
	s.limit = math.Log1p(r.MaxChange)
	if s.k == 0 {
		s.k = DefaultAnomalyK
	}
	if s.window == 0 {
		s.window = DefaultAnomalyWindow
	}
	if s.minSpread == 0 {
		s.minSpread = DefaultAnomalyMinSpread
	}
	switch {
	case r.MinSamples < 0 || r.MinSamples > s.window:
		return bad("MinSamples", fmt.Sprintf("is %d; it must be between 0 (default %d) and the window, %d", r.MinSamples, DefaultAnomalyMinSamples, s.window))
	case r.MinSamples == 0:
		s.minSamples = min(DefaultAnomalyMinSamples, s.window)
	}
	return s, nil
}

// NewStats returns empty statistics with the rule's window.
func (r AnomalyRule) NewStats() *FieldStats {
	s, err := r.settings()
	if err != nil {
		return NewFieldStats(DefaultAnomalyWindow)
	}
	return NewFieldStats(s.window)
}

// AnomalyKind says how an [AnomalyRule] judged a change.
type AnomalyKind int8

// The kinds of [Evidence].
const (
	// NotJudged: not a change from a number to another number of the
	// field (see [AnomalyRule]); accepted.
	NotJudged AnomalyKind = iota
	// Typical: measured and within the limits; accepted.
	Typical
	// Anomalous: measured and beyond the fixed limit, or an outlier
	// (Evidence.BeyondLimit, Evidence.Outlier); held.
	Anomalous
	// ZeroChange: to or from zero; held unless AllowZero.
	ZeroChange
	// SignChange: between a positive and a negative value; held unless
	// AllowSignChange.
	SignChange
	// NonFinite: to NaN, ±Inf or a number beyond the float64 range; held.
	NonFinite
	// Repair: from a value that is not finite to a finite number;
	// accepted.
	Repair
)

// String names the kind.
func (k AnomalyKind) String() string {
	switch k {
	case NotJudged:
		return "not-judged"
	case Typical:
		return "typical"
	case Anomalous:
		return "anomalous"
	case ZeroChange:
		return "zero"
	case SignChange:
		return "sign-change"
	case NonFinite:
		return "non-finite"
	case Repair:
		return "repair"
	}
	return "anomaly-kind?"
}

// Evidence is what an [AnomalyRule] saw of one change, for the audit trail
// and for people. Statistics are in log-ratio units (see [AnomalyRule]).
type Evidence struct {
	Field string
	Kind  AnomalyKind
	// Held reports that the rule holds the change.
	Held bool
	// From and To are the field's numbers (meaningful unless NotJudged).
	From, To float64
	// Change is the relative change (To − From)/|From| (±Inf from zero).
	Change float64
	// LogRatio is m = ln|To| − ln|From|, for Typical and Anomalous.
	LogRatio float64
	// BeyondLimit reports |m| > ln(1+MaxChange); Outlier reports
	// |m − Median| > K·Spread with Samples ≥ MinSamples.
	BeyondLimit, Outlier bool
	// Samples is how many changes the statistics held; Median, MAD and
	// Spread (σ) are theirs (zero without samples).
	Samples             int
	Median, MAD, Spread float64
	// Warm reports Samples ≥ MinSamples: the statistics applied.
	Warm bool
	// Limit is ln(1+MaxChange); Low and High bound the m accepted:
	// [−Limit, Limit], narrowed to [Median − K·Spread, Median + K·Spread]
	// when Warm.
	Limit, Low, High float64
}

// Judge judges the change c of the rule's Field against stats, the
// statistics of the field's recent changes (nil: none yet): see
// [AnomalyRule] for the decision. A held change gets Verdict HoldChange with
// Rule [RuleAnomaly] and a Reason with the evidence, such as
//
//	price 100 → 140: +40%, typical ±4.5% (median −0.01%, MAD 3% over 40 changes), outside −20% to +25%
//
// other changes Accept with an empty Verdict. Judge does not modify stats
// or c, and allocates only to write a Reason: several goroutines may judge
// against the same stats while none calls Observe or Learn. An invalid rule
// gives an error ([*UnitError] wrapping [*AnomalyRuleError]).
func (r AnomalyRule) Judge(stats *FieldStats, c Change) (Verdict, Evidence, error) {
	s, err := r.settings()
	if err != nil {
		return Verdict{}, Evidence{}, unitError(c.Key, c.Unit, c.System, err)
	}
	e := r.measure(s, stats, c)
	if !e.Held {
		return Verdict{Outcome: Accept}, e, nil
	}
	return Verdict{Outcome: HoldChange, Rule: RuleAnomaly, Reason: e.reason(c.From[r.Field], c.To[r.Field])}, e, nil
}

// Learn records the change c in stats, if the rule can measure it (Kind
// Typical or Anomalous in its Evidence), and reports whether it did. The
// engine calls it for every change of the field that became canonical:
// accepted changes, and held ones once a person approved them; never for
// refused or rejected ones. A stats with another window than the rule's is
// resized to the rule's first, keeping the most recent changes. An invalid
// rule, or nil stats, learns nothing.
func (r AnomalyRule) Learn(stats *FieldStats, c Change) bool {
	s, err := r.settings()
	if err != nil || stats == nil {
		return false
	}
	e := r.measure(s, nil, c)
	if e.Kind != Typical && e.Kind != Anomalous {
		return false
	}
	if stats.Window() != s.window {
		stats.SetWindow(s.window)
	}
	return stats.Observe(e.LogRatio)
}

// measure fills the Evidence of c; stats may be nil.
func (r AnomalyRule) measure(s anomalySettings, stats *FieldStats, c Change) Evidence {
	e := Evidence{Field: r.Field, Limit: s.limit}
	if c.Deleted || c.Unit == RecordUnit || !slices.Contains(c.Fields, r.Field) {
		return e
	}
	from, ok := r.number(c.From[r.Field])
	if !ok {
		return e
	}
	to, ok := r.number(c.To[r.Field])
	if !ok || from == to {
		return e
	}
	e.From, e.To = from, to
	e.Change = (to - from) / math.Abs(from)
	switch {
	case math.IsNaN(to) || math.IsInf(to, 0):
		e.Kind, e.Held = NonFinite, true
		return e
	case math.IsNaN(from) || math.IsInf(from, 0):
		e.Kind = Repair
		return e
	case from == 0 || to == 0:
		e.Kind, e.Held = ZeroChange, !r.AllowZero
		return e
	case (from < 0) != (to < 0):
		e.Kind, e.Held = SignChange, !r.AllowSignChange
		return e
	}
	m := math.Log(math.Abs(to)) - math.Log(math.Abs(from))
	e.LogRatio = m
	e.Kind = Typical
	e.Low, e.High = -s.limit, s.limit
	e.BeyondLimit = math.Abs(m) > s.limit
	if stats != nil && stats.Len() > 0 {
		e.Samples = stats.Len()
		e.Median, e.MAD = stats.Median(), stats.MAD()
		e.Spread = max(madScale*e.MAD, s.minSpread)
		e.Warm = e.Samples >= s.minSamples
		if e.Warm {
			band := s.k * e.Spread
			e.Outlier = math.Abs(m-e.Median) > band
			e.Low, e.High = max(e.Low, e.Median-band), min(e.High, e.Median+band)
		}
	}
	if e.BeyondLimit || e.Outlier {
		e.Kind, e.Held = Anomalous, true
	}
	return e
}

// number returns v as a float64, if it is a number (see [AnomalyRule]).
func (r AnomalyRule) number(v concord.Value) (float64, bool) {
	if f, ok := concord.Float(v); ok {
		return f, true
	}
	switch x := v.(type) {
	case json.Number:
		return parseJSONNumber(string(x))
	case string:
		if r.ParseStrings {
			return parseJSONNumber(x)
		}
	}
	return 0, false
}

// parseJSONNumber parses s if it is a JSON number literal
// (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?); beyond the float64
// range it is ±Inf, and the result is still a number.
func parseJSONNumber(s string) (float64, bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return 0, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false // unreachable for the grammar above
	}
	return f, true // out of range: ±Inf, or ±0 for underflow
}

// reason writes the evidence of a held change for people.
func (e *Evidence) reason(from, to concord.Value) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v → %v", e.Field, from, to)
	switch e.Kind {
	case NonFinite:
		b.WriteString(": not a finite number")
		return b.String()
	case ZeroChange:
		if e.To == 0 {
			b.WriteString(": −100%, a change to zero")
		} else {
			b.WriteString(": a change from zero")
		}
		return b.String()
	}
	b.WriteString(": ")
	b.WriteString(percent(e.Change, true))
	if e.Kind == SignChange {
		b.WriteString(", a change of sign")
		return b.String()
	}
	if e.BeyondLimit {
		fmt.Fprintf(&b, ", beyond the limit %s to %s", percent(math.Expm1(-e.Limit), true), percent(math.Expm1(e.Limit), true))
	}
	if e.Warm {
		if e.BeyondLimit {
			b.WriteString(";")
		} else {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " typical ±%s (median %s, MAD %s over %d changes)",
			percent(math.Expm1(e.Spread), false), percent(math.Expm1(e.Median), true), percent(math.Expm1(e.MAD), false), e.Samples)
		if e.Outlier {
			fmt.Fprintf(&b, ", outside %s to %s", percent(math.Expm1(e.Low), true), percent(math.Expm1(e.High), true))
		}
	}
	return b.String()
}

// percent writes the fraction f as a percentage: two decimals below 1%,
// one below 10%, whole percents above, two significant digits from a
// million percent; trailing zeros dropped. Negatives get "−", positives
// "+" if signed.
func percent(f float64, signed bool) string {
	p := 100 * f
	if math.IsInf(p, 0) || math.IsNaN(p) {
		return strconv.FormatFloat(p, 'g', -1, 64) + "%"
	}
	prec := 0
	switch a := math.Abs(p); {
	case a < 1:
		prec = 2
	case a < 10:
		prec = 1
	}
	s := strconv.FormatFloat(math.Abs(p), 'f', prec, 64)
	if math.Abs(p) >= 1e6 {
		s = strconv.FormatFloat(math.Abs(p), 'g', 2, 64)
	} else if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	switch {
	case s == "0":
	case p < 0:
		s = "−" + s
	case signed:
		s = "+" + s
	}
	return s + "%"
}

// FieldStats holds the most recent changes of one field, as log-ratios
// (see [AnomalyRule]): a ring of at most Window values, oldest first, with
// their median and median absolute deviation kept up to date by Observe.
// The zero value is empty, with [DefaultAnomalyWindow].
//
// Observe, SetWindow and UnmarshalBinary modify it; the other methods only
// read it, and may run concurrently with each other.
type FieldStats struct {
	window int       // 0: DefaultAnomalyWindow
	ring   []float64 // in arrival order from start, wrapping
	start  int       // index of the oldest value once the ring is full
	sorted []float64 // the ring's values, ascending
	dev    []float64 // scratch for the MAD
	median float64
	mad    float64
}

// NewFieldStats returns empty statistics keeping the window most recent
// changes. It panics if window is not between 1 and [MaxAnomalyWindow].
func NewFieldStats(window int) *FieldStats {
	if window < 1 || window > MaxAnomalyWindow {
		panic(fmt.Sprintf("resolve.NewFieldStats: window %d is not between 1 and %d", window, MaxAnomalyWindow))
	}
	return &FieldStats{window: window}
}

// Window is the most changes s keeps.
func (s *FieldStats) Window() int {
	if s.window == 0 {
		return DefaultAnomalyWindow
	}
	return s.window
}

// Len is how many changes s holds.
func (s *FieldStats) Len() int { return len(s.ring) }

// Median is the median of the changes (the mean of the middle two for an
// even count), 0 if there are none.
func (s *FieldStats) Median() float64 { return s.median }

// MAD is the median absolute deviation of the changes from their median,
// 0 if there are none.
func (s *FieldStats) MAD() float64 { return s.mad }

// Values returns a copy of the changes, oldest first.
func (s *FieldStats) Values() []float64 {
	out := make([]float64, 0, len(s.ring))
	out = append(out, s.ring[s.start:]...)
	return append(out, s.ring[:s.start]...)
}

// Observe adds the change r (a log-ratio, Evidence.LogRatio), dropping the
// oldest if s is full, and reports whether it did: a NaN, an infinity or a
// value beyond any log-ratio of two float64s (|r| > 1500) is ignored.
// Hosts normally call [AnomalyRule.Learn], which measures a Change and
// calls Observe. It allocates only while s grows to its window.
func (s *FieldStats) Observe(r float64) bool {
	if !(math.Abs(r) <= maxLogRatio) {
		return false
	}
	if len(s.ring) < s.Window() {
		s.ring = append(s.ring, r)
	} else {
		old := s.ring[s.start]
		s.ring[s.start] = r
		s.start = (s.start + 1) % len(s.ring)
		i, _ := slices.BinarySearch(s.sorted, old)
		s.sorted = slices.Delete(s.sorted, i, i+1)
	}
	i, _ := slices.BinarySearch(s.sorted, r)
	s.sorted = slices.Insert(s.sorted, i, r)
	s.update()
	return true
}

// SetWindow changes the window, dropping the oldest changes that no longer
// fit. It panics if window is not between 1 and [MaxAnomalyWindow].
func (s *FieldStats) SetWindow(window int) {
	if window < 1 || window > MaxAnomalyWindow {
		panic(fmt.Sprintf("resolve.FieldStats.SetWindow: window %d is not between 1 and %d", window, MaxAnomalyWindow))
	}
	vals := s.Values()
	if len(vals) > window {
		vals = vals[len(vals)-window:]
	}
	s.reset(window, vals)
}

// reset makes s hold vals, oldest first, in a window.
func (s *FieldStats) reset(window int, vals []float64) {
	*s = FieldStats{window: window, ring: vals}
	s.sorted = slices.Clone(vals)
	slices.Sort(s.sorted)
	s.update()
}

// update recomputes the median and MAD from s.sorted.
func (s *FieldStats) update() {
	n := len(s.sorted)
	if n == 0 {
		s.median, s.mad = 0, 0
		return
	}
	s.median = middle(s.sorted)
	s.dev = s.dev[:0]
	for _, x := range s.sorted {
		s.dev = append(s.dev, math.Abs(x-s.median))
	}
	slices.Sort(s.dev)
	s.mad = middle(s.dev)
}

// middle is the median of the sorted, non-empty xs.
func middle(xs []float64) float64 {
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return xs[n/2-1]/2 + xs[n/2]/2
}

// fieldStatsVersion is the first byte of the encoding.
const fieldStatsVersion = 1

// fieldStatsHeader is the length of the encoding before the values.
const fieldStatsHeader = 5

// MarshalBinary encodes s: a version byte (1), the window and the count as
// big-endian uint16s, then each change, oldest first, as the big-endian
// IEEE 754 bits of a float64. The encoding of given statistics is unique.
func (s *FieldStats) MarshalBinary() ([]byte, error) {
	b := make([]byte, fieldStatsHeader, fieldStatsHeader+8*len(s.ring))
	b[0] = fieldStatsVersion
	binary.BigEndian.PutUint16(b[1:], uint16(s.Window()))
	binary.BigEndian.PutUint16(b[3:], uint16(len(s.ring)))
	for _, v := range s.Values() {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b, nil
}

// UnmarshalBinary replaces s with the statistics encoded in b by
// [FieldStats.MarshalBinary]. It refuses, with an error wrapping
// [ErrBadFieldStats] and s unchanged, an unknown version, a window outside
// 1 to [MaxAnomalyWindow], a count above the window, a length that is not
// the count's, and a change that Observe would ignore. It allocates no
// more than the length of b calls for.
func (s *FieldStats) UnmarshalBinary(b []byte) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadFieldStats, fmt.Sprintf(format, args...))
	}
	if len(b) < fieldStatsHeader {
		return bad("%d bytes, shorter than the %d-byte header", len(b), fieldStatsHeader)
	}
	if b[0] != fieldStatsVersion {
		return bad("unknown version %d", b[0])
	}
	window := int(binary.BigEndian.Uint16(b[1:]))
	n := int(binary.BigEndian.Uint16(b[3:]))
	switch {
	case window < 1 || window > MaxAnomalyWindow:
		return bad("window %d is not between 1 and %d", window, MaxAnomalyWindow)
	case n > window:
		return bad("%d changes in a window of %d", n, window)
	case len(b) != fieldStatsHeader+8*n:
		return bad("%d bytes for %d changes; want %d", len(b), n, fieldStatsHeader+8*n)
	}
	vals := make([]float64, n)
	for i := range vals {
		v := math.Float64frombits(binary.BigEndian.Uint64(b[fieldStatsHeader+8*i:]))
		if !(math.Abs(v) <= maxLogRatio) {
			return bad("change %d is %v, not a log-ratio", i, v)
		}
		vals[i] = v
	}
	s.reset(window, vals)
	return nil
}
