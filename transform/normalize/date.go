package normalize

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// Date returns a Normalizer that rewrites date (or time) strings from
// layout from to layout to, both in the notation of [time.Layout]: with
// Date("01/02/2006", time.DateOnly), "03/04/2025" (March 4th) is
// "2025-03-04". A string that matches neither from nor, already normal,
// to fails with [ErrBadDate]: the layout is never guessed. A [time.Time]
// value is formatted with to. Times without a zone in from are read as UTC.
// A time whose zone offset is not a whole number of minutes (local mean
// time before the 20th century) is written in UTC when to has a numeric
// offset, so that the instant is kept; a time that to cannot write so that
// it reads back (a year past 9999) fails with [ErrBadDate].
//
// Strings already in the to layout are returned as they are, so that the
// Normalizer is idempotent, unless they also match from: where a string
// can be read in both layouts (from "01/02/2006" and to "02/01/2006"), it
// is always read as from, and the Normalizer is a conversion that must
// run once, not a normaliser. For the two directions of a
// [transform.Converter], use Date(a, b) and Date(b, a).
//
// It panics if from or to is empty.
func Date(from, to string) Normalizer {
	if from == "" || to == "" {
		panic("normalize.Date: empty layout")
	}
	return dateNormalizer(to, func(s string) (time.Time, error) {
		t, err := time.Parse(from, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: does not match layout %q", ErrBadDate, from)
		}
		return t, nil
	})
}

// isoLayouts are the forms [DateAuto] reads: ISO 8601 calendar dates and
// RFC 3339 times (with a zone).
var isoLayouts = []string{time.DateOnly, time.RFC3339Nano}

// numericDate matches dates written as three numbers with separators
// ("03/04/2025", "4.3.25", "2025/03/04"), whose field order is a
// convention of the writer.
var numericDate = regexp.MustCompile(`^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}$`)

// DateAuto returns a Normalizer that rewrites date strings in layout to
// without a declared input layout, accepting only forms whose reading is
// certain: ISO 8601 calendar dates ("2025-03-04") and RFC 3339 times
// ("2025-03-04T10:00:00+01:00"), besides strings already in layout to. A
// date of three numbers in any other order or notation ("03/04/2025",
// "4.3.2025", even "13/04/2025") fails with [ErrAmbiguousDate]: which
// number is the day is the writer's convention, so declare it with
// [Date]. Anything else fails with [ErrBadDate]. A [time.Time] value is
// formatted with to. It panics if to is empty.
func DateAuto(to string) Normalizer {
	if to == "" {
		panic("normalize.DateAuto: empty layout")
	}
	return dateNormalizer(to, func(s string) (time.Time, error) {
		for _, layout := range isoLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t, nil
			}
		}
		if numericDate.MatchString(s) {
			return time.Time{}, fmt.Errorf("%w: the order of day, month and year is not declared; use normalize.Date with the layout", ErrAmbiguousDate)
		}
		return time.Time{}, fmt.Errorf("%w: not an ISO 8601 date or RFC 3339 time", ErrBadDate)
	})
}

// dateNormalizer formats what parse reads with layout to, passing through
// strings already in that form.
func dateNormalizer(to string, parse func(string) (time.Time, error)) Normalizer {
	f := dateFormatter{layout: to, zoned: writesOffset(to)}
	return func(v concord.Value) (concord.Value, error) {
		switch x := v.(type) {
		case nil:
			return nil, nil
		case time.Time:
			return f.format(x)
		case string:
			s := strings.TrimSpace(x)
			t, err := parse(s)
			if err == nil {
				return f.format(t)
			}
			if t, err2 := time.Parse(to, s); err2 == nil && t.Format(to) == s {
				return s, nil // already normal
			}
			return nil, err
		}
		return nil, fmt.Errorf("%w: want a string or time.Time, got %T", transform.ErrWrongType, v)
	}
}

// dateFormatter writes times in one layout so that what it writes reads
// back, in that layout, as itself: the normaliser is then idempotent.
type dateFormatter struct {
	layout string
	zoned  bool // the layout writes a numeric zone offset
}

// writesOffset reports whether layout writes a numeric zone offset (as
// "Z07:00", "-0700" or "-07" do), by writing and reading back a probe.
func writesOffset(layout string) bool {
	probe := time.Date(2001, 2, 3, 4, 5, 6, 0, time.FixedZone("", 3600+120))
	t, err := time.Parse(layout, probe.Format(layout))
	if err != nil {
		return false
	}
	_, off := t.Zone()
	return off != 0
}

// format writes t in the layout. A layout's numeric offset has whole
// minutes: a time whose zone offset has seconds (local mean time, as in
// Africa/Accra until 1918 at −0:00:52) is written in UTC instead, the same
// instant, rather than with an offset that is 52 seconds off. A time the
// layout cannot write so that it reads back as the same text (a year past
// 9999 or before 0000 in a four-digit year) fails with [ErrBadDate].
func (f dateFormatter) format(t time.Time) (string, error) {
	if _, off := t.Zone(); off%60 != 0 && f.zoned {
		t = t.UTC()
	}
	s := t.Format(f.layout)
	if back, err := time.Parse(f.layout, s); err != nil || back.Format(f.layout) != s {
		return "", fmt.Errorf("%w: %s cannot be written in layout %q so that it reads back (years 0000 to 9999 only)", ErrBadDate, t.Format(time.RFC3339Nano), f.layout)
	}
	return s, nil
}
