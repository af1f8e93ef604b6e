package sqltable_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/sqltable"
)

// A SQLite table of customers as a system: a person's edit made with SQL
// shows in the change feed, and a field-level patch conditional on the row
// version updates only the named column.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sqltable-example")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "portal.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE customers (
		id TEXT PRIMARY KEY, city TEXT, vip BOOLEAN, credit TEXT,
		updated_at TEXT NOT NULL, version INTEGER NOT NULL)`)
	if err != nil {
		panic(err)
	}

	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	customers, err := sqltable.New(sqltable.Config{
		DB:      db,
		Dialect: sqltable.SQLite,
		Table:   "customers",
		Key:     []sqltable.Column{{Name: "id", Type: sqltable.Text}},
		Fields: []sqltable.Column{
			{Name: "city", Type: sqltable.Text},
			{Name: "vip", Type: sqltable.Bool},
			{Name: "credit", Type: sqltable.Decimal},
		},
		UpdatedAt: "updated_at",
		Version:   "version",
		Window:    time.Minute, // longer than any write transaction
		Now:       func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}

	// A person edits the portal with SQL.
	_, err = db.Exec(`INSERT INTO customers VALUES ('c-1', 'Oslo', 1, '120.50', '2025-03-01 08:59:00.000000000', 1)`)
	if err != nil {
		panic(err)
	}
	b, err := customers.Changes(ctx, "", 100)
	if err != nil {
		panic(err)
	}
	r := b.Records[0]
	fmt.Printf("read %s: city %v, vip %v (%T), credit %v, tag %s\n", r.Key, r.Fields["city"], r.Fields["vip"], r.Fields["vip"], r.Fields["credit"], r.Tag)

	res, err := customers.Apply(ctx, []connector.Patch{
		{Key: "c-1", Set: map[string]concord.Value{"city": "Bergen"}, IfMatch: r.Tag},
		{Key: "c-1", Set: map[string]concord.Value{"city": "Rome"}, IfMatch: r.Tag},
		{Key: "c-1", Set: map[string]concord.Value{"vip": "yes"}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("write:", res[0].Err, "tag", res[0].Tag, res[0].Modified.Format(time.RFC3339))
	fmt.Println("stale tag is a conflict:", connector.Classify(res[1].Err) == connector.ErrConflict)
	fmt.Println("out of type:", res[2].Err)

	b, _ = customers.Changes(ctx, b.Next, 100)
	for _, r := range b.Records {
		fmt.Printf("echo %s: city %v, credit %v, tag %s\n", r.Key, r.Fields["city"], r.Fields["credit"], r.Tag)
	}
	// Output:
	// read c-1: city Oslo, vip true (bool), credit 120.50, tag 1
	// write: <nil> tag 2 2025-03-01T09:00:00Z
	// stale tag is a conflict: true
	// out of type: permanent failure: sqltable customers: record "c-1", field "vip": value does not fit the column's type: declared bool: want a bool, got string
	// echo c-1: city Bergen, credit 120.50, tag 2
}
