package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/alert/notify"
)

var secret = []byte("a-shared-secret-of-32-bytes-long")

func TestWebhookSignedDelivery(t *testing.T) {
	c, srv := newCapture(t, http.StatusAccepted, "")
	w, err := notify.Webhook(srv.URL+"/concord", secret)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Unix()
	if err := w.Alert(context.Background(), outage); err != nil {
		t.Fatal(err)
	}
	body, h := <-c.bodies, <-c.header
	sig, ts := h.Get(notify.SignatureHeader), h.Get(notify.TimestampHeader)

	// The receiver's check accepts the request as sent.
	if err := notify.VerifySignature(secret, sig, ts, body); err != nil {
		t.Fatalf("VerifySignature of the request as sent: %v", err)
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || sec < before || sec > time.Now().Unix() {
		t.Errorf("timestamp %q; want the Unix time of sending", ts)
	}
	var got alert.Alert
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	requireAlerts(t, []alert.Alert{got}, []alert.Alert{outage})

	// It rejects a tampered body, a moved timestamp and a replay after
	// the tolerance.
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-3]++ // one byte changed
	sent, _ := strconv.ParseInt(ts, 10, 64)
	for _, tc := range []struct {
		name    string
		sig, ts string
		body    []byte
		now     time.Time
		want    error
	}{
		{"tampered body", sig, ts, tampered, time.Unix(sent, 0), notify.ErrSignatureMismatch},
		{"moved timestamp", sig, strconv.FormatInt(sent+60, 10), body, time.Unix(sent, 0), notify.ErrSignatureMismatch},
		{"replayed after tolerance", sig, ts, body, time.Unix(sent, 0).Add(notify.DefaultSignatureTolerance + time.Second), notify.ErrSignatureExpired},
		{"from the future", sig, ts, body, time.Unix(sent, 0).Add(-notify.DefaultSignatureTolerance - time.Second), notify.ErrSignatureExpired},
		{"at the tolerance", sig, ts, body, time.Unix(sent, 0).Add(notify.DefaultSignatureTolerance), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := notify.VerifySignatureAt(secret, tc.sig, tc.ts, tc.body, tc.now, notify.DefaultSignatureTolerance)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("VerifySignatureAt: %v; want %v", err, tc.want)
			}
		})
	}
}

func TestVerifySignatureMalformed(t *testing.T) {
	body := []byte(`{}`)
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	for _, tc := range []struct {
		name, sig, ts string
		secret        []byte
		want          error
	}{
		{"no header", "", ts, secret, notify.ErrSignatureMalformed},
		{"no prefix", "deadbeef", ts, secret, notify.ErrSignatureMalformed},
		{"not hex", "sha256=zz", ts, secret, notify.ErrSignatureMalformed},
		{"short digest", "sha256=deadbeef", ts, secret, notify.ErrSignatureMalformed},
		{"bad timestamp", "sha256=" + sign(secret, ts, body), "yesterday", secret, notify.ErrSignatureMalformed},
		{"wrong secret", "sha256=" + sign([]byte("another-secret-entirely"), ts, body), ts, secret, notify.ErrSignatureMismatch},
		{"good", "sha256=" + sign(secret, ts, body), ts, secret, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := notify.VerifySignatureAt(tc.secret, tc.sig, tc.ts, body, now, time.Minute)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("VerifySignatureAt: %v; want %v", err, tc.want)
			}
		})
	}
}

// sign computes the signature as the Webhook documentation describes it
// to receivers: hex HMAC-SHA256 of timestamp "." body.
func sign(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts + "." + string(body)))
	return hex.EncodeToString(m.Sum(nil))
}

// TestWebhookDoesNotKeepCallersSecret: changing the caller's slice after
// Webhook returns changes nothing.
func TestWebhookDoesNotKeepCallersSecret(t *testing.T) {
	c, srv := newCapture(t, 0, "")
	mine := append([]byte(nil), secret...)
	w, err := notify.Webhook(srv.URL, mine)
	if err != nil {
		t.Fatal(err)
	}
	clear(mine)
	if err := w.Alert(context.Background(), outage); err != nil {
		t.Fatal(err)
	}
	body, h := <-c.bodies, <-c.header
	if err := notify.VerifySignature(secret, h.Get(notify.SignatureHeader), h.Get(notify.TimestampHeader), body); err != nil {
		t.Errorf("VerifySignature with the original secret: %v", err)
	}
	if diff := cmp.Diff("application/json", h.Get("Content-Type")); diff != "" {
		t.Errorf("Content-Type (-want +got):\n%s", diff)
	}
}
