package patterns

import (
	"context"
	"math"
	"time"

	"github.com/concordsync/concord"
)

// Directions of an [Observation].
const (
	Read  = "read"
	Write = "write"
)

// Names of the attributes derived from an [Observation]. Host attributes
// may not use them.
const (
	AttrSystem    = "system"
	AttrDirection = "direction"
	AttrField     = "field"
	AttrHour      = "hour"
	AttrDay       = "day"
	AttrWeekday   = "weekday"
	// AttrErrorClass is reserved: the error class is reported with each
	// pattern but is not an item (see the package documentation).
	AttrErrorClass = "error_class"
)

// Observation is one attempt to read from or write to a system, and
// whether it failed.
type Observation struct {
	// Time of the attempt; the zero time gives no time items.
	Time time.Time
	// System read or written.
	System concord.SystemID
	// Direction is [Read], [Write] or empty.
	Direction string
	// Fields the attempt touched (a write's fields). Each distinct
	// non-empty field is an item field=name.
	Fields []string
	// ErrorClass of a failure ("transient", "permanent", ...); ignored
	// when Failed is false.
	ErrorClass string
	// Failed reports a failure.
	Failed bool
	// Attrs are attributes the host names (region=EU, tier=gold): each
	// non-empty value is an item. A name may not be empty nor one of the
	// Attr constants.
	Attrs map[string]string
}

// Item is one attribute=value pair.
type Item struct {
	Attr, Value string
}

// String gives attr=value.
func (it Item) String() string { return it.Attr + "=" + it.Value }

// ClassCount is how many failures of a pattern have one error class.
type ClassCount struct {
	// Class is the error class; empty for failures without one.
	Class    string
	Failures int
}

// Pattern is a combination of attribute values under which attempts fail
// unusually often: a hypothesis about a cause.
type Pattern struct {
	// Items, at most one per attribute, in a fixed order: system,
	// direction, field, hour, day, weekday, then host attributes by name.
	Items []Item
	// Failures and Total count the observations the items cover, failed
	// and all.
	Failures, Total int
	// Rate is Failures/Total; BaseRate the failure rate of all
	// observations; Lift is Rate/BaseRate.
	Rate, BaseRate, Lift float64
	// Share is Failures over all failures.
	Share float64
	// Score ranks patterns: the Wilson lower bound of Rate over BaseRate.
	Score float64
	// ErrorClasses divides Failures by error class, most frequent first
	// (then by name).
	ErrorClasses []ClassCount
	// Text says it in words.
	Text string
}

// Options tune [Find]. A zero field takes its default.
type Options struct {
	// MaxItems is the most items in a pattern, 1 to 6; default 3. A cause
	// with more attributes than MaxItems shows as its strongest subset.
	MaxItems int
	// MinFailures is the least number of failures a pattern covers;
	// default 5.
	MinFailures int
	// MinShare is the least share of all failures a pattern covers, in
	// (0, 1]; default 0.05.
	MinShare float64
	// MinLift is the least score (Wilson lower bound of the rate over the
	// base rate) of a pattern, at least 1; default 2.
	MinLift float64
	// Margin is how many times the rate of a pattern (its Wilson lower
	// bound) must exceed that of the observations each of its subsets adds
	// (their Wilson upper bound), at least 1; default 1.1.
	Margin float64
	// Z is the z-score of the Wilson intervals, positive; default 1.96
	// (95%).
	Z float64
	// Limit is the most patterns returned; default 10.
	Limit int
	// Location gives hours, days and weekdays; default UTC.
	Location *time.Location
}

// Defaults of [Options].
const (
	DefaultMaxItems    = 3
	DefaultMinFailures = 5
	DefaultMinShare    = 0.05
	DefaultMinLift     = 2
	DefaultMargin      = 1.1
	DefaultZ           = 1.96
	DefaultLimit       = 10
	// MaxItemsLimit is the largest MaxItems.
	MaxItemsLimit = 6
)

// withDefaults checks o and fills its zero fields.
func (o Options) withDefaults() (Options, error) {
	bad := func(field, reason string) (Options, error) {
		return o, &OptionsError{Field: field, Reason: reason}
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case o.MaxItems < 0 || o.MaxItems > MaxItemsLimit:
		return bad("MaxItems", "must be 1 to 6 (or 0 for 3)")
	case o.MinFailures < 0:
		return bad("MinFailures", "must not be negative")
	case !finite(o.MinShare) || o.MinShare < 0 || o.MinShare > 1:
		return bad("MinShare", "must be in (0, 1] (or 0 for 0.05)")
	case !finite(o.MinLift) || o.MinLift < 0 || (o.MinLift > 0 && o.MinLift < 1):
		return bad("MinLift", "must be at least 1 (or 0 for 2)")
	case !finite(o.Margin) || o.Margin < 0 || (o.Margin > 0 && o.Margin < 1):
		return bad("Margin", "must be at least 1 (or 0 for 1.1)")
	case !finite(o.Z) || o.Z < 0:
		return bad("Z", "must be positive (or 0 for 1.96)")
	case o.Limit < 0:
		return bad("Limit", "must not be negative")
	}
	if o.MaxItems == 0 {
		o.MaxItems = DefaultMaxItems
	}
	if o.MinFailures == 0 {
		o.MinFailures = DefaultMinFailures
	}
	if o.MinShare == 0 {
		o.MinShare = DefaultMinShare
	}
	if o.MinLift == 0 {
		o.MinLift = DefaultMinLift
	}
	if o.Margin == 0 {
		o.Margin = DefaultMargin
	}
	if o.Z == 0 {
		o.Z = DefaultZ
	}
	if o.Limit == 0 {
		o.Limit = DefaultLimit
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	return o, nil
}

// Find returns the failure patterns of obs, best first (see the package
// documentation for the statistics), at most Options.Limit of them. No
// pattern stands out in a log without failures, or where everything
// fails: Find returns none. It returns an error matching [ErrBadOptions]
// or [ErrBadObservation] for bad input, or ctx's error if ctx ends first.
// It does not modify obs.
func Find(ctx context.Context, obs []Observation, opts Options) ([]Pattern, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := newMiner(obs, o)
	if err != nil {
		return nil, err
	}
	if m.failures == 0 || m.failures == m.n {
		return nil, nil
	}
	if err := m.mine(ctx); err != nil {
		return nil, err
	}
	return m.select_(ctx)
}
