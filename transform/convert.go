package transform

import (
	"fmt"
	"time"

	"github.com/concordsync/concord"
)

// BoolString converts between a system that writes booleans as two fixed
// strings (t for true, f for false: "yes"/"no", "Y"/"N") and a canonical
// bool. Strings are matched exactly; any other string fails with
// [ErrBadValue], any other type with [ErrWrongType]. nil stays nil. It
// panics if t == f.
func BoolString(t, f string) Converter {
	if t == f {
		panic(fmt.Sprintf("transform.BoolString: true and false are both %q", t))
	}
	tv, fv := concord.Value(t), concord.Value(f) // boxed once, not per value
	return Converter{
		In: func(v concord.Value) (concord.Value, error) {
			switch s, ok := v.(string); {
			case v == nil:
				return nil, nil
			case !ok:
				return nil, fmt.Errorf("%w: want string, got %T", ErrWrongType, v)
			case s == t:
				return true, nil
			case s == f:
				return false, nil
			}
			return nil, fmt.Errorf("%w: want %q or %q", ErrBadValue, t, f)
		},
		Out: func(v concord.Value) (concord.Value, error) {
			switch b, ok := v.(bool); {
			case v == nil:
				return nil, nil
			case !ok:
				return nil, fmt.Errorf("%w: want bool, got %T", ErrWrongType, v)
			case b:
				return tv, nil
			}
			return fv, nil
		},
	}
}

// TimeString converts between a system that writes times as strings in
// layout (see [time.Layout]; [time.DateOnly] for dates), in location loc,
// and a canonical [time.Time]. Inbound, strings without a zone are read in
// loc; outbound, times are written in loc. A nil loc means UTC. A string
// that does not parse fails with [ErrBadValue] (wrapping the parse error),
// any other type with [ErrWrongType]. nil stays nil.
//
// Round trips are exact only when layout keeps everything the canonical
// time holds: a date layout drops the time of day.
func TimeString(layout string, loc *time.Location) Converter {
	if loc == nil {
		loc = time.UTC
	}
	return Converter{
		In: func(v concord.Value) (concord.Value, error) {
			s, ok := v.(string)
			if v == nil {
				return nil, nil
			}
			if !ok {
				return nil, fmt.Errorf("%w: want string, got %T", ErrWrongType, v)
			}
			tm, err := time.ParseInLocation(layout, s, loc)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrBadValue, err)
			}
			return tm, nil
		},
		Out: func(v concord.Value) (concord.Value, error) {
			tm, ok := v.(time.Time)
			if v == nil {
				return nil, nil
			}
			if !ok {
				return nil, fmt.Errorf("%w: want time.Time, got %T", ErrWrongType, v)
			}
			return tm.In(loc).Format(layout), nil
		},
	}
}
