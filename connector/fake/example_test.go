package fake_test

import (
	"context"
	"fmt"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
)

// A person edits the warehouse; the engine reads the change feed, then
// writes a field-level patch conditional on the tag it read. The write is
// echoed in the feed.
func Example() {
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	wh := fake.New("warehouse", fake.WithClock(func() time.Time { return now }))

	wh.Edit("order-1", map[string]concord.Value{"status": "packed", "city": "Oslo"})

	b, _ := wh.Changes(ctx, "", 10)
	for _, r := range b.Records {
		fmt.Println("read:", r.Key, r.Fields["status"], "tag", r.Tag)
	}

	res, _ := wh.Apply(ctx, []connector.Patch{{
		Key:     "order-1",
		Set:     map[string]concord.Value{"city": "Bergen"},
		IfMatch: b.Records[0].Tag,
	}})
	fmt.Println("write:", res[0].Key, "err", res[0].Err, "tag", res[0].Tag)

	// A second write with the old tag is a conflict.
	res, _ = wh.Apply(ctx, []connector.Patch{{Key: "order-1", Set: map[string]concord.Value{"city": "Rome"}, IfMatch: "1"}})
	fmt.Println("stale:", connector.Classify(res[0].Err) == connector.ErrConflict)

	b, _ = wh.Changes(ctx, b.Next, 10)
	for _, r := range b.Records {
		fmt.Println("echo:", r.Key, r.Fields["status"], r.Fields["city"], "tag", r.Tag)
	}
	// Output:
	// read: order-1 packed tag 1
	// write: order-1 err <nil> tag 2
	// stale: true
	// echo: order-1 packed Bergen tag 2
}

// Fault knobs make the system misbehave on purpose, to test retries.
func ExampleSystem_LoseRepliesNext() {
	ctx := context.Background()
	crm := fake.New("crm")
	crm.LoseRepliesNext(1)
	p := []connector.Patch{{Key: "c-7", Set: map[string]concord.Value{"tier": "gold"}, Create: true, IdempotencyKey: "c-7@v3"}}

	_, err := crm.Apply(ctx, p)
	fmt.Println("first try:", err, "- retryable:", connector.Retryable(err))

	res, err := crm.Apply(ctx, p) // the retry
	fmt.Println("retry:", res[0].Err, err)
	fmt.Println("effects:", crm.Effects("c-7"))
	// Output:
	// first try: transient failure: fake crm: Apply: reply lost after the patches were applied - retryable: true
	// retry: <nil> <nil>
	// effects: 1
}
