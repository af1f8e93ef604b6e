// Package notify delivers alerts over the network: [Slack] (a
// Slack-compatible incoming webhook), [Webhook] (a generic JSON POST signed
// with HMAC-SHA256) and [Email] (SMTP). Each is an alert.Alerter; wrap each
// in its own alert.NewAsync queue and put an alert.Grouper in front (see
// package alert).
//
// The engine never imports this package: a host that alerts only through
// its logs pulls in no HTTP or SMTP client.
//
// # Receiving webhooks
//
// Each [Webhook] request carries a timestamp, a random delivery ID unique to
// the request, and an HMAC-SHA256 over timestamp "." deliveryID "." body. A
// receiver keeps one [ReplayGuard] per endpoint and, for each request:
//
//  1. reads the raw body, bounded, before decoding anything;
//  2. calls [ReplayGuard.Verify] with the secret, the values of
//     [SignatureHeader], [TimestampHeader] and [DeliveryHeader], the body
//     and its clock, which recomputes the HMAC and compares it in constant
//     time, refuses a timestamp outside the tolerance, and refuses a
//     delivery ID it accepted before;
//  3. acts on the body only if Verify returned nil; answers 401 for
//     [ErrSignatureMalformed], [ErrSignatureMismatch] and
//     [ErrSignatureExpired], drops a request matching [ErrReplayed] (any
//     answer; 409 says why), and answers 503 for [ErrReplayGuardFull].
//
// [VerifySignature] makes the same checks as step 2 except the last: it
// keeps no memory of IDs, so it refuses an old request but not a replay
// within the tolerance. See [Webhook] for the
// exact bytes and for what a retry sends.
//
// # E-mail credentials
//
// [Email] refuses a Username or Password without STARTTLS when the alerter
// is built, not when the first alert is sent, unless Addr is 127.0.0.1 or
// [::1] and [SMTPConfig.AllowPlainAuthOnLoopback] is set.
//
// # Errors
//
// Adapters return an [*alert.DeliveryError] naming the adapter ("slack",
// "webhook", "email"), the system and the group of the alert; an HTTP
// endpoint that answers with a non-2xx status gives an [*HTTPError] inside
// it, which alert.Async does not retry when it is a 4xx other than 408 and
// 429. Errors never contain a webhook URL, since Slack-style URLs are
// secrets, nor an SMTP password. Invalid configuration is reported by the
// constructors as errors matching [alert.ErrInvalidConfig].
package notify

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/concordsync/concord/audit/alert"
)

// Sentinel errors of [VerifySignature] and [ReplayGuard.Verify]. Match them
// with errors.Is.
var (
	// ErrSignatureMalformed: a webhook signature, timestamp or delivery ID
	// header is missing or not in the expected form.
	ErrSignatureMalformed = errors.New("malformed webhook signature")
	// ErrSignatureMismatch: a webhook signature does not match the
	// timestamp, delivery ID and body (a wrong secret or a tampered
	// request).
	ErrSignatureMismatch = errors.New("webhook signature mismatch")
	// ErrSignatureExpired: a webhook timestamp is too old (a replay) or
	// too far in the future.
	ErrSignatureExpired = errors.New("webhook timestamp outside tolerance")
	// ErrReplayed: a [ReplayGuard] already accepted a request with this
	// delivery ID within the tolerance; the request is a replay.
	ErrReplayed = errors.New("webhook delivery replayed")
	// ErrReplayGuardFull: a [ReplayGuard] holds as many unexpired delivery
	// IDs as its capacity and refuses new ones until some expire.
	ErrReplayGuardFull = errors.New("webhook replay guard full")
)

// HTTPError reports an HTTP endpoint that answered with a status outside
// 2xx.
type HTTPError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the start of the response body (at most 512 bytes), for
	// the reason the endpoint gave.
	Body string
}

// Error gives the status and the body excerpt.
func (e *HTTPError) Error() string {
	s := "HTTP " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	if e.Body != "" {
		s += ": " + strconv.Quote(e.Body)
	}
	return s
}

// Permanent reports whether retrying the same request cannot help: a 4xx
// status other than 408 (timeout) and 429 (rate limited). alert.Async does
// not retry permanent errors.
func (e *HTTPError) Permanent() bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 &&
		e.StatusCode != http.StatusRequestTimeout && e.StatusCode != http.StatusTooManyRequests
}

func deliveryError(adapter string, a alert.Alert, err error) error {
	return &alert.DeliveryError{Adapter: adapter, System: a.System, GroupKey: a.GroupKey, Err: err}
}
