package alert_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord/audit/alert"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an Alerter that keeps what it is given. fail, if set, is
// called with the number of the call (1, 2, ...) and its error returned
// (the alert is recorded only when it returns nil).
type recorder struct {
	mu     sync.Mutex
	calls  int
	alerts []alert.Alert
	fail   func(call int) error
}

func (r *recorder) Alert(_ context.Context, a alert.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if err := r.fail(r.calls); err != nil {
			return err
		}
	}
	r.alerts = append(r.alerts, a)
	return nil
}

func (r *recorder) got() []alert.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Alert(nil), r.alerts...)
}

// requireAlerts fails t with a diff if got and want differ.
func requireAlerts(t testing.TB, got, want []alert.Alert) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("alerts differ (-want +got):\n%s", diff)
	}
}

// t0 is the start of every test's clock.
var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var outage = alert.Alert{
	Time: t0, Severity: alert.Critical, System: "portal", ErrorClass: "permanent",
	Keys: []string{"cust-1", "cust-2"}, Message: `400 "email" <invalid> & rejected`, Count: 7, GroupKey: "portal/permanent",
}
