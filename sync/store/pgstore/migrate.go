package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/concordsync/concord/sync/store"
)

// ErrNewerSchema is returned by [Open] and [New] when the database's schema
// was migrated by a newer version of this package than the running one.
// Nothing is changed; upgrade the library (or use another schema).
var ErrNewerSchema = errors.New("pgstore: database schema is newer than this library")

//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order; their numbers must
// run 1, 2, 3, ... without gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for i, e := range entries { // ReadDir sorts by name
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != i+1 {
			return nil, fmt.Errorf("pgstore: migration %s is not number %d", e.Name(), i+1)
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	return out, nil
}

// SchemaVersion is the schema version this package migrates to.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate creates or upgrades schema in one transaction, serialised with
// other instances by an advisory lock on the schema's name, and creates the
// meta row with a random epoch.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	qs := pgx.Identifier{schema}.Sanitize()
	h := fnv.New64a()
	h.Write([]byte("concord/pgstore/" + schema))
	lockKey := int64(h.Sum64())

	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrating schema %q: %w", schema, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	step := func(what, sql string, args ...any) error {
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("pgstore: migrating schema %q: %s: %w", schema, what, err)
		}
		return nil
	}
	if err := step("advisory lock", `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return fmt.Errorf("pgstore: migrating schema %q: %w", schema, err)
	}
	if !exists {
		if err := step("creating the schema", `CREATE SCHEMA `+qs); err != nil {
			return err
		}
	}
	if err := step("creating schema_version", `CREATE TABLE IF NOT EXISTS `+qs+`.schema_version (
		version integer PRIMARY KEY,
		applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var cur int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM `+qs+`.schema_version`).Scan(&cur); err != nil {
		return fmt.Errorf("pgstore: reading the version of schema %q: %w", schema, err)
	}
	if cur > len(ms) {
		return fmt.Errorf("%w: schema %q is at version %d, this library knows up to %d", ErrNewerSchema, schema, cur, len(ms))
	}
	for _, m := range ms[cur:] {
		if err := step(m.name, strings.ReplaceAll(m.sql, "{schema}", qs)); err != nil {
			return err
		}
		if err := step(m.name, `INSERT INTO `+qs+`.schema_version (version) VALUES ($1)`, m.version); err != nil {
			return err
		}
	}
	if err := step("setting the epoch", `INSERT INTO `+qs+`.meta (id, epoch) VALUES (true, $1) ON CONFLICT (id) DO NOTHING`,
		int64(store.NextEpoch(0))); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrating schema %q: %w", schema, err)
	}
	return nil
}
