// Package alert tells people when an integration fails, so that nothing
// fails silently: an integration that stops updating and tells no one is the
// most dangerous failure there is.
//
// This package is the alerting contract the engine depends on, and nothing
// that talks to a network: the engine calls an [Alerter] with an [Alert].
// Here too, independent of the engine and of any transport:
//
//   - [Slog] (one log record per alert) and [Multi] (fan out to several);
//   - a [Grouper], so that one outage is one alert with a count, not ten
//     thousand, followed by one summary per window while it lasts and one
//     resolved notice when it ends;
//   - an [Async] queue, so that delivery never blocks syncing and failed
//     deliveries are retried with exponential backoff and full jitter.
//
// The adapters that deliver over a network (Slack-compatible incoming
// webhooks, a generic signed JSON webhook, SMTP e-mail) are in package
// [github.com/concordsync/concord/audit/alert/notify], so that a host that
// alerts only through its logs, and the engine itself, import no HTTP or
// SMTP client.
//
// # Wiring
//
// A host typically stacks them: the engine calls the Grouper, the Grouper
// fans out to one Async queue per destination, and each queue's worker
// calls its adapter (one queue each, so that retrying a failed e-mail does
// not post to Slack again):
//
//	slack, err := notify.Slack(os.Getenv("SLACK_WEBHOOK_URL"))
//	// handle err
//	slackQ, err := alert.NewAsync(slack, alert.AsyncConfig{Logger: logger})
//	// handle err; the same for e-mail (notify.Email): emailQ
//	grouper, err := alert.NewGrouper(alert.Multi(slackQ, emailQ, alert.Slog(logger)),
//		alert.GrouperConfig{Logger: logger})
//	// handle err
//
//	// The host owns the goroutines: it runs the workers and stops them.
//	g, ctx := errgroup.WithContext(ctx)
//	g.Go(func() error { return slackQ.Run(ctx) })
//	g.Go(func() error { return emailQ.Run(ctx) })
//	g.Go(func() error { return grouper.Run(ctx) })
//	// ... give grouper to the engine as its Alerter ...
//	// On shutdown: stop the engine, then slackQ.Close() and emailQ.Close()
//	// to deliver what is queued, then cancel ctx and g.Wait().
//
// Nothing in this package starts a goroutine from a constructor: [Async.Run]
// and [Grouper.Run] run in the caller's goroutine, and [Async.Start] starts
// one goroutine that [Async.Close] waits for.
//
// # Errors
//
// Adapters return a [*DeliveryError] naming the adapter, the system and the
// group of the alert. Invalid configuration is reported by the constructors
// (here and in package notify) as errors matching [ErrInvalidConfig].
package alert

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/concordsync/concord"
)

// Severity says how urgent an alert is.
type Severity string

// The severities.
const (
	// Warning: something failed that may pass by itself (a transient
	// error, a rate limit); records are retried.
	Warning Severity = "warning"
	// Critical: something failed that will not pass by itself (a
	// permanent error, records dead-lettered, a system unreachable for a
	// long time); a person must act.
	Critical Severity = "critical"
	// SeverityResolved: the failure an earlier alert reported has ended.
	// Alerts with this severity also have Resolved set.
	SeverityResolved Severity = "resolved"
)

// DefaultMaxKeys is the number of record keys a [Grouper] keeps in one alert
// unless configured otherwise.
const DefaultMaxKeys = 20

// Alert is one notice for people. It may stand for many occurrences of the
// same failure (see Count and [Grouper]).
//
// Alerters must not modify an Alert or its Keys; the Keys slice may be
// shared with the caller.
type Alert struct {
	// Time is when the failure occurred or, for an alert a Grouper sends at
	// the end of a window, when the window ended.
	Time time.Time `json:"time"`
	// Severity says how urgent the alert is.
	Severity Severity `json:"severity"`
	// System is the system the failure happened in; empty if none.
	System concord.SystemID `json:"system,omitempty"`
	// Keys are record keys affected, in the order they were seen, without
	// duplicates. The list is capped (by a Grouper, at its MaxKeys): it is
	// a sample when Count is larger.
	Keys []string `json:"keys,omitempty"`
	// ErrorClass classifies the failure the way the engine does:
	// "transient", "rate_limited", "conflict", "permanent", "not_found",
	// "invalid", or a host's own class.
	ErrorClass string `json:"error_class,omitempty"`
	// Message says what happened, in words (usually the error text).
	Message string `json:"message"`
	// Count is how many occurrences the alert stands for; zero counts as
	// one. For a resolved alert it is the number of occurrences of the
	// failure that ended.
	Count int `json:"count"`
	// GroupKey identifies the failure an alert belongs to; alerts with
	// the same GroupKey are folded by a Grouper. Empty means the Grouper's
	// default (system and error class).
	GroupKey string `json:"group_key,omitempty"`
	// Resolved reports that the failure of the group has ended. Given to a
	// Grouper it acts like [Grouper.Resolve].
	Resolved bool `json:"resolved,omitempty"`
}

// occurrences returns Count, counting zero as one.
func (a Alert) occurrences() int { return max(a.Count, 1) }

// Title is a one-line summary of a, used as the Slack text's first line, the
// e-mail subject and the log message: the severity, system, error class and,
// when a stands for more than one occurrence, the count:
//
//	[CRITICAL] portal: permanent (99 occurrences)
func (a Alert) Title() string {
	var b strings.Builder
	sev := a.Severity
	if a.Resolved {
		sev = SeverityResolved
	}
	if sev == "" {
		sev = "alert"
	}
	b.WriteString("[" + strings.ToUpper(string(sev)) + "] ")
	if a.System != "" {
		b.WriteString(string(a.System) + ": ")
	}
	switch {
	case a.ErrorClass != "":
		b.WriteString(a.ErrorClass)
	case a.GroupKey != "":
		b.WriteString(a.GroupKey)
	default:
		b.WriteString("failure")
	}
	if a.Count > 1 {
		b.WriteString(" (" + strconv.Itoa(a.Count) + " occurrences)")
	}
	return oneLine(b.String())
}

// Text is the plain-text body of a: its title, message, keys, group and time,
// one per line. The e-mail body and the Slack text use it.
func (a Alert) Text() string {
	var b strings.Builder
	b.WriteString(a.Title() + "\n")
	if a.Message != "" {
		b.WriteString(a.Message + "\n")
	}
	if len(a.Keys) > 0 {
		b.WriteString("Keys: " + strings.Join(a.Keys, ", "))
		if a.Count > len(a.Keys) {
			fmt.Fprintf(&b, " (%d of %d occurrences shown)", len(a.Keys), a.Count)
		}
		b.WriteString("\n")
	}
	if a.GroupKey != "" {
		b.WriteString("Group: " + a.GroupKey + "\n")
	}
	if !a.Time.IsZero() {
		b.WriteString("Time: " + a.Time.UTC().Format(time.RFC3339) + "\n")
	}
	return b.String()
}

// oneLine replaces line breaks with spaces, so that a message cannot add
// lines to a header or a log line.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
}

// Alerter delivers alerts.
//
// Alert is called with ctx bounding the delivery: when ctx is cancelled the
// Alerter gives up and returns an error. Alerters in this package are safe
// for concurrent use. An Alerter must not modify a or its Keys.
type Alerter interface {
	Alert(ctx context.Context, a Alert) error
}

// AlerterFunc adapts a function to the [Alerter] interface.
type AlerterFunc func(ctx context.Context, a Alert) error

// Alert calls f(ctx, a).
func (f AlerterFunc) Alert(ctx context.Context, a Alert) error { return f(ctx, a) }
