package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/concordsync/concord/internal/pgtest"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/pgstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// adminPool returns a pool on the test database, closed at cleanup.
func adminPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newSchema returns a fresh schema name, dropped at cleanup, so that tests
// do not see each other's tables.
func newSchema(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "concord_test_" + hex.EncodeToString(b)
	pool := adminPool(t)
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return name
}

// openStore opens a store on schema, closed at cleanup.
func openStore(t testing.TB, schema string, opts ...pgstore.Option) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), pgtest.DSN(t), append([]pgstore.Option{pgstore.WithSchema(schema)}, opts...)...)
	if err != nil {
		t.Fatalf("Open(schema %s): %v", schema, err)
	}
	t.Cleanup(s.Close)
	return s
}

// count returns the result of a count(*) query on the test database.
func count(t testing.TB, pool *pgxpool.Pool, schema, table string) int {
	t.Helper()
	var n int
	q := `SELECT count(*) FROM ` + pgx.Identifier{schema, table}.Sanitize()
	if err := pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// commit commits c to s as the engine does (encoded).
func commit(ctx context.Context, s store.Committer, c *state.Commit) error { return c.Apply(ctx, s) }

// adminPoolDSN returns a pool on dsn, closed at cleanup.
func adminPoolDSN(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
