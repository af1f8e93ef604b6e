package alert_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordsync/concord/audit/alert"
)

// TestGrouperFoldsAnOutage: 100 failures in one window are one alert at
// once and one summary with count 99 when the window ends; resolving sends
// one resolved notice, and only once.
func TestGrouperFoldsAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		g, err := alert.NewGrouper(rec, alert.GrouperConfig{MaxKeys: 3})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- g.Run(ctx) }()

		start := time.Now()
		for i := range 100 {
			sev := alert.Warning
			if i == 50 {
				sev = alert.Critical
			}
			err := g.Alert(ctx, alert.Alert{
				Time: time.Now(), Severity: sev, System: "portal", ErrorClass: "permanent",
				Keys: []string{fmt.Sprintf("cust-%d", i%5)}, Message: fmt.Sprintf("write failed (%d)", i),
			})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
		}
		synctest.Wait()
		first := alert.Alert{
			Time: start, Severity: alert.Warning, System: "portal", ErrorClass: "permanent",
			Keys: []string{"cust-0"}, Message: "write failed (0)", Count: 1, GroupKey: "portal/permanent",
		}
		requireAlerts(t, rec.got(), []alert.Alert{first})

		// The window ends five minutes after the first alert: Run sends
		// the summary. The next window passes without alerts.
		time.Sleep(alert.DefaultWindow - 100*time.Second)
		synctest.Wait()
		summary := alert.Alert{
			Time: start.Add(alert.DefaultWindow), Severity: alert.Critical, System: "portal", ErrorClass: "permanent",
			Keys: []string{"cust-1", "cust-2", "cust-3"}, Message: "write failed (99)", Count: 99, GroupKey: "portal/permanent",
		}
		requireAlerts(t, rec.got(), []alert.Alert{first, summary})
		time.Sleep(2 * alert.DefaultWindow)
		synctest.Wait()
		requireAlerts(t, rec.got(), []alert.Alert{first, summary})

		for range 2 {
			if err := g.Resolve(ctx, "portal/permanent"); err != nil {
				t.Fatal(err)
			}
		}
		resolved := alert.Alert{
			Time: start.Add(3 * alert.DefaultWindow), Severity: alert.SeverityResolved, System: "portal",
			ErrorClass: "permanent", Message: "resolved", Count: 100, GroupKey: "portal/permanent", Resolved: true,
		}
		requireAlerts(t, rec.got(), []alert.Alert{first, summary, resolved})

		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v; want nil", err)
		}
	})
}

// TestGrouperWithoutRun drives a Grouper by a fake clock, without Run:
// windows end lazily, at the next alert of the group or at Flush.
func TestGrouperWithoutRun(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: t0}
	rec := &recorder{}
	g, err := alert.NewGrouper(rec, alert.GrouperConfig{Window: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	send := func(a alert.Alert) {
		t.Helper()
		if err := g.Alert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	portal := alert.Alert{Severity: alert.Warning, System: "portal", ErrorClass: "transient", Keys: []string{"a"}, Message: "timeout"}
	erp := alert.Alert{Severity: alert.Critical, System: "erp", ErrorClass: "permanent", Keys: []string{"b"}, Message: "400"}
	named := alert.Alert{Severity: alert.Warning, System: "portal", ErrorClass: "transient", GroupKey: "nightly-import", Message: "slow", Count: 3}

	send(portal) // sent at once
	send(erp)    // another group: sent at once
	send(named)  // its own GroupKey: sent at once, Count kept
	clock.Advance(10 * time.Second)
	send(portal) // folded
	send(portal) // folded; the key is not repeated
	clock.Advance(time.Minute)
	send(portal) // the window has ended: the summary, then this one folded into the next window
	if err := g.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if err := g.Flush(ctx); err != nil { // portal: summary of 1; erp, named: windows close silently
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if err := g.Flush(ctx); err != nil { // portal's window closes silently
		t.Fatal(err)
	}
	send(erp) // erp's window had closed: sent at once
	// A resolved alert resolves its group with its own message; the group
	// of named was never resolved and is not affected.
	send(alert.Alert{System: "erp", ErrorClass: "permanent", Resolved: true, Message: "erp is back"})
	if err := g.Resolve(ctx, "nobody/never"); err != nil {
		t.Fatal(err)
	}

	at := func(d time.Duration, a alert.Alert, count int, group string, keys ...string) alert.Alert {
		a.Time, a.Count, a.GroupKey, a.Keys = t0.Add(d), count, group, keys
		return a
	}
	requireAlerts(t, rec.got(), []alert.Alert{
		at(0, portal, 1, "portal/transient", "a"),
		at(0, erp, 1, "erp/permanent", "b"),
		at(0, named, 3, "nightly-import"),
		at(70*time.Second, portal, 2, "portal/transient", "a"),
		at(130*time.Second, portal, 1, "portal/transient", "a"),
		at(190*time.Second, erp, 1, "erp/permanent", "b"),
		{Time: t0.Add(190 * time.Second), Severity: alert.SeverityResolved, Resolved: true, System: "erp",
			ErrorClass: "permanent", GroupKey: "erp/permanent", Message: "erp is back", Count: 2},
	})
}

// TestGrouperResolveSendsPendingSummary: resolving a group within a window
// first sends what was folded, so that no occurrence goes unreported.
func TestGrouperResolveSendsPendingSummary(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: t0}
	rec := &recorder{}
	g, err := alert.NewGrouper(rec, alert.GrouperConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	a := alert.Alert{Severity: alert.Warning, System: "portal", ErrorClass: "rate_limited", Message: "429"}
	for range 3 {
		if err := g.Alert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	if err := g.Resolve(ctx, "portal/rate_limited"); err != nil {
		t.Fatal(err)
	}
	group := "portal/rate_limited"
	requireAlerts(t, rec.got(), []alert.Alert{
		{Time: t0, Severity: alert.Warning, System: "portal", ErrorClass: "rate_limited", Message: "429", Count: 1, GroupKey: group},
		{Time: t0.Add(time.Second), Severity: alert.Warning, System: "portal", ErrorClass: "rate_limited", Message: "429", Count: 2, GroupKey: group},
		{Time: t0.Add(time.Second), Severity: alert.SeverityResolved, Resolved: true, System: "portal", ErrorClass: "rate_limited", Message: "resolved", Count: 3, GroupKey: group},
	})
}

// TestGrouperNextFails: an error of the next Alerter is returned, and the
// grouping goes on as if the alert had been sent.
func TestGrouperNextFails(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	rec := &recorder{fail: func(call int) error {
		if call == 1 {
			return boom
		}
		return nil
	}}
	clock := &fakeClock{now: t0}
	g, err := alert.NewGrouper(rec, alert.GrouperConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	a := alert.Alert{System: "portal", ErrorClass: "transient"}
	if err := g.Alert(ctx, a); !errors.Is(err, boom) {
		t.Fatalf("first Alert: %v; want %v", err, boom)
	}
	if err := g.Alert(ctx, a); err != nil {
		t.Fatalf("second Alert (folded): %v", err)
	}
	if got := len(rec.got()); got != 0 {
		t.Fatalf("%d alerts delivered; want 0", got)
	}
}

// TestGrouperDoesNotMutateKeys: the caller's Keys are neither changed nor
// appended to, and the keys sent are capped and without duplicates.
func TestGrouperDoesNotMutateKeys(t *testing.T) {
	rec := &recorder{}
	g, err := alert.NewGrouper(rec, alert.GrouperConfig{MaxKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 3, 10)
	copy(keys, []string{"a", "a", "b"})
	if err := g.Alert(context.Background(), alert.Alert{System: "s", Keys: keys[:1]}); err != nil {
		t.Fatal(err)
	}
	if err := g.Alert(context.Background(), alert.Alert{System: "t", Keys: keys}); err != nil {
		t.Fatal(err)
	}
	got := rec.got()
	requireAlerts(t, []alert.Alert{{Keys: got[0].Keys}, {Keys: got[1].Keys}}, []alert.Alert{{Keys: []string{"a"}}, {Keys: []string{"a", "b"}}})
	if got := fmt.Sprint(keys[:4]); got != "[a a b ]" {
		t.Errorf("caller's keys became %s; want [a a b ]", got)
	}
}

func TestNewGrouperInvalid(t *testing.T) {
	rec := &recorder{}
	for _, tc := range []struct {
		name string
		next alert.Alerter
		cfg  alert.GrouperConfig
	}{
		{"nil next", nil, alert.GrouperConfig{}},
		{"negative window", rec, alert.GrouperConfig{Window: -time.Second}},
		{"negative max keys", rec, alert.GrouperConfig{MaxKeys: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := alert.NewGrouper(tc.next, tc.cfg); !errors.Is(err, alert.ErrInvalidConfig) {
				t.Errorf("NewGrouper: %v; want ErrInvalidConfig", err)
			}
		})
	}
}
