package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/alert/notify"
)

// A receiver checks the signature of a Webhook request before it trusts the
// body.
func ExampleVerifySignature() {
	secret := []byte("a-shared-secret-of-32-bytes-long")
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		err = notify.VerifySignature(secret, r.Header.Get(notify.SignatureHeader), r.Header.Get(notify.TimestampHeader), body)
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
