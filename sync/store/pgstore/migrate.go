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

	"github.com/concordsync/concord/internal/state"
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
		if fix := backfills[m.version]; fix != nil {
			if err := fix(ctx, tx, qs); err != nil {
				return fmt.Errorf("pgstore: migrating schema %q: %s: %w", schema, m.name, err)
			}
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

// backfills are the steps of migrations that SQL alone cannot do, by the
// version they complete; each runs in the migration's transaction right
// after its SQL, on the schema quoted qs.
var backfills = map[int]func(ctx context.Context, tx pgx.Tx, qs string) error{
	3: backfillDeadLetterIndex,
}

// backfillDeadLetterIndex fills the key and class columns (added by
// migration 3) of the dead letters written before them, from what their
// data holds (state.LetterIndex, which opens no sealed value), then makes
// both columns NOT NULL. Data is opaque to the store: a row whose data is
// not the engine's encoding, or fails its checksum, gets the empty key and
// class (reading it still reports the damage).
func backfillDeadLetterIndex(ctx context.Context, tx pgx.Tx, qs string) error {
	rows, err := tx.Query(ctx, `SELECT id, data FROM `+qs+`.dead_letters WHERE key IS NULL ORDER BY id`)
	if err != nil {
		return err
	}
	var ids []int64
	var keys, classes [][]byte
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			rows.Close()
			return err
		}
		var key, class string
		if p, err := openRow(domainDeadLetter, nil, data, legacyDeadLetter); err == nil {
			if _, k, c, err := state.LetterIndex(p); err == nil {
				key, class = k, c
			}
		}
		ids, keys, classes = append(ids, id), append(keys, []byte(key)), append(classes, []byte(class))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE `+qs+`.dead_letters AS d SET key = u.key, class = u.class
			FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u(id, key, class) WHERE d.id = u.id`, ids, keys, classes); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `ALTER TABLE `+qs+`.dead_letters ALTER COLUMN key SET NOT NULL, ALTER COLUMN class SET NOT NULL`)
	return err
}
