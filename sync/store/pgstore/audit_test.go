package pgstore_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/concordsync/concord/internal/pgtest"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/pgstore"
	"github.com/concordsync/concord/sync/store/storetest"
)

// Two Stores on one schema, each with its own pool (as two processes),
// race to append each seq of the audit log: exactly one wins it, the other
// gets ErrStale, and nothing of the loser's commit is applied. The same
// holds when the server's default isolation is REPEATABLE READ, where the
// head read after the advisory lock may be stale and the primary key
// refuses the second entry.
func TestAuditAppendersInTwoProcesses(t *testing.T) {
	for _, iso := range []string{"", "repeatable read"} {
		name := "read committed"
		if iso != "" {
			name = iso
		}
		t.Run(name, func(t *testing.T) {
			dsn := pgtest.DSN(t)
			if iso != "" {
				sep := "?"
				if strings.Contains(dsn, "?") {
					sep = "&"
				}
				dsn += sep + "default_transaction_isolation=" + strings.ReplaceAll(iso, " ", "%20")
			}
			schema := newSchema(t)
			var stores [2]*pgstore.Store
			for i := range stores {
				s, err := pgstore.Open(ctx, dsn, pgstore.WithSchema(schema))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				stores[i] = s
			}
			var isolation string
			if err := adminPoolDSN(t, dsn).QueryRow(ctx, `SHOW default_transaction_isolation`).Scan(&isolation); err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"": "read committed"}[iso] + iso; isolation != want {
				t.Fatalf("the connections' isolation is %q; want %q", isolation, want)
			}
			const rounds = 25
			kinds := map[string]int{}
			defer func() { t.Logf("how the losers were refused: %v", kinds) }()
			for seq := uint64(1); seq <= rounds; seq++ {
				var start, wg sync.WaitGroup
				start.Add(1)
				var errs [2]error
				for i, s := range stores {
					wg.Go(func() {
						start.Wait()
						errs[i] = s.Commit(ctx, &store.Commit{
							Audit:  []store.AuditEntry{{Seq: seq, Data: []byte(fmt.Sprint(seq, " by ", i))}},
							Values: map[string][]byte{fmt.Sprint("by/", i): []byte(fmt.Sprint(seq))},
						})
					})
				}
				start.Done()
				wg.Wait()
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil && winner >= 0:
						t.Fatalf("seq %d: both stores appended it", seq)
					case err == nil:
						winner = i
					case errors.As(err, new(*store.AuditSeqError)):
						kinds["by the head read under the lock"]++
					case errors.Is(err, store.ErrStale):
						kinds["by the primary key"]++
					default:
						t.Fatalf("seq %d: store %d: %v; want success or ErrStale", seq, i, err)
					}
				}
				if winner < 0 {
					t.Fatalf("seq %d: neither store appended it: %v", seq, errs)
				}
				es, err := stores[1-winner].AuditEntries(ctx, seq-1, 5)
				if err != nil || len(es) != 1 || string(es[0].Data) != fmt.Sprint(seq, " by ", winner) {
					t.Fatalf("seq %d: the log holds %v, %v; want the winner %d's entry only", seq, es, err, winner)
				}
				if v, err := stores[winner].Value(ctx, fmt.Sprint("by/", 1-winner)); err != nil || string(v) == fmt.Sprint(seq) {
					t.Fatalf("seq %d: the loser's value was applied (%q, %v)", seq, v, err)
				}
			}
		})
	}
}

// A value or audit entry changed in the database behind the store's back
// is ErrDamaged naming it; a row deleted from the middle of the log is a
// gap that AuditEntries reports.
func TestDamagedValueAndAuditRows(t *testing.T) {
	pool := adminPool(t)
	schema := newSchema(t)
	s := openStore(t, schema)
	if err := s.Commit(ctx, &store.Commit{Values: map[string][]byte{"scan/crm": []byte("page 7"), "mark": {}}, Audit: storetest.Entries(1, 4)}); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := pool.Exec(ctx, strings.ReplaceAll(q, "{schema}", pgx.Identifier{schema}.Sanitize())); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE {schema}.engine_values SET data = set_byte(data, 0, get_byte(data, 0) # 1)`)
	exec(`UPDATE {schema}.audit_log SET data = set_byte(data, 3, get_byte(data, 3) # 16) WHERE seq = 4`)
	for _, name := range []string{"scan/crm", "mark"} {
		if _, err := s.Value(ctx, name); !errors.Is(err, pgstore.ErrDamaged) || !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
			t.Errorf("Value(%s) of a flipped row = %v; want ErrDamaged naming it", name, err)
		}
	}
	if _, err := s.AuditHead(ctx); !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), "audit entry 4") {
		t.Errorf("AuditHead of a flipped entry = %v; want ErrDamaged naming entry 4", err)
	}
	if _, err := s.AuditEntries(ctx, 2, 10); !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), "audit entry 4") {
		t.Errorf("AuditEntries over a flipped entry = %v; want ErrDamaged naming entry 4", err)
	}
	// An entry copied under another seq does not verify either.
	exec(`UPDATE {schema}.audit_log SET data = (SELECT data FROM {schema}.audit_log WHERE seq = 1) WHERE seq = 3`)
	if _, err := s.AuditEntries(ctx, 2, 1); !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), "audit entry 3") {
		t.Errorf("AuditEntries of entry 1's bytes under seq 3 = %v; want ErrDamaged naming entry 3", err)
	}
	exec(`DELETE FROM {schema}.audit_log WHERE seq = 2`)
	if _, err := s.AuditEntries(ctx, 0, 10); !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), "entry 2 should be") {
		t.Errorf("AuditEntries over a deleted entry = %v; want ErrDamaged naming the gap", err)
	}
	if es, err := s.AuditEntries(ctx, 0, 1); err != nil || len(es) != 1 || es[0].Seq != 1 {
		t.Errorf("AuditEntries(0, 1) before the gap = %v, %v; want entry 1", es, err)
	}
}

// A schema at version 1 (as the library before values and the audit log
// left it, with data) is migrated to the current version on Open: its data
// reads back as it was, and the new tables work.
func TestMigratesASchemaAtVersion1(t *testing.T) {
	pool := adminPool(t)
	schema := newSchema(t)
	qs := pgx.Identifier{schema}.Sanitize()
	v1, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE SCHEMA ` + qs,
		`CREATE TABLE ` + qs + `.schema_version (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`,
		strings.ReplaceAll(string(v1), "{schema}", qs),
		`INSERT INTO ` + qs + `.schema_version (version) VALUES (1)`,
		`INSERT INTO ` + qs + `.meta (id, epoch) VALUES (true, 4242)`,
		`INSERT INTO ` + qs + `.cursors (system, cursor) VALUES ('crm', 'c-9')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	s := openStore(t, schema)
	if e, err := s.Epoch(ctx); err != nil || e != 4242 {
		t.Fatalf("Epoch after migration = %d, %v; want 4242", e, err)
	}
	if c, err := s.Cursor(ctx, "crm"); err != nil || c != "c-9" {
		t.Fatalf("Cursor after migration = %q, %v; want c-9", c, err)
	}
	if n := count(t, pool, schema, "schema_version"); n != pgstore.SchemaVersion() || n < 2 {
		t.Fatalf("schema_version has %d rows; want %d", n, pgstore.SchemaVersion())
	}
	if err := s.Commit(ctx, &store.Commit{Values: map[string][]byte{"v": []byte("x")}, Audit: storetest.Entries(1, 2)}); err != nil {
		t.Fatal(err)
	}
	if h, err := s.AuditHead(ctx); err != nil || h.Seq != 2 {
		t.Fatalf("AuditHead after migration = %d, %v; want 2", h.Seq, err)
	}
}

// Keys that PostgreSQL text cannot hold cannot be stored, so Keys refuses
// to start after one; value names follow the rule of every store.
func TestKeysAndValueNamesAsText(t *testing.T) {
	s := openStore(t, newSchema(t))
	for _, after := range []string{"a\x00", "\xff"} {
		if _, err := s.Keys(ctx, after, 10); !errors.Is(err, pgstore.ErrBadText) {
			t.Errorf("Keys(%q) = %v; want ErrBadText", after, err)
		}
	}
	if err := s.Commit(ctx, &store.Commit{Values: map[string][]byte{"a\x00": nil}}); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("Commit of value name with NUL = %v; want ErrInvalidName", err)
	}
}
