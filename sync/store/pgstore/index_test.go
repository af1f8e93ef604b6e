package pgstore_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/concordsync/concord/internal/checksum"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/pgstore"
)

// A schema at version 2, with dead letters as version 2 stored them (with
// the store's checksum; one from before checksums; one whose opaque data
// is not the engine's encoding), is migrated to version 3: each letter is
// indexed by the key and class its data holds (the opaque one by the
// empty ones), the columns are NOT NULL, and new commits index theirs.
func TestMigrationIndexesVersion2DeadLetters(t *testing.T) {
	pool := adminPool(t)
	schema := newSchema(t)
	qs := pgx.Identifier{schema}.Sanitize()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`CREATE SCHEMA ` + qs)
	exec(`CREATE TABLE ` + qs + `.schema_version (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`)
	for v, name := range []string{"0001_init.sql", "0002_values_audit.sql"} {
		b, err := os.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		exec(strings.ReplaceAll(string(b), "{schema}", qs))
		exec(`INSERT INTO `+qs+`.schema_version (version) VALUES ($1)`, v+1)
	}
	exec(`INSERT INTO ` + qs + `.meta (id, epoch) VALUES (true, 7)`)
	letters := []state.DeadLetter{
		{System: "a", Key: "k1", Inbound: true, Class: "merge", Attempts: 1, Reason: "merge failed"},
		{System: "b", Key: "k1", Class: "permanent", Reason: "refused"},
		{System: "a", Key: "k\x00é", Inbound: true, Class: "invalid"},
	}
	for i, d := range letters {
		b, err := state.EncodeDeadLetter(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			b = checksum.Seal(nil, "pgstore/dead-letter", nil, b)
		}
		exec(`INSERT INTO `+qs+`.dead_letters (data) VALUES ($1)`, b)
	}
	exec(`INSERT INTO `+qs+`.dead_letters (data) VALUES ($1)`, checksum.Seal(nil, "pgstore/dead-letter", nil, []byte("opaque")))

	s := openStore(t, schema)
	check := func(what string, got []store.DeadLetter, err error, want ...uint64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		ids := []uint64{}
		for _, d := range got {
			ids = append(ids, d.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%s = %v; want %v", what, ids, want)
		}
	}
	got, err := s.DeadLettersOf(ctx, []string{"k1"})
	check("DeadLettersOf(k1)", got, err, 1, 2)
	got, err = s.DeadLettersOf(ctx, []string{"k\x00é", "k1", "none"})
	check("DeadLettersOf(k\\x00é, k1, none)", got, err, 1, 2, 3)
	got, err = s.DeadLettersOf(ctx, []string{""})
	check(`DeadLettersOf("")`, got, err, 4)
	got, err = s.DeadLettersOfClass(ctx, "merge")
	check("DeadLettersOfClass(merge)", got, err, 1)
	got, err = s.DeadLettersOfClass(ctx, "invalid")
	check("DeadLettersOfClass(invalid)", got, err, 3)
	var nullable int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = $1
		AND table_name = 'dead_letters' AND column_name IN ('key', 'class') AND is_nullable = 'YES'`, schema).Scan(&nullable); err != nil {
		t.Fatal(err)
	}
	if nullable != 0 {
		t.Errorf("%d of the key and class columns are nullable after the migration", nullable)
	}
	if v := pgstore.SchemaVersion(); v != 3 {
		t.Errorf("SchemaVersion = %d; want 3", v)
	}
	dl, err := state.EncodeDeadLetter(nil, state.DeadLetter{System: "a", Key: "k1", Class: "merge"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &store.Commit{RemoveDeadLetters: []uint64{1}, DeadLetters: []store.DeadLetter{{System: "a", Key: "k1", Class: "merge", Data: dl}}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.DeadLettersOf(ctx, []string{"k1"})
	check("DeadLettersOf(k1) after a commit", got, err, 2, 5)
}

// The lookups are index scans, not reads of the whole table (with the
// planner told to avoid sequential scans where it has a choice, as on a
// large table).
func TestDeadLetterLookupsUseTheIndexes(t *testing.T) {
	pool := adminPool(t)
	schema := newSchema(t)
	openStore(t, schema)
	qs := pgx.Identifier{schema}.Sanitize()
	for q, index := range map[string]string{
		`SELECT id, data FROM ` + qs + `.dead_letters WHERE key = ANY(ARRAY['a'::bytea, 'b']) ORDER BY id`: "dead_letters_key",
		`SELECT id, data FROM ` + qs + `.dead_letters WHERE class = 'merge'::bytea ORDER BY id`:            "dead_letters_class",
	} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query(ctx, `EXPLAIN `+q)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		tx.Rollback(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if plan := strings.Join(lines, "\n"); !strings.Contains(plan, index) {
			t.Errorf("plan of %s does not use %s:\n%s", q, index, plan)
		}
	}
}
