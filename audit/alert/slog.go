package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// SlogAlerter logs alerts through a *slog.Logger. Make one with [Slog]. It is
// as safe for concurrent use as the logger's handler (those of log/slog are).
type SlogAlerter struct{ h slog.Handler }

var _ Alerter = (*SlogAlerter)(nil)

// Slog returns an Alerter that logs each alert as one record through
// logger's handler. The record's message is the alert's [Alert.Title], its
// time the alert's Time (handlers leave out a zero time), and its level
// slog.LevelError for Critical, slog.LevelWarn for Warning (and an empty
// severity) and slog.LevelInfo for a resolved alert. The attributes, each only
// when not zero, are
//
//	severity, system, error_class, message, count, keys, group_key, resolved
//
// Alert skips alerts whose level the handler does not enable, and returns a
// handler error inside a [*DeliveryError]. Slog panics if logger is nil.
func Slog(logger *slog.Logger) *SlogAlerter {
	if logger == nil {
		panic("alert: Slog: nil logger")
	}
	return &SlogAlerter{h: logger.Handler()}
}

// Alert logs a.
func (s *SlogAlerter) Alert(ctx context.Context, a Alert) error {
	level := slog.LevelWarn
	switch {
	case a.Resolved || a.Severity == SeverityResolved:
		level = slog.LevelInfo
	case a.Severity == Critical:
		level = slog.LevelError
	}
	if !s.h.Enabled(ctx, level) {
		return nil
	}
	r := slog.NewRecord(a.Time, level, a.Title(), 0)
	str := func(k, v string) {
		if v != "" {
			r.AddAttrs(slog.String(k, v))
		}
	}
	str("severity", string(a.Severity))
	str("system", string(a.System))
	str("error_class", a.ErrorClass)
	str("message", a.Message)
	if a.Count != 0 {
		r.AddAttrs(slog.Int("count", a.Count))
	}
	if len(a.Keys) > 0 {
		r.AddAttrs(slog.Any("keys", a.Keys))
	}
	str("group_key", a.GroupKey)
	if a.Resolved {
		r.AddAttrs(slog.Bool("resolved", true))
	}
	if err := s.h.Handle(ctx, r); err != nil {
		return deliveryError("slog", a, err)
	}
	return nil
}

// Multi returns an Alerter that delivers every alert to each of alerters, in
// order. A failing alerter does not stop the others: Alert returns the
// failures joined with errors.Join, each wrapped in a [*TargetError] giving
// the alerter's index. An alerter that panics fails with a [*PanicError]
// and does not stop the others either.
//
// Multi keeps its own copy of the slice and panics if an alerter is nil, so
// that a wiring mistake shows at construction. Multi with no alerters
// delivers nowhere and returns nil.
func Multi(alerters ...Alerter) Alerter {
	for i, a := range alerters {
		if a == nil {
			panic(fmt.Sprintf("alert: Multi: alerter %d is nil", i))
		}
	}
	return multi(append([]Alerter(nil), alerters...))
}

type multi []Alerter

func (m multi) Alert(ctx context.Context, a Alert) error {
	var errs []error
	for i, t := range m {
		if err := safeAlert(ctx, t, a); err != nil { // one target's panic must not silence the others
			errs = append(errs, &TargetError{Index: i, Err: err})
		}
	}
	return errors.Join(errs...)
}
