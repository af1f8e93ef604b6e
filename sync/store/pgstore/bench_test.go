package pgstore_test

import (
	"fmt"
	"testing"

	"github.com/concordsync/concord/internal/state"
	"github.com/jackc/pgx/v5"
)

// BenchmarkCommit1000 commits the states of 1,000 records through the
// store (encoding, lease-free optimistic batch, revision checks) and, for
// comparison, upserts the same encoded bytes with a raw pgx batch in a
// transaction. The store's overhead is the ratio of the two.
func BenchmarkCommit1000(b *testing.B) {
	schema := newSchema(b)
	s := openStore(b, schema)
	pool := adminPool(b)
	const n = 1000
	states := make([]*state.Record, n)
	for i := range states {
		states[i] = state.Sample(fmt.Sprintf("rec-%05d", i), i%10 == 0, i%100 == 0)
	}
	if err := commit(ctx, s, &state.Commit{States: states}); err != nil {
		b.Fatal(err)
	}

	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			if err := commit(ctx, s, &state.Commit{States: states}); err != nil {
				b.Fatal(err)
			}
		}
	})

	table := pgx.Identifier{schema, "raw_states"}.Sanitize()
	if _, err := pool.Exec(ctx, `CREATE TABLE `+table+` (LIKE `+pgx.Identifier{schema, "states"}.Sanitize()+` INCLUDING ALL)`); err != nil {
		b.Fatal(err)
	}
	data := make([][]byte, n)
	for i, st := range states {
		var err error
		if data[i], err = state.EncodeState(nil, st); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("raw-pgx", func(b *testing.B) {
		upsert := `INSERT INTO ` + table + ` (key, rev, pending, held, data) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (key) DO UPDATE SET rev = excluded.rev, pending = excluded.pending, held = excluded.held, data = excluded.data`
		var rev int64
		for b.Loop() {
			rev++
			tx, err := pool.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			batch := &pgx.Batch{}
			for i, st := range states {
				batch.Queue(upsert, st.Key, rev, i%10 == 0, i%100 == 0, data[i])
			}
			if err := tx.SendBatch(ctx, batch).Close(); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
