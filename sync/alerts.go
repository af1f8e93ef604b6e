package sync

import (
	"context"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
)

// alerting turns a cycle's failures into alerts, and tells when a system
// that was failing works again. Grouping (one outage, one alert) is the
// alerter's job: wrap it in alert.NewGrouper.
type alerting struct {
	to      alert.Alerter
	failing map[string]alert.Alert // open groups, by group key
}

// groups of alerts the engine raises.
const (
	groupRead       = "read"
	groupWrite      = "write"
	groupDeadLetter = "dead-letter"
	groupRetryAfter = "retry-after"
)

// alerts sends the alerts of a committed cycle. Delivery failures are
// logged, never returned: alerting must not stop syncing.
func (e *Engine) alerts(ctx context.Context, r *Report, events []audit.Event) {
	a := e.alerting
	if a.to == nil {
		return
	}
	var out []alert.Alert
	seen := map[string]bool{}
	deadLettered := map[string]bool{}
	for _, ev := range events {
		if ev.Kind == audit.WriteDeadLettered {
			deadLettered[string(ev.System)+"\x00"+ev.Key] = true
		}
	}
	for _, ev := range events {
		if ev.Kind == audit.WriteFailed && deadLettered[string(ev.System)+"\x00"+ev.Key] {
			continue // the dead letter says it, louder
		}
		var kind string
		sev := alert.Warning
		switch ev.Kind {
		case audit.ReadFailed:
			kind = groupRead
			if ev.ErrorClass == "permanent" {
				sev = alert.Critical
			}
		case audit.WriteFailed:
			kind = groupWrite
		case audit.WriteDeadLettered:
			kind, sev = groupDeadLetter, alert.Critical
		case audit.RetryAfterCapped:
			kind = groupRetryAfter
		default:
			continue
		}
		g := kind + "/" + string(ev.System) + "/" + ev.ErrorClass
		seen[g] = true
		al := alert.Alert{Time: ev.Time, Severity: sev, System: ev.System, ErrorClass: ev.ErrorClass,
			Message: ev.Error, GroupKey: g}
		if ev.Reason != "" && ev.Error == "" {
			al.Message = ev.Reason
		}
		if ev.Key != "" {
			al.Keys = []string{ev.Key}
		}
		a.failing[g] = al
		out = append(out, al)
	}
	// A group whose system worked this cycle without that failure is over.
	for g, open := range a.failing {
		if seen[g] {
			continue
		}
		sr := r.Systems[open.System]
		var recovered bool
		kind, _, _ := strings.Cut(g, "/")
		switch kind {
		case groupRead:
			recovered = sr.ReadCalls > 0 && !failedOp(r, open.System, "read")
		case groupWrite, groupDeadLetter:
			recovered = sr.Writes > 0 && !failedOp(r, open.System, "write")
		case groupRetryAfter:
			recovered = sr.RetryAfterCapped == 0 && (sr.Writes > 0 || sr.ReadCalls > 0)
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

func failedOp(r *Report, s concord.SystemID, op string) bool {
	for _, f := range r.Failures {
		if f.System == s && f.Op == op {
			return true
		}
	}
	return false
}
