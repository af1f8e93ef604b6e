package sync_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// Config.Now stamps every audit event and alert, including those of the
// retry loop (a capped Retry-After, a system parked by one), whose waits
// run on real time. No event text names a real-time instant either: a
// reader of the trail sees one clock. Run in a synctest bubble, whose real
// clock (2000-01-01) is far from the injected one (2031-07-04).
func TestAuditAndAlertsUseConfigNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		injected := time.Date(2031, 7, 4, 12, 0, 0, 0, time.UTC)
		rec := audittest.New()
		var alerts []alert.Alert
		portal, warehouse := fake.New("portal"), fake.New("warehouse")
		e, err := recsync.New(recsync.Config{
			Store: store.NewMemory(), Audit: rec, Now: func() time.Time { return injected },
			Retry: recsync.RetryPolicy{MaxAttempts: 2, MaxElapsed: 10 * time.Second, MaxRetryAfter: time.Minute},
			Alerter: alert.AlerterFunc(func(_ context.Context, a alert.Alert) error {
				alerts = append(alerts, a)
				return nil
			}),
			Systems: []recsync.System{{ID: "portal", Connector: portal}, {ID: "warehouse", Connector: warehouse}},
		})
		if err != nil {
			t.Fatal(err)
		}
		portal.Edit("c1", map[string]any{"n": 1})
		warehouse.RateLimitNext(1, 24*time.Hour) // capped at a minute: parked
		_, _ = e.RunCycle(context.Background())
		portal.Edit("c1", map[string]any{"n": 2})
		_, _ = e.RunCycle(context.Background()) // still parked: refused without a call

		rec.Require(t, audittest.Match{Kind: audit.RetryAfterCapped, System: "warehouse"})
		rec.Require(t, audittest.Match{Kind: audit.WriteFailed, System: "warehouse"})
		realYear := time.Now().Format("2006-")
		for _, ev := range rec.Events() {
			if !ev.Time.Equal(injected) {
				t.Errorf("%s event at %v; want Config.Now's %v", ev.Kind, ev.Time, injected)
			}
			for _, text := range []string{ev.Error, ev.Reason} {
				if strings.Contains(text, realYear) {
					t.Errorf("%s event names a real-time instant (the injected clock says %v): %q", ev.Kind, injected, text)
				}
			}
		}
		if len(alerts) == 0 {
			t.Fatal("no alert for a capped Retry-After")
		}
		for _, a := range alerts {
			if !a.Time.Equal(injected) {
				t.Errorf("alert %q at %v; want Config.Now's %v", a.GroupKey, a.Time, injected)
			}
			if strings.Contains(a.Message, realYear) {
				t.Errorf("alert %q names a real-time instant: %q", a.GroupKey, a.Message)
			}
		}
	})
}
