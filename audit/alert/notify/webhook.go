package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/concordsync/concord/audit/alert"
)

// The headers of a [Webhook] request.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// timestamp, a dot and the body, keyed with the shared secret.
	SignatureHeader = "X-Concord-Signature"
	// TimestampHeader carries the time of sending, in decimal Unix seconds.
	TimestampHeader = "X-Concord-Timestamp"
)

// MinSecretLen is the shortest webhook secret [Webhook] accepts, in bytes.
const MinSecretLen = 16

// DefaultSignatureTolerance is how far a webhook timestamp may be from the
// receiver's clock for [VerifySignature] to accept it.
const DefaultSignatureTolerance = 5 * time.Minute

// WebhookAlerter posts alerts as signed JSON to an HTTP endpoint. Make one
// with [Webhook]. It is safe for concurrent use.
type WebhookAlerter struct {
	url    string
	secret []byte
	http   httpConfig
}

var _ alert.Alerter = (*WebhookAlerter)(nil)

// Webhook returns an Alerter that POSTs each alert to url as the JSON
// encoding of [alert.Alert], for example
//
//	{"time":"2025-03-14T09:00:00Z","severity":"critical","system":"portal","keys":["cust-42"],
//	 "error_class":"permanent","message":"...","count":1,"group_key":"portal/permanent"}
//
// with two headers: [TimestampHeader], the sending time in Unix seconds, and
// [SignatureHeader], "sha256=" followed by the lower-case hex
// HMAC-SHA256, keyed with secret, of the timestamp, a ".", and the body
// bytes exactly as received.
//
// A receiver verifies a request by reading the raw body (before any JSON
// decoding) and calling
//
//	err := notify.VerifySignature(secret, r.Header.Get(notify.SignatureHeader),
//		r.Header.Get(notify.TimestampHeader), body)
//
// which recomputes the HMAC, compares it in constant time and rejects a
// timestamp more than [DefaultSignatureTolerance] away from its clock. Since
// the timestamp is signed, a captured request cannot be replayed later; to
// also refuse a replay within the tolerance, a receiver can remember the
// signatures it accepted in the last tolerance period.
//
// secret must be at least [MinSecretLen] bytes; Webhook keeps a copy. An
// answer outside 2xx is returned as an [*HTTPError] inside a
// [*DeliveryError]. The URL appears in no error.
func Webhook(url string, secret []byte, opts ...WebhookOption) (*WebhookAlerter, error) {
	w := &WebhookAlerter{url: url, secret: append([]byte(nil), secret...), http: defaultHTTP()}
	for _, o := range opts {
		o.applyWebhook(w)
	}
	if err := validateURL("webhook", url); err != nil {
		return nil, err
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("alert: webhook: secret shorter than %d bytes: %w", MinSecretLen, alert.ErrInvalidConfig)
	}
	if err := w.http.validate("webhook"); err != nil {
		return nil, err
	}
	return w, nil
}

// Alert posts a, signed, to the endpoint.
func (w *WebhookAlerter) Alert(ctx context.Context, a alert.Alert) error {
	body, err := marshal(a)
	if err != nil {
		return deliveryError("webhook", a, err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{}
	h.Set(TimestampHeader, ts)
	h.Set(SignatureHeader, "sha256="+hex.EncodeToString(sign(w.secret, ts, body)))
	if err := w.http.post(ctx, w.url, h, body); err != nil {
		return deliveryError("webhook", a, err)
	}
	return nil
}

// sign returns the HMAC-SHA256 of timestamp "." body keyed with secret.
func sign(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a [Webhook] request on the receiving side: header is
// the value of [SignatureHeader], timestamp that of [TimestampHeader], body
// the raw request body. It returns nil if the signature is the HMAC of the
// timestamp and body under secret and the timestamp is within
// [DefaultSignatureTolerance] of the current time; otherwise an error
// matching [ErrSignatureMalformed], [ErrSignatureMismatch] or
// [ErrSignatureExpired].
func VerifySignature(secret []byte, header, timestamp string, body []byte) error {
	return VerifySignatureAt(secret, header, timestamp, body, time.Now(), DefaultSignatureTolerance)
}

// VerifySignatureAt is [VerifySignature] with the receiver's current time and
// the tolerance given.
func VerifySignatureAt(secret []byte, header, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return fmt.Errorf("alert: %s header does not start with sha256=: %w", SignatureHeader, ErrSignatureMalformed)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("alert: %s header is not a hex SHA-256 digest: %w", SignatureHeader, ErrSignatureMalformed)
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("alert: %s header %q is not Unix seconds: %w", TimestampHeader, timestamp, ErrSignatureMalformed)
	}
	// Check the signature first, so that a forged timestamp is reported as
	// a mismatch rather than telling the sender about the clock.
	if !hmac.Equal(got, sign(secret, timestamp, body)) {
		return fmt.Errorf("alert: %w", ErrSignatureMismatch)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("alert: webhook timestamp %s is %s from now (tolerance %s): %w",
			timestamp, age.Round(time.Second), tolerance, ErrSignatureExpired)
	}
	return nil
}
