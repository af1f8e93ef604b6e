package notify_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/alert/notify"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// TestAsyncRetriesThenDelivers: a real endpoint fails twice with 503; the
// worker retries and the third attempt is delivered, signed. Each attempt
// is a new request with its own delivery ID, as Webhook documents.
func TestAsyncRetriesThenDelivers(t *testing.T) {
	var calls atomic.Int32
	bodies := make(chan []byte, 1)
	ids := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids <- r.Header.Get(notify.DeliveryHeader)
		if calls.Add(1) <= 2 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		if err := notify.VerifySignature(secret, r.Header.Get(notify.SignatureHeader), r.Header.Get(notify.TimestampHeader),
			r.Header.Get(notify.DeliveryHeader), b.Bytes()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		bodies <- b.Bytes()
	}))
	defer srv.Close()
	hook, err := notify.Webhook(srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	q, err := alert.NewAsync(hook, alert.AsyncConfig{
		InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := q.Alert(context.Background(), outage); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bodies:
	case <-time.After(10 * time.Second):
		t.Fatal("alert not delivered")
	}
	if err := q.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("%d requests; want 3", got)
	}
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if len(id) != 32 || seen[id] {
			t.Errorf("delivery ID %q: want 32 hex digits, new for each attempt (seen %v)", id, seen)
		}
		seen[id] = true
	}
	if q.Failed() != 0 || q.Dropped() != 0 {
		t.Errorf("Failed %d, Dropped %d; want 0, 0", q.Failed(), q.Dropped())
	}
	if n := strings.Count(log.String(), "will retry"); n != 2 || !strings.Contains(log.String(), "HTTP 503") {
		t.Errorf("log has %d retry lines; want 2 naming HTTP 503:\n%s", n, log.String())
	}
}

func requireAlerts(t testing.TB, got, want []alert.Alert) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("alerts differ (-want +got):\n%s", diff)
	}
}
