package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/concordsync/concord/internal/pgtest"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/pgstore"
)

// pgPool returns a pool on the test database, for use outside the runs'
// bubbles, closed at cleanup, and the DSN (see internal/pgtest).
func pgPool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dsn
}

// pgBackend is a PostgreSQL schema (sync/store/pgstore) as the engine's
// store. Each process has its own pool, opened and closed with it, inside
// the run's synctest bubble (a pool shared across bubbles would have its
// goroutines touch one bubble's values from another): a crash closes the
// pool, and the next process opens a new one on the same schema. A
// snapshot copies every table of the schema into another schema, and a
// restore puts those rows back (and the sequences where they were), after
// which the backend starts a new epoch, as an operator who restores a
// database from a backup does.
type pgBackend struct {
	dsn    string
	schema string
	snaps  int
	pool   *pgxpool.Pool // the current process's
	st     *pgstore.Store
	now    func() time.Time
}

func newPGBackend(dsn string) *pgBackend {
	b := make([]byte, 5)
	rand.Read(b)
	return &pgBackend{dsn: dsn, schema: "concord_sim_" + hex.EncodeToString(b)}
}

func (b *pgBackend) Name() string { return "postgres" }

func (b *pgBackend) Open(clock func() time.Time) (store.Store, error) {
	b.now = clock
	pool, err := pgxpool.New(context.Background(), b.dsn)
	if err != nil {
		return nil, err
	}
	st, err := pgstore.New(context.Background(), pool, pgstore.WithSchema(b.schema), pgstore.WithClock(clock))
	if err != nil {
		pool.Close()
		return nil, err
	}
	b.pool, b.st = pool, st
	return st, nil
}

func (b *pgBackend) Close() error {
	if b.st != nil {
		b.st.Close()
		b.pool.Close()
		b.st, b.pool = nil, nil
	}
	return nil
}

func (b *pgBackend) snapSchema(i int) string { return fmt.Sprintf("%s_snap%d", b.schema, i) }

// tables lists the schema's tables and sequences.
func (b *pgBackend) tables(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) (tables, seqs []string, err error) {
	rows, err := q.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name`, b.schema)
	if err != nil {
		return nil, nil, err
	}
	if tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, nil, err
	}
	rows, err = q.Query(ctx, `SELECT sequencename FROM pg_sequences WHERE schemaname = $1 ORDER BY sequencename`, b.schema)
	if err != nil {
		return nil, nil, err
	}
	seqs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return tables, seqs, err
}

// pgSnap is a snapshot: the schema its tables were copied to, and where each
// sequence stood.
type pgSnap struct {
	schema string
	seqs   map[string][2]any // last_value, is_called
}

func (b *pgBackend) Snapshot() (any, store.Store, error) {
	ctx := context.Background()
	snap := pgSnap{schema: b.snapSchema(b.snaps), seqs: map[string][2]any{}}
	b.snaps++
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		tables, seqs, err := b.tables(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+ident(snap.schema)); err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := tx.Exec(ctx, `CREATE TABLE `+ident(snap.schema, t)+` AS TABLE `+ident(b.schema, t)); err != nil {
				return err
			}
		}
		for _, s := range seqs {
			var last int64
			var called bool
			if err := tx.QueryRow(ctx, `SELECT last_value, is_called FROM `+ident(b.schema, s)).Scan(&last, &called); err != nil {
				return err
			}
			snap.seqs[s] = [2]any{last, called}
		}
		return nil
	})
	return snap, nil, err
}

func (b *pgBackend) Restore(s any) (store.Store, error) {
	ctx := context.Background()
	snap := s.(pgSnap)
	if err := b.Close(); err != nil {
		return nil, err
	}
	st, err := b.Open(b.now) // the next process's pool
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		tables, _, err := b.tables(ctx, tx)
		if err != nil {
			return err
		}
		live := make([]string, len(tables))
		for i, t := range tables {
			live[i] = ident(b.schema, t)
		}
		if _, err := tx.Exec(ctx, `TRUNCATE `+strings.Join(live, ", ")); err != nil {
			return err
		}
		for i, t := range tables {
			if _, err := tx.Exec(ctx, `INSERT INTO `+live[i]+` SELECT * FROM `+ident(snap.schema, t)); err != nil {
				return err
			}
		}
		for name, v := range snap.seqs {
			if _, err := tx.Exec(ctx, `SELECT setval($1::regclass, $2, $3)`, ident(b.schema, name), v[0], v[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := st.NewEpoch(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// drop removes the schema and its snapshots, by pool (one outside the
// bubble).
func (b *pgBackend) drop(t *testing.T, pool *pgxpool.Pool) {
	for i := -1; i < b.snaps; i++ {
		name := b.schema
		if i >= 0 {
			name = b.snapSchema(i)
		}
		if _, err := pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+ident(name)+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	}
}

func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }
