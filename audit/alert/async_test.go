package alert_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordsync/concord/audit/alert"
)

// TestAsyncQueueFull: with the worker stuck on a slow delivery and the queue
// full, Alert returns at once (synctest would report a blocked caller as a
// deadlock), drops, counts and logs; Close then delivers what was queued.
func TestAsyncQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		rec := &recorder{fail: func(call int) error {
			if call == 1 {
				<-release
			}
			return nil
		}}
		var log bytes.Buffer
		q, err := alert.NewAsync(rec, alert.AsyncConfig{QueueSize: 2, Logger: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := q.Alert(ctx, alert.Alert{Message: "taken by the worker"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the worker is blocked in the first delivery
		for _, m := range []string{"queued 1", "queued 2"} {
			if err := q.Alert(ctx, alert.Alert{Message: m}); err != nil {
				t.Fatal(err)
			}
		}
		for range 5 {
			if err := q.Alert(ctx, alert.Alert{System: "portal", Message: "dropped"}); !errors.Is(err, alert.ErrQueueFull) {
				t.Fatalf("Alert on a full queue: %v; want ErrQueueFull", err)
			}
		}
		if got := q.Dropped(); got != 5 {
			t.Errorf("Dropped() = %d; want 5", got)
		}
		if n := strings.Count(log.String(), "queue full"); n != 5 {
			t.Errorf("%d log lines about a full queue; want 5:\n%s", n, log.String())
		}
		close(release)
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		var got []string
		for _, a := range rec.got() {
			got = append(got, a.Message)
		}
		if strings.Join(got, ",") != "taken by the worker,queued 1,queued 2" {
			t.Errorf("delivered %q; want the first three", got)
		}
		if err := q.Alert(ctx, alert.Alert{}); !errors.Is(err, alert.ErrClosed) {
			t.Errorf("Alert after Close: %v; want ErrClosed", err)
		}
	})
}

// TestAsyncBackoff: retries wait with exponential backoff and full jitter
// (each wait at most the doubling cap), then the worker gives up.
func TestAsyncBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var at []time.Time
		rec := &recorder{fail: func(int) error {
			at = append(at, time.Now())
			return errors.New("503")
		}}
		q, err := alert.NewAsync(rec, alert.AsyncConfig{MaxAttempts: 5, InitialBackoff: time.Second, MaxBackoff: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- q.Run(ctx) }()
		if err := q.Alert(ctx, outage); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(at) != 5 {
			t.Fatalf("%d attempts; want 5", len(at))
		}
		for i, ceiling := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
			if gap := at[i+1].Sub(at[i]); gap > ceiling {
				t.Errorf("wait before retry %d: %s; want at most %s", i+1, gap, ceiling)
			}
		}
		if q.Failed() != 1 {
			t.Errorf("Failed() = %d; want 1", q.Failed())
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := q.Close(); err != nil { // the failure was before Close: nothing left
			t.Errorf("Close: %v", err)
		}
	})
}

// TestAsyncPermanentNotRetried: a 4xx answer is not retried.
func TestAsyncPermanentNotRetried(t *testing.T) {
	for _, tc := range []struct {
		status    int
		wantCalls int
	}{
		{http.StatusBadRequest, 1},
		{http.StatusTooManyRequests, 3},
		{http.StatusInternalServerError, 3},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			rec := &recorder{fail: func(int) error {
				return &alert.DeliveryError{Adapter: "webhook", Err: statusErr(tc.status)}
			}}
			q, err := alert.NewAsync(rec, alert.AsyncConfig{MaxAttempts: 3, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Alert(context.Background(), outage); err != nil {
				t.Fatal(err)
			}
			if err := q.Close(); !errors.Is(err, alert.ErrUndelivered) { // no worker: Close delivers
				t.Errorf("Close: %v; want ErrUndelivered", err)
			}
			if rec.calls != tc.wantCalls || q.Failed() != 1 {
				t.Errorf("%d calls, Failed %d; want %d, 1", rec.calls, q.Failed(), tc.wantCalls)
			}
		})
	}
}

// TestAsyncCloseDeadline: Close waits at most DrainTimeout for a stuck
// delivery, cancels it, and reports what was not delivered.
func TestAsyncCloseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := alert.AlerterFunc(func(ctx context.Context, _ alert.Alert) error {
			<-ctx.Done()
			return ctx.Err()
		})
		q, err := alert.NewAsync(stuck, alert.AsyncConfig{DrainTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := q.Alert(context.Background(), outage); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		err = q.Close()
		if !errors.Is(err, alert.ErrUndelivered) || !strings.Contains(err.Error(), "3 alerts") {
			t.Errorf("Close: %v; want ErrUndelivered for 3 alerts", err)
		}
		if waited := time.Since(start); waited != 2*time.Second {
			t.Errorf("Close waited %s; want the drain timeout, 2s", waited)
		}
	})
}

// TestAsyncRunStopsOnCancel: cancelling Run's ctx stops the worker at once;
// Close then reports the alerts left in the queue.
func TestAsyncRunStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q, err := alert.NewAsync(&recorder{}, alert.AsyncConfig{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for range 2 {
			if err := q.Alert(ctx, outage); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := q.Run(t.Context()); !errors.Is(err, alert.ErrRunning) {
			t.Errorf("second Run: %v; want ErrRunning", err)
		}
		if err := q.Close(); !errors.Is(err, alert.ErrUndelivered) {
			t.Errorf("Close: %v; want ErrUndelivered", err)
		}
		if err := q.Start(t.Context()); !errors.Is(err, alert.ErrClosed) {
			t.Errorf("Start after Close: %v; want ErrClosed", err)
		}
	})
}

// TestAsyncCloseWithoutWorker: Close delivers the queue itself when no
// worker was started, and keeps its own copy of the keys.
func TestAsyncCloseWithoutWorker(t *testing.T) {
	rec := &recorder{}
	q, err := alert.NewAsync(rec, alert.AsyncConfig{})
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"cust-1"}
	if err := q.Alert(context.Background(), alert.Alert{Keys: keys}); err != nil {
		t.Fatal(err)
	}
	keys[0] = "changed"
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	requireAlerts(t, rec.got(), []alert.Alert{{Keys: []string{"cust-1"}}})
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v; want nil", err)
	}
}

func TestNewAsyncInvalid(t *testing.T) {
	rec := &recorder{}
	for _, tc := range []struct {
		name string
		next alert.Alerter
		cfg  alert.AsyncConfig
	}{
		{"nil next", nil, alert.AsyncConfig{}},
		{"negative queue", rec, alert.AsyncConfig{QueueSize: -1}},
		{"negative attempts", rec, alert.AsyncConfig{MaxAttempts: -1}},
		{"negative backoff", rec, alert.AsyncConfig{InitialBackoff: -time.Second}},
		{"max below initial", rec, alert.AsyncConfig{InitialBackoff: time.Minute, MaxBackoff: time.Second}},
		{"negative drain", rec, alert.AsyncConfig{DrainTimeout: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := alert.NewAsync(tc.next, tc.cfg); !errors.Is(err, alert.ErrInvalidConfig) {
				t.Errorf("NewAsync: %v; want ErrInvalidConfig", err)
			}
		})
	}
}

// statusErr is an HTTP status as a delivery error: Permanent for a 4xx
// other than 408 and 429, as notify.HTTPError says.
type statusErr int

func (e statusErr) Error() string { return http.StatusText(int(e)) }

func (e statusErr) Permanent() bool {
	return e >= 400 && e < 500 && e != http.StatusRequestTimeout && e != http.StatusTooManyRequests
}
