package audit

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"

	"github.com/concordsync/concord"
)

// Slog returns a Sink that logs each event as one record through logger's
// handler.
//
// The record's message is the event's Kind and its time is the event's Time
// (handlers leave out a zero time). Failures (WriteFailed, ReadFailed,
// RecordQuarantined) and ConflictHeld, which waits for a person, are logged
// at slog.LevelWarn, every other kind at slog.LevelInfo. The attributes, each
// only when it is not the zero value, are:
//
//	key, system, unit, fields, rule, reason, version (its text form),
//	error, error_class, cycle, deleted
//	from, to      groups with one attribute per field, in field order
//	candidates    a group per candidate, by index ("0", "1", ...), with
//	              system, canonical, version, deleted and a values group
//
// Emit asks the handler whether each level is enabled and skips the events
// it is not. Handler errors are returned as [*EventError]s joined with
// errors.Join; the other events are still logged. ctx is passed to the
// handler.
//
// Slog panics if logger is nil. The sink is as safe for concurrent use as
// the handler is (the handlers of log/slog are).
func Slog(logger *slog.Logger) Sink {
	if logger == nil {
		panic("audit: Slog: nil logger")
	}
	return slogSink{h: logger.Handler()}
}

type slogSink struct{ h slog.Handler }

func (s slogSink) Emit(ctx context.Context, events []Event) error {
	var errs []error
	for i := range events {
		ev := &events[i]
		level := levelOf(ev.Kind)
		if !s.h.Enabled(ctx, level) {
			continue
		}
		r := slog.NewRecord(ev.Time, level, string(ev.Kind), 0)
		r.AddAttrs(eventAttrs(ev)...)
		if err := s.h.Handle(ctx, r); err != nil {
			errs = append(errs, eventError(i, ev, err))
		}
	}
	return errors.Join(errs...)
}

// levelOf returns the level at which Slog logs events of kind k.
func levelOf(k Kind) slog.Level {
	switch k {
	case WriteFailed, ReadFailed, RecordQuarantined, ConflictHeld:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

func eventAttrs(ev *Event) []slog.Attr {
	attrs := make([]slog.Attr, 0, 12)
	str := func(key, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(key, v))
		}
	}
	str("key", ev.Key)
	str("system", string(ev.System))
	str("unit", ev.Unit)
	if len(ev.Units) > 0 {
		attrs = append(attrs, slog.Any("units", ev.Units))
	}
	if len(ev.Fields) > 0 {
		attrs = append(attrs, slog.Any("fields", ev.Fields))
	}
	str("rule", ev.Rule.String())
	str("reason", ev.Reason)
	if !ev.Version.IsZero() {
		attrs = append(attrs, slog.String("version", ev.FormatVersion(ev.Version)))
	}
	str("error", ev.Error)
	str("error_class", ev.ErrorClass)
	if ev.Seq != 0 {
		attrs = append(attrs, slog.Uint64("seq", ev.Seq))
	}
	if ev.Cycle != 0 {
		attrs = append(attrs, slog.Uint64("cycle", ev.Cycle))
	}
	if ev.Deleted {
		attrs = append(attrs, slog.Bool("deleted", true))
	}
	if len(ev.From) > 0 {
		attrs = append(attrs, valuesAttr("from", ev.From))
	}
	if len(ev.To) > 0 {
		attrs = append(attrs, valuesAttr("to", ev.To))
	}
	if len(ev.Candidates) > 0 {
		cands := make([]slog.Attr, len(ev.Candidates))
		for i, c := range ev.Candidates {
			cands[i] = candidateAttr(ev, strconv.Itoa(i), c)
		}
		attrs = append(attrs, slog.Attr{Key: "candidates", Value: slog.GroupValue(cands...)})
	}
	return attrs
}

func candidateAttr(ev *Event, key string, c Candidate) slog.Attr {
	attrs := []slog.Attr{slog.String("system", string(c.System))}
	if c.Canonical {
		attrs = append(attrs, slog.Bool("canonical", true))
	}
	attrs = append(attrs, slog.String("version", ev.FormatVersion(c.Version)))
	if c.Deleted {
		attrs = append(attrs, slog.Bool("deleted", true))
	}
	if len(c.Values) > 0 {
		attrs = append(attrs, valuesAttr("values", c.Values))
	}
	return slog.Attr{Key: key, Value: slog.GroupValue(attrs...)}
}

// valuesAttr turns a field map into a group with the fields in sorted order,
// so that the output does not depend on map iteration order.
func valuesAttr(key string, m map[string]concord.Value) slog.Attr {
	names := slices.Sorted(maps.Keys(m))
	attrs := make([]slog.Attr, len(names))
	for i, name := range names {
		attrs[i] = slog.Any(name, m[name])
	}
	return slog.Attr{Key: key, Value: slog.GroupValue(attrs...)}
}
