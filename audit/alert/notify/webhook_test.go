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
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/alert/notify"
)

var secret = []byte("a-shared-secret-of-32-bytes-long")

// request is one webhook request as a receiver sees it.
type request struct {
	sig, ts, id string
	body        []byte
}

func receivedRequest(c *capture) request {
	body, h := <-c.bodies, <-c.header
	return request{h.Get(notify.SignatureHeader), h.Get(notify.TimestampHeader), h.Get(notify.DeliveryHeader), body}
}

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
	req := receivedRequest(c)
	sig, ts, id, body := req.sig, req.ts, req.id, req.body

	// The receiver's check accepts the request as sent.
	if err := notify.VerifySignature(secret, sig, ts, id, body); err != nil {
		t.Fatalf("VerifySignature of the request as sent: %v", err)
	}
	// The signature is the documented one, computed independently here.
	if want := "sha256=" + sign(secret, ts, id, body); sig != want {
		t.Errorf("signature %q; want %q (HMAC of timestamp.id.body)", sig, want)
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || sec < before || sec > time.Now().Unix() {
		t.Errorf("timestamp %q; want the Unix time of sending", ts)
	}
	if b, err := hex.DecodeString(id); err != nil || len(b) != 16 || id != strings.ToLower(id) {
		t.Errorf("delivery ID %q; want 32 lower-case hex digits", id)
	}
	var got alert.Alert
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	requireAlerts(t, []alert.Alert{got}, []alert.Alert{outage})

	// It rejects a tampered body, a moved timestamp, a changed delivery ID
	// and a replay after the tolerance.
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-3]++ // one byte changed
	otherID := []byte(id)
	if otherID[0] == '0' { // one digit changed
		otherID[0] = '1'
	} else {
		otherID[0] = '0'
	}
	sent, _ := strconv.ParseInt(ts, 10, 64)
	at := time.Unix(sent, 0)
	for _, tc := range []struct {
		name        string
		sig, ts, id string
		body        []byte
		now         time.Time
		want        error
	}{
		{"tampered body", sig, ts, id, tampered, at, notify.ErrSignatureMismatch},
		{"moved timestamp", sig, strconv.FormatInt(sent+60, 10), id, body, at, notify.ErrSignatureMismatch},
		{"changed delivery ID", sig, ts, string(otherID), body, at, notify.ErrSignatureMismatch},
		{"ID and timestamp swapped", sig, id, ts, body, at, notify.ErrSignatureMalformed},
		{"missing delivery ID", sig, ts, "", body, at, notify.ErrSignatureMalformed},
		{"replayed after tolerance", sig, ts, id, body, at.Add(notify.DefaultSignatureTolerance + time.Second), notify.ErrSignatureExpired},
		{"from the future", sig, ts, id, body, at.Add(-notify.DefaultSignatureTolerance - time.Second), notify.ErrSignatureExpired},
		{"at the tolerance", sig, ts, id, body, at.Add(notify.DefaultSignatureTolerance), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := notify.VerifySignatureAt(secret, tc.sig, tc.ts, tc.id, tc.body, tc.now, notify.DefaultSignatureTolerance)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("VerifySignatureAt: %v; want %v", err, tc.want)
			}
		})
	}
}

// TestWebhookDeliveryIDsUnique: every request gets its own ID, even the same
// alert sent twice within one second (same timestamp, same body), so the
// two signatures differ too.
func TestWebhookDeliveryIDsUnique(t *testing.T) {
	c, srv := newCapture(t, 0, "")
	w, err := notify.Webhook(srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	seenID, seenSig := map[string]bool{}, map[string]bool{}
	for range 10 {
		if err := w.Alert(context.Background(), outage); err != nil {
			t.Fatal(err)
		}
		r := receivedRequest(c)
		if seenID[r.id] || seenSig[r.sig] {
			t.Fatalf("delivery ID %q or signature repeated", r.id)
		}
		seenID[r.id], seenSig[r.sig] = true, true
	}
}

func TestVerifySignatureMalformed(t *testing.T) {
	body := []byte(`{}`)
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	id := "00112233445566778899aabbccddeeff"
	good := "sha256=" + sign(secret, ts, id, body)
	for _, tc := range []struct {
		name, sig, ts, id string
		want              error
	}{
		{"no header", "", ts, id, notify.ErrSignatureMalformed},
		{"no prefix", "deadbeef", ts, id, notify.ErrSignatureMalformed},
		{"not hex", "sha256=zz", ts, id, notify.ErrSignatureMalformed},
		{"short digest", "sha256=deadbeef", ts, id, notify.ErrSignatureMalformed},
		{"bad timestamp", good, "yesterday", id, notify.ErrSignatureMalformed},
		{"no timestamp", good, "", id, notify.ErrSignatureMalformed},
		{"no delivery ID", good, ts, "", notify.ErrSignatureMalformed},
		{"short delivery ID", good, ts, id[:31], notify.ErrSignatureMalformed},
		{"long delivery ID", good, ts, id + "0", notify.ErrSignatureMalformed},
		{"delivery ID with a dot", "sha256=" + sign(secret, ts, "0011223344556677.899aabbccddeeff", body), ts, "0011223344556677.899aabbccddeeff", notify.ErrSignatureMalformed},
		{"non-hex delivery ID", good, ts, strings.Repeat("g", 32), notify.ErrSignatureMalformed},
		{"upper-case delivery ID", "sha256=" + sign(secret, ts, strings.ToUpper(id), body), ts, strings.ToUpper(id), notify.ErrSignatureMalformed},
		{"wrong secret", "sha256=" + sign([]byte("another-secret-entirely"), ts, id, body), ts, id, notify.ErrSignatureMismatch},
		{"old scheme without the ID", "sha256=" + signOld(secret, ts, body), ts, id, notify.ErrSignatureMismatch},
		{"good", good, ts, id, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := notify.VerifySignatureAt(secret, tc.sig, tc.ts, tc.id, body, now, time.Minute)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("VerifySignatureAt: %v; want %v", err, tc.want)
			}
		})
	}
}

// TestVerifySignatureErrorBounded: a hostile header value is not copied
// whole into the error.
func TestVerifySignatureErrorBounded(t *testing.T) {
	huge := strings.Repeat("9", 1<<20) + "x"
	err := notify.VerifySignatureAt(secret, "sha256="+strings.Repeat("00", 32), huge, "", nil, time.Now(), time.Minute)
	if !errors.Is(err, notify.ErrSignatureMalformed) || len(err.Error()) > 300 {
		t.Errorf("error of %d bytes: want ErrSignatureMalformed, short", len(err.Error()))
	}
}

// sign computes the signature as the Webhook documentation describes it
// to receivers: hex HMAC-SHA256 of timestamp "." id "." body.
func sign(key []byte, ts, id string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts + "." + id + "." + string(body)))
	return hex.EncodeToString(m.Sum(nil))
}

// signOld is the signature before delivery IDs: timestamp "." body.
func signOld(key []byte, ts string, body []byte) string {
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
	if err := notify.VerifySignature(secret, h.Get(notify.SignatureHeader), h.Get(notify.TimestampHeader), h.Get(notify.DeliveryHeader), body); err != nil {
		t.Errorf("VerifySignature with the original secret: %v", err)
	}
	if diff := cmp.Diff("application/json", h.Get("Content-Type")); diff != "" {
		t.Errorf("Content-Type (-want +got):\n%s", diff)
	}
}

// FuzzVerifySignature: no input panics; every error matches one of the
// three sentinels; nothing is accepted unless it carries the documented
// signature over a well-formed ID and a timestamp within the tolerance;
// and a correctly signed well-formed request is accepted.
func FuzzVerifySignature(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	id := "00112233445566778899aabbccddeeff"
	body := []byte(`{"system":"erp"}`)
	f.Add("sha256="+sign(secret, ts, id, body), ts, id, body, false)
	f.Add("sha256="+sign(secret, ts, id, body), ts, id, body, true)
	f.Add("", "", "", []byte(nil), false)
	f.Add("sha256=", "-9223372036854775808", id, body, true)
	f.Add("sha256="+strings.Repeat("0", 64), "9223372036854775807", strings.Repeat("f", 32), body, true)
	f.Add("sha256="+sign(secret, "+"+ts, id, body), "+"+ts, id, body, false)
	f.Add("SHA256="+sign(secret, ts, id, body), ts, strings.ToUpper(id), body, true)
	f.Fuzz(func(t *testing.T, header, ts, id string, body []byte, resign bool) {
		if resign {
			header = "sha256=" + sign(secret, ts, id, body)
		}
		err := notify.VerifySignatureAt(secret, header, ts, id, body, now, time.Minute)
		if err != nil {
			if !errors.Is(err, notify.ErrSignatureMalformed) && !errors.Is(err, notify.ErrSignatureMismatch) && !errors.Is(err, notify.ErrSignatureExpired) {
				t.Fatalf("error matches no sentinel: %v", err)
			}
		}
		sec, tsErr := strconv.ParseInt(ts, 10, 64)
		idOK := len(id) == 32 && strings.Trim(id, "0123456789abcdef") == ""
		inTime := tsErr == nil && sec >= now.Unix()-60 && sec <= now.Unix()+60
		hexSig, prefixed := strings.CutPrefix(header, "sha256=")
		signed := prefixed && strings.EqualFold(hexSig, sign(secret, ts, id, body)) // hex digits in either case
		if want := signed && idOK && inTime; (err == nil) != want {
			t.Fatalf("VerifySignatureAt(%q, %q, %q, %q) = %v; want accepted=%v", header, ts, id, body, err, want)
		}
	})
}
