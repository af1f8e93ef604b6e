package sync

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/connector"
)

// alerting turns a cycle's failures into alerts, and tells when a system
// that was failing works again. Grouping (one outage, one alert) is the
// alerter's job: wrap it in alert.NewGrouper.
type alerting struct {
	to      alert.Alerter
	failing map[string]alert.Alert // open groups, by group key
}

// Prefixes of the alert groups that are not a system's outage.
const (
	groupDeadLetter = "dead-letter"
	groupRetryAfter = "retry-after"
)

// alerts sends the alerts of a committed cycle. Delivery failures are
// logged, never returned: alerting must not stop syncing.
func (e *Engine) alerts(ctx context.Context, r *Report, log *eventLog) {
	a := e.alerting
	if a.to == nil {
		return
	}
	var out []alert.Alert
	seen := map[string]bool{}
	deadLettered := map[string]bool{}
	log.each(func(ev *audit.Event) {
		if ev.Kind == audit.WriteDeadLettered {
			deadLettered[string(ev.System)+"\x00"+ev.Key] = true
		}
	})
	for _, ev := range log.of(audit.CursorWentBack, audit.ReadFailed, audit.WriteFailed, audit.WriteRefused,
		audit.WriteDeadLettered, audit.RetryAfterCapped) {
		if ev.Kind == audit.WriteFailed && deadLettered[string(ev.System)+"\x00"+ev.Key] {
			continue // the dead letter says it, louder
		}
		// Reads and writes failing alike are one outage of the system:
		// one group, "system/class" (alert.DefaultGroupKey), so that a
		// Grouper sends one alert for it. Dead letters and capped waits
		// are groups of their own.
		g := string(ev.System) + "/" + ev.ErrorClass
		sev := alert.Warning
		switch ev.Kind {
		case audit.CursorWentBack:
		case audit.ReadFailed:
			if ev.ErrorClass == connector.ErrPermanent.String() {
				sev = alert.Critical
			}
		case audit.WriteFailed, audit.WriteRefused:
		case audit.WriteDeadLettered:
			g, sev = groupDeadLetter+"/"+g, alert.Critical
		case audit.RetryAfterCapped:
			g = groupRetryAfter + "/" + g
		default:
			continue
		}
		seen[g] = true
		al := alert.Alert{Time: ev.Time, Severity: sev, System: ev.System, ErrorClass: ev.ErrorClass,
			Message: ev.Error, GroupKey: g}
		if ev.Reason != "" && ev.Error == "" {
			al.Message = ev.Reason
		}
		if ev.Key != "" {
			al.Keys = []string{ev.Key}
		}
		if ev.Kind != audit.WriteDeadLettered {
			a.failing[g] = al // dead letters are resolved by Replay and Discard
		}
		out = append(out, al)
	}
	// A group whose system worked this cycle without that failure is over.
	for _, g := range slices.Sorted(maps.Keys(a.failing)) {
		open := a.failing[g]
		if seen[g] {
			continue
		}
		sr := r.Systems[open.System]
		var recovered bool
		if strings.HasPrefix(g, groupRetryAfter+"/") {
			recovered = sr.RetryAfterCapped == 0 && (sr.Writes > 0 || sr.ReadCalls > 0)
		} else {
			// Read successfully, and no write failed for that reason.
			recovered = sr.ReadCalls > 0 && !failedOp(r, open.System, OpRead) && !failedClass(r, open.System, open.ErrorClass)
		}
		if recovered {
			delete(a.failing, g)
			out = append(out, alert.Alert{Time: r.Finished, Severity: alert.SeverityResolved, System: open.System,
				ErrorClass: open.ErrorClass, GroupKey: g, Resolved: true, Message: string(open.System) + " works again"})
		}
	}
	for _, al := range out {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := a.to.Alert(actx, al); err != nil {
			e.log.Warn("concord: delivering an alert failed", "group", al.GroupKey, "error", err)
		}
		cancel()
	}
}

func failedClass(r *Report, s concord.SystemID, class string) bool {
	for _, f := range r.Failures {
		if f.System == s && classOf(f.Err).String() == class {
			return true
		}
	}
	return false
}

// resolveDeadLetters tells the alerter that the dead letters of system s
// with class are all settled, if none is left.
func (e *Engine) resolveDeadLetters(ctx context.Context, s concord.SystemID, class string) {
	if e.alerting.to == nil {
		return
	}
	all, bad, err := e.store.DeadLettersOfClass(ctx, connector.Class(class))
	if err != nil {
		e.log.Warn("concord: listing dead letters for alerts", "error", err)
		return
	}
	if len(bad) > 0 {
		return // a letter that does not decode may be one of them
	}
	for _, d := range all {
		if d.System == s && d.Class == class && !d.Inbound {
			return
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	g := groupDeadLetter + "/" + string(s) + "/" + class
	if err := e.alerting.to.Alert(actx, alert.Alert{Time: e.now(), Severity: alert.SeverityResolved, System: s, ErrorClass: class,
		GroupKey: g, Resolved: true, Message: "no dead-lettered writes to " + string(s) + " left"}); err != nil {
		e.log.Warn("concord: delivering an alert failed", "group", g, "error", err)
	}
}

func failedOp(r *Report, s concord.SystemID, op Op) bool {
	for _, f := range r.Failures {
		if f.System == s && f.Op == op {
			return true
		}
	}
	return false
}
