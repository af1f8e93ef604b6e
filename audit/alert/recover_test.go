package alert_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordsync/concord/audit/alert"
)

var errBoom = errors.New("boom")

// explodeAlert ends the call abnormally as kind says; tests find it by name
// in stacks.
func explodeAlert(kind string) {
	switch kind {
	case "string":
		panic("boom")
	case "error":
		panic(fmt.Errorf("wrapped: %w", errBoom))
	case "nil-deref":
		var m map[string]*int
		_ = *m["x"]
	case "goexit":
		runtime.Goexit()
	}
	panic("unknown kind " + kind)
}

var panicKinds = []string{"string", "error", "nil-deref", "goexit"}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func requireAlertPanic(t *testing.T, err error, kind string) {
	t.Helper()
	var pe *alert.PanicError
	if !errors.Is(err, alert.ErrPanic) || !errors.As(err, &pe) {
		t.Fatalf("error = %v; want an *alert.PanicError", err)
	}
	if !bytes.Contains(pe.Stack, []byte("explodeAlert")) {
		t.Fatalf("stack does not show the panicking function:\n%s", pe.Stack)
	}
	switch kind {
	case "error":
		if !errors.Is(err, errBoom) {
			t.Fatalf("the panic's error is not seen: %v", err)
		}
	case "nil-deref":
		var re runtime.Error
		if !errors.As(err, &re) {
			t.Fatalf("not a runtime.Error: %v", err)
		}
	case "goexit":
		if pe.Value != alert.GoexitValue {
			t.Fatalf("Value = %v", pe.Value)
		}
	}
}

// The worker of an Async survives a panicking Alerter, does not retry the
// panic, logs it with its stack, and delivers the next alert.
func TestAsyncWorkerSurvivesPanickingAlerter(t *testing.T) {
	for _, kind := range panicKinds {
		t.Run(kind, func(t *testing.T) {
			// The first delivery waits until Close has been called, so
			// that its panic is an alert Close must report (one that
			// failed before Close is only logged and counted).
			release := make(chan struct{})
			rec := &recorder{fail: func(call int) error {
				if call == 1 {
					<-release
					explodeAlert(kind)
				}
				return nil
			}}
			var log lockedBuffer
			q, err := alert.NewAsync(rec, alert.AsyncConfig{MaxAttempts: 3, InitialBackoff: time.Microsecond,
				MaxBackoff: time.Microsecond, Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := q.Alert(context.Background(), outage); err != nil {
					t.Fatal(err)
				}
			}
			closed := make(chan error, 1)
			go func() { closed <- q.Close() }()
			// Until Close has closed the queue (Start, refused while the
			// worker runs, is refused as closed then; it has no effect).
			for !errors.Is(q.Start(t.Context()), alert.ErrClosed) {
				runtime.Gosched()
			}
			close(release)
			if err := <-closed; !errors.Is(err, alert.ErrUndelivered) {
				t.Fatalf("Close: %v; want ErrUndelivered for the alert whose delivery panicked", err)
			}
			rec.mu.Lock()
			calls := rec.calls
			rec.mu.Unlock()
			if calls != 2 || len(rec.got()) != 1 || q.Failed() != 1 {
				t.Fatalf("%d calls, %d delivered, Failed %d; want 2 (a panic is not retried), 1, 1", calls, len(rec.got()), q.Failed())
			}
			if s := log.String(); !strings.Contains(s, "alerter panicked") || !strings.Contains(s, "explodeAlert") {
				t.Fatalf("the panic was not logged with its stack:\n%s", s)
			}
		})
	}
}

// A Grouper returns a panic of the next Alerter as an error, from Alert,
// Flush and Resolve, and its Run goroutine survives it.
func TestGrouperSurvivesPanickingAlerter(t *testing.T) {
	for _, kind := range panicKinds {
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				on := true
				rec := &recorder{fail: func(int) error {
					mu.Lock()
					defer mu.Unlock()
					if on {
						explodeAlert(kind)
					}
					return nil
				}}
				var log lockedBuffer
				g, err := alert.NewGrouper(rec, alert.GrouperConfig{Window: time.Minute, Logger: slog.New(slog.NewTextHandler(&log, nil))})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() {
					defer close(done)
					_ = g.Run(ctx)
				}()
				a := alert.Alert{System: "portal", ErrorClass: "transient"}
				requireAlertPanic(t, g.Alert(context.Background(), a), kind)
				if err := g.Alert(context.Background(), a); err != nil { // folded
					t.Fatal(err)
				}
				time.Sleep(2 * time.Minute) // Run sends the summary, which panics
				synctest.Wait()
				if !strings.Contains(log.String(), "alerter panicked") {
					t.Fatalf("Run did not log the panic:\n%s", log.String())
				}
				mu.Lock()
				on = false
				mu.Unlock()
				if err := g.Resolve(context.Background(), alert.DefaultGroupKey(a)); err != nil {
					t.Fatal(err)
				}
				if got := rec.got(); len(got) != 1 || !got[0].Resolved {
					t.Fatalf("after the alerter was fixed: %+v; want the resolved notice", got)
				}
				cancel()
				<-done
			})
		})
	}
}

// One target of Multi that panics does not silence the others.
func TestMultiPanickingTargetDoesNotSilenceOthers(t *testing.T) {
	for _, kind := range panicKinds {
		t.Run(kind, func(t *testing.T) {
			after := &recorder{}
			bad := alert.AlerterFunc(func(context.Context, alert.Alert) error { explodeAlert(kind); return nil })
			err := alert.Multi(bad, after).Alert(context.Background(), outage)
			var te *alert.TargetError
			if !errors.As(err, &te) || te.Index != 0 {
				t.Fatalf("error = %v; want a TargetError for alerter 0", err)
			}
			requireAlertPanic(t, err, kind)
			if len(after.got()) != 1 {
				t.Fatal("the alerter after the panicking one got nothing")
			}
		})
	}
}
