package rest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/rest"
	"github.com/concordsync/concord/connector/rest/resttest"
)

// A warehouse API as a system: a cursor-paginated change feed, nested
// fields, conditional PATCH writes, bearer-token auth over TLS and
// read-after-write verification.
func Example() {
	ctx := context.Background()
	clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	api := resttest.New(resttest.Options{Token: "s3cret", Clock: func() time.Time { return clock }})
	defer api.Close()
	api.Edit("order-1", map[string]any{"status": "packed", "ship_to": map[string]any{"city": "Oslo", "zip": "0150"}})

	wh, err := rest.New(rest.Config{
		BaseURL: api.URL(), // https://…/v1
		Client:  api.Client(),
		Auth: rest.BearerToken(func(ctx context.Context) (string, error) {
			return "s3cret", nil // ask the token source here: it is called per request
		}),
		Timeout:      10 * time.Second,
		Collection:   "/records",
		KeyPath:      "id",
		TagPath:      "version",
		ModifiedPath: "updated_at",
		DeletedPath:  "deleted",
		Fields: map[string]string{
			"status": "status",
			"city":   "ship_to.city",
			"zip":    "ship_to.zip",
		},
		Changes: rest.Changes{
			Path: "/changes", ItemsPath: "data", LimitParam: "limit",
			CursorParam: "cursor", NextCursorPath: "next_cursor", HasMorePath: "has_more",
		},
		Verify: &rest.Verify{Checks: 3},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	b, _ := wh.Changes(ctx, "", 100)
	r := b.Records[0]
	fmt.Println("read:", r.Key, r.Fields["status"], r.Fields["city"], r.Fields["zip"], "tag", r.Tag, "more", b.More)

	clock = clock.Add(time.Minute)
	res, _ := wh.Apply(ctx, []connector.Patch{{
		Key: "order-1", Set: map[string]concord.Value{"city": "Bergen"}, IfMatch: r.Tag,
	}})
	fmt.Println("write:", res[0].Err, "tag", res[0].Tag, res[0].Modified.Format(time.RFC3339))

	res, _ = wh.Apply(ctx, []connector.Patch{{Key: "order-1", Set: map[string]concord.Value{"city": "Rome"}, IfMatch: r.Tag}})
	fmt.Println("stale tag:", connector.Classify(res[0].Err) == connector.ErrConflict)

	doc, _ := api.Doc("order-1")
	fmt.Println("api holds:", doc["ship_to"])

	_, err = rest.New(rest.Config{BaseURL: "http://api.example.com"})
	fmt.Println(err)
	// Output:
	// read: order-1 packed Oslo 0150 tag "1" more false
	// write: <nil> tag "2" 2026-03-01T09:01:00Z
	// stale tag: true
	// api holds: map[city:Bergen zip:0150]
	// rest: invalid configuration: BaseURL: "http://api.example.com" is plain http: TLS is required (set AllowInsecureHTTP only for tests)
}
