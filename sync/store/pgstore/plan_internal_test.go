package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/concordsync/concord/internal/pgtest"
)

// Keys and AuditEntries must not read every state or every entry: on
// tables of 20,000 rows each, PostgreSQL plans both as index range scans
// (the primary keys, whose "C" collation and bigint order are the orders
// the methods promise), never as sequential scans.
func TestKeysAndAuditEntriesAreIndexRangeScans(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "concord_test_" + hex.EncodeToString(b)
	s, err := Open(ctx, dsn, WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer s.pool.Exec(context.Background(), `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`) //nolint:errcheck
	qs := pgx.Identifier{schema}.Sanitize()
	for _, q := range []string{
		`INSERT INTO ` + qs + `.states (key, rev, pending, held, data) SELECT 'k' || i, 1, false, false, '\x00' FROM generate_series(1, 20000) i`,
		`INSERT INTO ` + qs + `.audit_log (seq, data) SELECT i, '\x00' FROM generate_series(1, 20000) i`,
		`ANALYZE ` + qs + `.states`,
		`ANALYZE ` + qs + `.audit_log`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		query string
		args  []any
		index string
	}{
		{"Keys", s.q.keys, []any{"k15000", int64(100)}, "states_pkey"},
		{"AuditEntries", s.q.auditRange, []any{int64(10000), int64(100)}, "audit_log_pkey"},
		{"AuditHead", s.q.auditHead, nil, "audit_log_pkey"},
	} {
		rows, err := s.pool.Query(ctx, "EXPLAIN "+c.query, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if !strings.Contains(plan, c.index) || strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Sort") {
			t.Errorf("%s is not an index range scan of %s:\n%s", c.name, c.index, plan)
		}
	}
}
