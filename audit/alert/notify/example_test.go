package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/alert/notify"
)

// A receiver checks the signature of a Webhook request before it trusts the
// body. VerifySignature refuses a forged or old request; to also refuse a
// replay within the tolerance, use a ReplayGuard (next example).
func ExampleVerifySignature() {
	secret := []byte("a-shared-secret-of-32-bytes-long")
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		err = notify.VerifySignature(secret, r.Header.Get(notify.SignatureHeader), r.Header.Get(notify.TimestampHeader),
			r.Header.Get(notify.DeliveryHeader), body)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Println("verified:", string(body))
	}))
	defer receiver.Close()

	hook, err := notify.Webhook(receiver.URL, secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = hook.Alert(context.Background(), alert.Alert{
		Time: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC), Severity: alert.Critical,
		System: "erp", ErrorClass: "permanent", Message: "dead-lettered", Count: 1,
	})
	fmt.Println(err)

	forged, err := notify.Webhook(receiver.URL, []byte("not-the-shared-secret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(forged.Alert(context.Background(), alert.Alert{System: "erp", Message: "forged"}))
	// Output:
	// verified: {"time":"2025-03-14T09:00:00Z","severity":"critical","system":"erp","error_class":"permanent","message":"dead-lettered","count":1}
	// <nil>
	// alert: webhook: system erp: HTTP 401 Unauthorized: "bad signature"
}

// A receiving http.Handler with a ReplayGuard: it acts on a delivery once,
// and drops a captured request sent again within the tolerance.
func ExampleReplayGuard() {
	secret := []byte("a-shared-secret-of-32-bytes-long")
	guard, err := notify.NewReplayGuard(notify.DefaultSignatureTolerance)
	if err != nil {
		fmt.Println(err)
		return
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// 1. The raw body, bounded, before any decoding.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		// 2. Signature, timestamp and delivery ID in one call.
		err = guard.Verify(secret, r.Header.Get(notify.SignatureHeader), r.Header.Get(notify.TimestampHeader),
			r.Header.Get(notify.DeliveryHeader), body, time.Now())
		switch {
		case errors.Is(err, notify.ErrReplayed):
			http.Error(w, "replayed delivery", http.StatusConflict)
			return
		case errors.Is(err, notify.ErrReplayGuardFull):
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		case err != nil:
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// 3. Only now act on the body.
		fmt.Println("accepted:", string(body))
	})

	// The test server records the last request, as an attacker on the
	// path could, to send it again.
	var mu sync.Mutex
	var captured *http.Request
	var capturedBody []byte
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		captured, capturedBody = r, body
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		handler.ServeHTTP(w, r)
	}))
	defer receiver.Close()

	hook, err := notify.Webhook(receiver.URL, secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(hook.Alert(context.Background(), alert.Alert{
		Time: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC), Severity: alert.Critical,
		System: "erp", Message: "dead-lettered", Count: 1,
	}))

	// The same request, byte for byte, a moment later.
	mu.Lock()
	replay, _ := http.NewRequest(http.MethodPost, receiver.URL, bytes.NewReader(capturedBody))
	replay.Header = captured.Header.Clone()
	mu.Unlock()
	resp, err := http.DefaultClient.Do(replay)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("replay:", resp.Status)
	// Output:
	// accepted: {"time":"2025-03-14T09:00:00Z","severity":"critical","system":"erp","message":"dead-lettered","count":1}
	// <nil>
	// replay: 409 Conflict
}

// Email refuses credentials that would cross the network in the clear when
// the alerter is built, not when the first alert is sent.
func ExampleEmail_credentialsWithoutTLS() {
	cfg := notify.SMTPConfig{
		Addr: "smtp.example.com:25", From: "concord@example.com", To: []string{"ops@example.com"},
		Username: "concord", Password: "s3cret",
	}
	_, err := notify.Email(cfg)
	fmt.Println(errors.Is(err, alert.ErrInvalidConfig))
	fmt.Println(err)

	cfg.StartTLS = true
	_, err = notify.Email(cfg)
	fmt.Println(err)
	// Output:
	// true
	// alert: email: credentials without TLS: set StartTLS (or AllowPlainAuthOnLoopback for a server on 127.0.0.1 or [::1]): invalid alert configuration
	// <nil>
}
