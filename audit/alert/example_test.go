package alert_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/concordsync/concord/audit/alert"
)

// A handler without time, so that the output is stable.
func withoutTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func ExampleSlog() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: withoutTime}))
	a := alert.Slog(logger)
	err := a.Alert(context.Background(), alert.Alert{
		Severity: alert.Critical, System: "warehouse", ErrorClass: "permanent",
		Keys: []string{"sku-7"}, Message: `HTTP 422: "weight" must be positive`,
	})
	fmt.Println(err)
	// Output:
	// level=ERROR msg="[CRITICAL] warehouse: permanent" severity=critical system=warehouse error_class=permanent message="HTTP 422: \"weight\" must be positive" keys=[sku-7]
	// <nil>
}

func ExampleGrouper() {
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now } // a fake clock
	show := alert.AlerterFunc(func(_ context.Context, a alert.Alert) error {
		fmt.Println(a.Time.Format("15:04"), a.Title(), a.Keys)
		return nil
	})
	g, err := alert.NewGrouper(show, alert.GrouperConfig{Now: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	// An outage: a thousand writes to the portal time out in two minutes.
	for i := range 1000 {
		g.Alert(ctx, alert.Alert{
			Severity: alert.Warning, System: "portal", ErrorClass: "transient",
			Keys: []string{fmt.Sprintf("cust-%d", i%3)}, Message: "context deadline exceeded",
		})
		now = now.Add(120 * time.Millisecond)
	}
	// The window ends; Run would flush by itself.
	now = now.Add(5 * time.Minute)
	g.Flush(ctx)
	// The portal answers again.
	g.Resolve(ctx, "portal/transient")
	// Output:
	// 09:00 [WARNING] portal: transient [cust-0]
	// 09:07 [WARNING] portal: transient (999 occurrences) [cust-1 cust-2 cust-0]
	// 09:07 [RESOLVED] portal: transient (1000 occurrences) []
}

func ExampleNewAsync() {
	attempts := 0
	flaky := alert.AlerterFunc(func(_ context.Context, a alert.Alert) error {
		attempts++
		if attempts < 3 {
			return fmt.Errorf("attempt %d: 503", attempts)
		}
		fmt.Println("delivered:", a.Title())
		return nil
	})
	q, err := alert.NewAsync(flaky, alert.AsyncConfig{InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := q.Start(ctx); err != nil { // or go q.Run(ctx) in the host's own goroutine
		fmt.Println(err)
		return
	}
	// Alert returns at once; the worker retries in the background.
	fmt.Println(q.Alert(ctx, alert.Alert{Severity: alert.Critical, System: "erp", ErrorClass: "permanent"}))
	// On shutdown, Close drains the queue within its deadline.
	fmt.Println(q.Close(), attempts, q.Dropped(), q.Failed())
	// Output:
	// <nil>
	// delivered: [CRITICAL] erp: permanent
	// <nil> 3 0 0
}
