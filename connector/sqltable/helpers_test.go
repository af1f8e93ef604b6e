package sqltable

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/pgtest"
)

// backend is a database the tests run against.
type backend struct {
	name    string
	dialect Dialect
	// open returns a database for one test, closed in t.Cleanup.
	open func(t testing.TB) *sql.DB
	// sqlType is the column type the tests declare for a Type.
	sqlType map[Type]string
	// tsType is the type of UpdatedAt columns.
	tsType string
}

var sqliteBackend = backend{
	name:    "sqlite",
	dialect: SQLite,
	open: func(t testing.TB) *sql.DB {
		t.Helper()
		path := filepath.Join(t.TempDir(), "test.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	},
	sqlType: map[Type]string{Text: "TEXT", Int64: "INTEGER", Float64: "REAL", Bool: "BOOLEAN", Decimal: "TEXT", Bytes: "BLOB", Time: "DATETIME"},
	tsType:  "DATETIME",
}

var postgresBackend = backend{
	name:    "postgres",
	dialect: PostgreSQL,
	open: func(t testing.TB) *sql.DB {
		t.Helper()
		db, err := sql.Open("pgx", pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.PingContext(context.Background()); err != nil {
			t.Fatalf("PostgreSQL at CONCORD_TEST_POSTGRES_DSN: %v", err)
		}
		return db
	},
	sqlType: map[Type]string{Text: "text", Int64: "bigint", Float64: "double precision", Bool: "boolean", Decimal: "numeric", Bytes: "bytea", Time: "timestamptz"},
	tsType:  "timestamptz",
}

var backends = []backend{sqliteBackend, postgresBackend}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// schema is a test table: its DDL and the matching Config.
type schema struct {
	be    backend
	db    *sql.DB
	cfg   Config
	table string
	seq   string
}

// newSchema creates a table for cfg (DB, Dialect and Table are filled in)
// and drops it in t.Cleanup.
func newSchema(t testing.TB, be backend, cfg Config) *schema {
	t.Helper()
	db := be.open(t)
	s := &schema{be: be, db: db, table: uniqueName("sqlt")}
	cfg.DB, cfg.Dialect, cfg.Table = db, be.dialect, s.table
	var cols, keys []string
	for _, k := range cfg.Key {
		cols = append(cols, fmt.Sprintf("%q %s NOT NULL", k.Name, be.sqlType[k.Type]))
		keys = append(keys, fmt.Sprintf("%q", k.Name))
	}
	for _, f := range cfg.Fields {
		cols = append(cols, fmt.Sprintf("%q %s", f.Name, be.sqlType[f.Type]))
	}
	if cfg.UpdatedAt != "" {
		cols = append(cols, fmt.Sprintf("%q %s NOT NULL", cfg.UpdatedAt, be.tsType))
	}
	if cfg.Version != "" {
		cols = append(cols, fmt.Sprintf("%q %s NOT NULL", cfg.Version, be.sqlType[Int64]))
	}
	if cfg.Deleted != "" {
		cols = append(cols, fmt.Sprintf("%q %s NOT NULL DEFAULT FALSE", cfg.Deleted, be.sqlType[Bool]))
	}
	cols = append(cols, "PRIMARY KEY ("+strings.Join(keys, ", ")+")")
	ctx := context.Background()
	if cfg.Track == TrackVersion && be.dialect == PostgreSQL {
		s.seq = s.table + "_seq"
		cfg.Sequence = s.seq
		mustExec(t, db, "CREATE SEQUENCE "+s.seq)
	}
	mustExec(t, db, fmt.Sprintf("CREATE TABLE %s (%s)", s.table, strings.Join(cols, ", ")))
	track := cfg.UpdatedAt
	if cfg.Track == TrackVersion {
		track = cfg.Version
	}
	mustExec(t, db, fmt.Sprintf("CREATE INDEX %s_track ON %s (%q, %s)", s.table, s.table, track, strings.Join(keys, ", ")))
	t.Cleanup(func() {
		if be.dialect == PostgreSQL {
			_, _ = db.ExecContext(ctx, "DROP TABLE IF EXISTS "+s.table)
			if s.seq != "" {
				_, _ = db.ExecContext(ctx, "DROP SEQUENCE IF EXISTS "+s.seq)
			}
		}
	})
	s.cfg = cfg
	return s
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// dbValue converts a test value to what plain SQL writes for it.
func (s *schema) dbValue(v concord.Value) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case bool:
		if s.be.dialect == SQLite {
			if x {
				return int64(1)
			}
			return int64(0)
		}
		return x
	case time.Time:
		if s.be.dialect == SQLite {
			return x.UTC().Format(sqliteTimeLayout)
		}
		return x
	}
	return v
}

func (s *schema) ph(n int) string { return s.be.dialect.placeholder(n) }

// nextVersion is the SQL a person's edit writes to the Version column.
func (s *schema) nextVersion(cur string) string {
	switch {
	case s.cfg.Track == TrackVersion && s.be.dialect == PostgreSQL:
		return fmt.Sprintf("nextval('%s')", s.seq)
	case s.cfg.Track == TrackVersion:
		return fmt.Sprintf("(SELECT COALESCE(MAX(%q), 0) + 1 FROM %s)", s.cfg.Version, s.table)
	case cur == "":
		return "1"
	}
	return cur + " + 1"
}

// edit writes a row "as a person" with plain SQL, at time at (UpdatedAt).
func (s *schema) edit(ctx context.Context, q execer, key []any, at time.Time, fields map[string]concord.Value) error {
	var cols, vals, upd []string
	var args []any
	add := func(col string, v any) {
		args = append(args, v)
		cols = append(cols, fmt.Sprintf("%q", col))
		vals = append(vals, s.ph(len(args)))
	}
	for i, k := range s.cfg.Key {
		add(k.Name, key[i])
	}
	for name, v := range fields {
		add(name, s.dbValue(v))
		upd = append(upd, fmt.Sprintf("%q = excluded.%q", name, name))
	}
	if s.cfg.UpdatedAt != "" {
		add(s.cfg.UpdatedAt, s.dbValue(at))
		upd = append(upd, fmt.Sprintf("%q = excluded.%q", s.cfg.UpdatedAt, s.cfg.UpdatedAt))
	}
	if s.cfg.Version != "" {
		cols = append(cols, fmt.Sprintf("%q", s.cfg.Version))
		vals = append(vals, s.nextVersion(""))
		upd = append(upd, fmt.Sprintf("%q = %s", s.cfg.Version, s.nextVersion(fmt.Sprintf("%s.%q", s.table, s.cfg.Version))))
	}
	if s.cfg.Deleted != "" {
		upd = append(upd, fmt.Sprintf("%q = FALSE", s.cfg.Deleted))
	}
	var keys []string
	for _, k := range s.cfg.Key {
		keys = append(keys, fmt.Sprintf("%q", k.Name))
	}
	q2 := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s",
		s.table, strings.Join(cols, ", "), strings.Join(vals, ", "), strings.Join(keys, ", "), strings.Join(upd, ", "))
	_, err := q.ExecContext(ctx, q2, args...)
	return err
}

// remove deletes a row as a person: soft if the table has a Deleted column.
func (s *schema) remove(ctx context.Context, key []any, at time.Time) error {
	var conds []string
	var args []any
	if s.cfg.Deleted == "" {
		for i, k := range s.cfg.Key {
			args = append(args, key[i])
			conds = append(conds, fmt.Sprintf("%q = %s", k.Name, s.ph(len(args))))
		}
		_, err := s.db.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s", s.table, strings.Join(conds, " AND ")), args...)
		return err
	}
	set := []string{fmt.Sprintf("%q = TRUE", s.cfg.Deleted)}
	if s.cfg.UpdatedAt != "" {
		args = append(args, s.dbValue(at))
		set = append(set, fmt.Sprintf("%q = %s", s.cfg.UpdatedAt, s.ph(len(args))))
	}
	if s.cfg.Version != "" {
		set = append(set, fmt.Sprintf("%q = %s", s.cfg.Version, s.nextVersion(fmt.Sprintf("%q", s.cfg.Version))))
	}
	for i, k := range s.cfg.Key {
		args = append(args, key[i])
		conds = append(conds, fmt.Sprintf("%q = %s", k.Name, s.ph(len(args))))
	}
	_, err := s.db.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET %s WHERE %s", s.table, strings.Join(set, ", "), strings.Join(conds, " AND ")), args...)
	return err
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func mustNew(t testing.TB, cfg Config) *Table {
	t.Helper()
	tb, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}
