package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

func ExampleJSONLines() {
	var file strings.Builder // an *os.File in a real host
	sink := audit.JSONLines(&file)
	err := sink.Emit(context.Background(), []audit.Event{{
		Time:    time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC),
		Kind:    audit.MergeDecided,
		System:  "portal",
		Key:     "cust-42",
		Unit:    "email",
		From:    map[string]concord.Value{"email": "ann@old.example"},
		To:      map[string]concord.Value{"email": "ann@new.example"},
		Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: 3}),
		Rule:    "fast-forward",
	}})
	if err != nil {
		fmt.Println(err)
	}
	fmt.Print(file.String())

	events, err := audit.ReadJSONLines(strings.NewReader(file.String()))
	fmt.Println(len(events), events[0].Key, events[0].Version, err)
	// Output:
	// {"time":"2025-03-14T09:00:00Z","kind":"merge.decided","system":"portal","key":"cust-42","unit":"email","from":{"email":"ann@old.example"},"to":{"email":"ann@new.example"},"version":"{1:3}","rule":"fast-forward"}
	// 1 cust-42 {1:3} <nil>
}

func ExampleMulti() {
	webhook := audit.SinkFunc(func(context.Context, []audit.Event) error {
		return errors.New("503 from webhook")
	})
	counted := 0
	counter := audit.SinkFunc(func(_ context.Context, events []audit.Event) error {
		counted += len(events)
		return nil
	})

	sink := audit.Multi(webhook, counter)
	err := sink.Emit(context.Background(), []audit.Event{{Kind: audit.WriteSucceeded, Key: "cust-42"}})

	var se *audit.SinkError
	if errors.As(err, &se) {
		fmt.Println("failed sink:", se.Index)
	}
	fmt.Println(err)
	fmt.Println("the sink after it still saw", counted, "event")
	// Output:
	// failed sink: 0
	// audit: sink 0: 503 from webhook
	// the sink after it still saw 1 event
}

func ExampleSlog() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		// Drop the time so that the output is reproducible.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	sink := audit.Slog(logger)
	_ = sink.Emit(context.Background(), []audit.Event{
		{
			Kind: audit.EditObserved, System: "portal", Key: "cust-42", Unit: "email",
			From: map[string]concord.Value{"email": "ann@old.example"},
			To:   map[string]concord.Value{"email": "ann@new.example"},
		},
		{
			Kind: audit.WriteFailed, System: "warehouse", Key: "cust-42", Fields: []string{"mail"},
			Error: "503 Service Unavailable", ErrorClass: "transient", Cycle: 12,
		},
	})
	// Output:
	// level=INFO msg=edit.observed key=cust-42 system=portal unit=email from.email=ann@old.example to.email=ann@new.example
	// level=WARN msg=write.failed key=cust-42 system=warehouse fields=[mail] error="503 Service Unavailable" error_class=transient cycle=12
}
