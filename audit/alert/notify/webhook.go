package notify

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
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
	// SignatureHeader carries "sha256=" and the lower-case hex
	// HMAC-SHA256, keyed with the shared secret, of the timestamp, a dot,
	// the delivery ID, a dot and the body (see [Webhook]).
	SignatureHeader = "X-Concord-Signature"
	// TimestampHeader carries the time of sending, in decimal Unix seconds.
	TimestampHeader = "X-Concord-Timestamp"
	// DeliveryHeader carries the delivery ID: 32 lower-case hex digits
	// (128 random bits), new for every request.
	DeliveryHeader = "X-Concord-Delivery"
)

// deliveryIDLen is the length of a delivery ID in hex digits.
const deliveryIDLen = 32

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
// with three headers:
//
//   - [TimestampHeader]: the sending time in decimal Unix seconds, "1741942800";
//   - [DeliveryHeader]: the delivery ID, 32 lower-case hex digits from 128
//     bits of crypto/rand, unique to this request;
//   - [SignatureHeader]: "sha256=" followed by the 64 lower-case hex digits
//     of HMAC-SHA256, keyed with secret, of the signed bytes.
//
// The signed bytes are exactly
//
//	timestamp "." deliveryID "." body
//
// where timestamp and deliveryID are the header values as sent and body is
// the request body exactly as received (before any JSON decoding). Neither
// header value can contain a dot, so the split is unambiguous.
//
// # Receiving
//
// A receiver checks a request in this order, and acts on the body only if
// every step passes:
//
//  1. Read the raw body, bounded (http.MaxBytesReader).
//  2. Recompute the HMAC of timestamp "." deliveryID "." body with the
//     shared secret and compare it with the signature in constant time:
//     a wrong secret, a changed body, timestamp or delivery ID fails here.
//  3. Refuse a timestamp more than the tolerance ([DefaultSignatureTolerance])
//     away from the receiver's clock: an old captured request is dead.
//  4. Refuse a delivery ID already accepted within the tolerance: a request
//     captured and replayed inside the window is dropped. An ID needs to be
//     remembered only until its timestamp plus the tolerance, after which
//     step 3 refuses it anyway.
//
// [VerifySignature] does steps 2 and 3; a [ReplayGuard] does 2, 3 and 4,
// with bounded memory, and is what a receiver should use (see the
// ReplayGuard example for an http.Handler).
//
// # Retries
//
// WebhookAlerter makes one HTTP request per call of Alert and does not retry
// it. A retry (such as alert.Async retrying a failed delivery) calls Alert
// again, which sends a new request with a new timestamp and a new delivery
// ID. So the delivery ID identifies a request, not an alert: a replay of a
// request is refused by its ID, while a retry is a different request that
// the receiver accepts. If the receiver accepted a request but its answer
// was lost, the retry delivers the same alert a second time; alerts are
// notifications, and a receiver that must not see one twice can compare the
// alert's group_key and time.
//
// secret must be at least [MinSecretLen] bytes; Webhook keeps a copy. An
// answer outside 2xx is returned as an [*HTTPError] inside an
// [*alert.DeliveryError]. The URL appears in no error.
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

// Alert posts a, signed, to the endpoint, with a new delivery ID.
func (w *WebhookAlerter) Alert(ctx context.Context, a alert.Alert) error {
	body, err := marshal(a)
	if err != nil {
		return deliveryError("webhook", a, err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	id := newDeliveryID()
	h := http.Header{}
	h.Set(TimestampHeader, ts)
	h.Set(DeliveryHeader, id)
	h.Set(SignatureHeader, "sha256="+hex.EncodeToString(sign(w.secret, ts, id, body)))
	if err := w.http.post(ctx, w.url, h, body); err != nil {
		return deliveryError("webhook", a, err)
	}
	return nil
}

// newDeliveryID returns 128 random bits as 32 lower-case hex digits.
// crypto/rand.Read never fails (it crashes the program if the system's
// random source does).
func newDeliveryID() string {
	var b [deliveryIDLen / 2]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validDeliveryID reports whether id has the form [Webhook] sends: exactly
// 32 lower-case hex digits.
func validDeliveryID(id string) bool {
	if len(id) != deliveryIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// sign returns the HMAC-SHA256 of timestamp "." id "." body keyed with
// secret.
func sign(secret []byte, timestamp, id string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a [Webhook] request on the receiving side: header is
// the value of [SignatureHeader], timestamp that of [TimestampHeader],
// deliveryID that of [DeliveryHeader], body the raw request body. It returns
// nil if the signature is the HMAC of timestamp "." deliveryID "." body under
// secret and the timestamp is within [DefaultSignatureTolerance] of the
// current time; otherwise an error matching [ErrSignatureMalformed] (a
// missing or ill-formed header, including a missing delivery ID),
// [ErrSignatureMismatch] or [ErrSignatureExpired].
//
// VerifySignature alone does not refuse a replay within the tolerance: it
// keeps no memory of the IDs it accepted. Use a [ReplayGuard] for that.
func VerifySignature(secret []byte, header, timestamp, deliveryID string, body []byte) error {
	return VerifySignatureAt(secret, header, timestamp, deliveryID, body, time.Now(), DefaultSignatureTolerance)
}

// VerifySignatureAt is [VerifySignature] with the receiver's current time and
// the tolerance given.
func VerifySignatureAt(secret []byte, header, timestamp, deliveryID string, body []byte, now time.Time, tolerance time.Duration) error {
	_, err := verify(secret, header, timestamp, deliveryID, body, now, tolerance)
	return err
}

// verify is VerifySignatureAt that also returns the signed time.
func verify(secret []byte, header, timestamp, deliveryID string, body []byte, now time.Time, tolerance time.Duration) (time.Time, error) {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return time.Time{}, fmt.Errorf("alert: %s header does not start with sha256=: %w", SignatureHeader, ErrSignatureMalformed)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return time.Time{}, fmt.Errorf("alert: %s header is not a hex SHA-256 digest: %w", SignatureHeader, ErrSignatureMalformed)
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("alert: %s header %q is not Unix seconds: %w", TimestampHeader, truncate(timestamp), ErrSignatureMalformed)
	}
	if deliveryID == "" {
		return time.Time{}, fmt.Errorf("alert: %s header missing: %w", DeliveryHeader, ErrSignatureMalformed)
	}
	if !validDeliveryID(deliveryID) {
		return time.Time{}, fmt.Errorf("alert: %s header %q is not %d lower-case hex digits: %w",
			DeliveryHeader, truncate(deliveryID), deliveryIDLen, ErrSignatureMalformed)
	}
	// Check the signature first, so that a forged timestamp is reported as
	// a mismatch rather than telling the sender about the clock.
	if !hmac.Equal(got, sign(secret, timestamp, deliveryID, body)) {
		return time.Time{}, fmt.Errorf("alert: webhook delivery %s: %w", deliveryID, ErrSignatureMismatch)
	}
	sent := time.Unix(sec, 0)
	if age := now.Sub(sent); age > tolerance || age < -tolerance {
		return time.Time{}, fmt.Errorf("alert: webhook delivery %s: timestamp %s is %s from now (tolerance %s): %w",
			deliveryID, timestamp, age.Round(time.Second), tolerance, ErrSignatureExpired)
	}
	return sent, nil
}

// truncate bounds a header value quoted in an error, so that a hostile
// request cannot make the receiver log megabytes.
func truncate(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
