package sqltable

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

const benchRows = 100_000

// benchTable creates a SQLite table of benchRows rows.
func benchTable(b *testing.B) (*schema, *Table) {
	b.Helper()
	cfg := Config{
		Key:       []Column{{"id", Text}},
		Fields:    []Column{{"name", Text}, {"qty", Int64}, {"price", Decimal}, {"active", Bool}},
		UpdatedAt: "updated_at",
		Version:   "version",
	}
	s := newSchema(b, sqliteBackend, cfg)
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	st, err := tx.PrepareContext(ctx, fmt.Sprintf(`INSERT INTO %s (id, name, qty, price, active, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, 1)`, s.table))
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range benchRows {
		if _, err := st.ExecContext(ctx, fmt.Sprintf("c%06d", i), "customer "+strconv.Itoa(i), int64(i), strconv.Itoa(i)+".50", int64(i%2), at.Add(time.Duration(i/10)*time.Millisecond).Format(sqliteTimeLayout)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return s, mustNew(b, s.cfg)
}

const benchPage = 1000

// BenchmarkRead reads all rows in pages of 1000: through Changes, and with
// plain keyset-paged SELECTs scanned into typed variables.
func BenchmarkRead(b *testing.B) {
	s, tb := benchTable(b)
	ctx := context.Background()
	b.Run("sqltable", func(b *testing.B) {
		for b.Loop() {
			n := 0
			var cur connector.Cursor
			for {
				batch, err := tb.Changes(ctx, cur, benchPage)
				if err != nil {
					b.Fatal(err)
				}
				n += len(batch.Records)
				cur = batch.Next
				if !batch.More {
					break
				}
			}
			if n != benchRows {
				b.Fatalf("read %d rows", n)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		type rec struct {
			id, name, price string
			qty, version    int64
			active          bool
			updated         time.Time
		}
		first := fmt.Sprintf(`SELECT id, CAST(updated_at AS TEXT), version, name, qty, price, active FROM %s ORDER BY updated_at, id LIMIT %d`, s.table, benchPage)
		next := fmt.Sprintf(`SELECT id, CAST(updated_at AS TEXT), version, name, qty, price, active FROM %s WHERE (updated_at, id) > (?, ?) ORDER BY updated_at, id LIMIT %d`, s.table, benchPage)
		for b.Loop() {
			var out []rec
			var lastAt, lastID string
			for {
				var rows *sql.Rows
				var err error
				if lastID == "" {
					rows, err = s.db.QueryContext(ctx, first)
				} else {
					rows, err = s.db.QueryContext(ctx, next, lastAt, lastID)
				}
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for rows.Next() {
					var r rec
					var at string
					var active int64
					if err := rows.Scan(&r.id, &at, &r.version, &r.name, &r.qty, &r.price, &active); err != nil {
						b.Fatal(err)
					}
					r.active = active == 1
					if r.updated, err = time.Parse(sqliteTimeLayout, at); err != nil {
						b.Fatal(err)
					}
					out = append(out, r)
					lastAt, lastID = at, r.id
					got++
				}
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
				rows.Close()
				if got < benchPage {
					break
				}
			}
			if len(out) != benchRows {
				b.Fatalf("read %d rows", len(out))
			}
		}
	})
}

// BenchmarkPatch updates two fields of every row, each row in its own
// transaction: through Apply in batches of 1000, and with plain UPDATE
// statements.
func BenchmarkPatch(b *testing.B) {
	s, tb := benchTable(b)
	ctx := context.Background()
	round := 0
	b.Run("sqltable", func(b *testing.B) {
		for b.Loop() {
			round++
			patches := make([]connector.Patch, 0, benchPage)
			for i := range benchRows {
				patches = append(patches, connector.Patch{Key: fmt.Sprintf("c%06d", i), Set: map[string]concord.Value{"qty": i + round, "name": "patched " + strconv.Itoa(round)}})
				if len(patches) == benchPage {
					res, err := tb.Apply(ctx, patches)
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range res {
						if r.Err != nil {
							b.Fatal(r.Err)
						}
					}
					patches = patches[:0]
				}
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		q := fmt.Sprintf(`UPDATE %s SET name = ?, qty = ?, updated_at = ?, version = COALESCE(version, 0) + 1 WHERE id = ? RETURNING CAST(updated_at AS TEXT), version`, s.table)
		for b.Loop() {
			round++
			for i := range benchRows {
				tx, err := s.db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				var at string
				var version int64
				err = tx.QueryRowContext(ctx, q, "patched "+strconv.Itoa(round), int64(i+round), time.Now().UTC().Format(sqliteTimeLayout), fmt.Sprintf("c%06d", i)).Scan(&at, &version)
				if err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
