package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/pgtest"
	"github.com/concordsync/concord/internal/state"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/pgstore"
	"github.com/concordsync/concord/sync/store/storetest"
)

var ctx = context.Background()

func TestConformance(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, func(t testing.TB, now func() time.Time) store.Store {
		return openStore(t, newSchema(t), pgstore.WithClock(now))
	})
}

func TestMigrations(t *testing.T) {
	pool := adminPool(t)
	schema := newSchema(t)
	versions := func() []int {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT version FROM `+pgx.Identifier{schema, "schema_version"}.Sanitize()+` ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			t.Fatal(err)
		}
		return vs
	}
	var want []int
	for v := 1; v <= pgstore.SchemaVersion(); v++ {
		want = append(want, v)
	}

	// Instances starting together: one migrates, the others find it done.
	stores := make([]*pgstore.Store, 4)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = pgstore.Open(ctx, pgtest.DSN(t), pgstore.WithSchema(schema)) })
	}
	wg.Wait()
	epochs := map[uint64]bool{}
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("concurrent Open %d: %v", i, errs[i])
		}
		e, err := s.Epoch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		epochs[e] = true
		s.Close()
	}
	if len(epochs) != 1 {
		t.Errorf("concurrent Opens see epochs %v; want one", epochs)
	}
	if diff := cmp.Diff(want, versions()); diff != "" {
		t.Errorf("schema_version after the first Open (-want +got):\n%s", diff)
	}

	// Re-opening changes nothing: same versions, same epoch.
	s := openStore(t, schema)
	e, err := s.Epoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !epochs[e] {
		t.Errorf("epoch after re-open = %d; want %v", e, epochs)
	}
	if diff := cmp.Diff(want, versions()); diff != "" {
		t.Errorf("schema_version after re-open (-want +got):\n%s", diff)
	}

	// A newer library migrated the schema: refused, nothing changed.
	future := pgstore.SchemaVersion() + 1
	if _, err := pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "schema_version"}.Sanitize()+` (version) VALUES ($1)`, future); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.Open(ctx, pgtest.DSN(t), pgstore.WithSchema(schema))
	if !errors.Is(err, pgstore.ErrNewerSchema) || !strings.Contains(err.Error(), schema) {
		t.Errorf("Open of a newer schema: %v; want ErrNewerSchema naming %s", err, schema)
	}
	if diff := cmp.Diff(append(want, future), versions()); diff != "" {
		t.Errorf("schema_version after the refused Open (-want +got):\n%s", diff)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []pgstore.Option
	}{
		{"empty schema", []pgstore.Option{pgstore.WithSchema("")}},
		{"long schema", []pgstore.Option{pgstore.WithSchema(strings.Repeat("s", 64))}},
		{"NUL in schema", []pgstore.Option{pgstore.WithSchema("a\x00b")}},
		{"nil clock", []pgstore.Option{pgstore.WithClock(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Options are checked before connecting: no server needed.
			if _, err := pgstore.Open(ctx, "postgres://nobody@127.0.0.1:1/none", tt.opts...); err == nil || !strings.HasPrefix(err.Error(), "pgstore: ") {
				t.Errorf("Open: %v; want a pgstore option error", err)
			}
		})
	}
	if _, err := pgstore.New(ctx, nil); err == nil {
		t.Error("New(nil pool) succeeded")
	}
}

func TestClosed(t *testing.T) {
	s := openStore(t, newSchema(t))
	s.Close()
	s.Close() // harmless
	calls := map[string]func() error{
		"Actor":        func() error { _, err := s.Actor(ctx, "a"); return err },
		"Epoch":        func() error { _, err := s.Epoch(ctx); return err },
		"NewEpoch":     func() error { _, err := s.NewEpoch(ctx); return err },
		"AcquireLease": func() error { _, err := s.AcquireLease(ctx, "p", "h", time.Minute); return err },
		"ReleaseLease": func() error { return s.ReleaseLease(ctx, store.Lease{Name: "p"}) },
		"Cursor":       func() error { _, err := s.Cursor(ctx, "a"); return err },
		"Load":         func() error { _, err := state.Load(ctx, s, []string{"k"}); return err },
		"Pending":      func() error { _, err := s.Pending(ctx, 10); return err },
		"Held":         func() error { _, err := s.Held(ctx); return err },
		"DeadLetters":  func() error { _, err := s.DeadLetters(ctx); return err },
		"DeadLetter":   func() error { _, err := s.DeadLetter(ctx, 1); return err },
		"Commit":       func() error { return s.Commit(ctx, &store.Commit{}) },
		"Value":        func() error { _, err := s.Value(ctx, "v"); return err },
		"Keys":         func() error { _, err := s.Keys(ctx, "", 10); return err },
		"AuditHead":    func() error { _, err := s.AuditHead(ctx); return err },
		"AuditEntries": func() error { _, err := s.AuditEntries(ctx, 0, 10); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, pgstore.ErrClosed) {
			t.Errorf("%s after Close: %v; want ErrClosed", name, err)
		}
	}
}

// A state whose bytes were damaged is reported with its key, as corrupt.
func TestCorruptState(t *testing.T) {
	pool := adminPool(t)
	schema := newSchema(t)
	s := openStore(t, schema)
	if err := commit(ctx, s, &state.Commit{States: []*state.Record{state.Sample("k1", false, false)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "states"}.Sanitize()+` SET data = '\x00ff'`); err != nil {
		t.Fatal(err)
	}
	_, err := state.Load(ctx, s, []string{"k1"})
	if !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("Load of a damaged state: %v; want ErrCorrupt naming k1", err)
	}
}

// One flipped bit in a stored state or dead letter is an error naming it,
// never changed data; a row written before checksums still loads.
func TestFlippedBitIsFoundAndOldRowsLoad(t *testing.T) {
	pool := adminPool(t)
	schema := newSchema(t)
	s := openStore(t, schema)
	st := state.Sample("k1", false, false)
	st.Fields["name"] = "CANARY"
	dl := state.DeadLetter{System: "a", Key: "k2", Inbound: true, Record: concord.Record{Key: "k2", Fields: map[string]any{"n": "CANARY"}}, Reason: "test"}
	if err := commit(ctx, s, &state.Commit{States: []*state.Record{st}, DeadLetters: []state.DeadLetter{dl}}); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"states", "dead_letters"} {
		// 'C' to 'B' in CANARY: the codec alone would read BANARY.
		q := `UPDATE ` + pgx.Identifier{schema, table}.Sanitize() + ` SET data = overlay(data placing '\x42'::bytea from position('CANARY'::bytea in data) for 1)`
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := state.Load(ctx, s, []string{"k1"}); !errors.Is(err, pgstore.ErrDamaged) || !strings.Contains(err.Error(), `"k1"`) {
		t.Errorf("Load of a flipped state: %v; want ErrDamaged naming k1", err)
	}
	if _, err := state.LoadDeadLetters(ctx, s); !errors.Is(err, pgstore.ErrDamaged) {
		t.Errorf("DeadLetters with a flipped one: %v; want ErrDamaged", err)
	}
	// A row as the store wrote it before checksums: a format 2 encoding
	// at revision 1, without the codec's checksum or the store's.
	k3 := state.Sample("k3", false, false)
	k3.Rev = 1
	old, err := state.Codec{}.EncodeLegacyState(nil, k3) // format 3: format 2 and the checksum
	if err != nil {
		t.Fatal(err)
	}
	old = old[:len(old)-4]
	old[3] = 2
	if _, err := pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "states"}.Sanitize()+` (key, rev, pending, held, data) VALUES ('k3', 1, false, false, $1)`, old); err != nil {
		t.Fatal(err)
	}
	got, err := state.Load(ctx, s, []string{"k3"})
	if err != nil || got["k3"] == nil {
		t.Fatalf("Load of a row from before checksums: %v, %v", got, err)
	}
}

// The connection is lost in the middle of a commit (its backend is
// terminated while the commit waits for a row lock, after writing part of
// its batch): the commit fails with a clear error, nothing of it is
// written, and the store goes on working.
func TestLostConnectionMidCommit(t *testing.T) {
	pool := adminPool(t)
	schema := newSchema(t)
	s := openStore(t, schema)
	if err := commit(ctx, s, &state.Commit{States: []*state.Record{
		state.Sample("a", false, false), state.Sample("b", false, false),
	}}); err != nil {
		t.Fatal(err)
	}
	loaded, err := state.Load(ctx, s, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}

	// Another session locks record b, so that the commit stops there.
	blocker, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(ctx) //nolint:errcheck
	if _, err := blocker.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{schema, "states"}.Sanitize()+` WHERE key = 'b' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	a, b := loaded["a"], loaded["b"]
	a.Fields["name"], b.Fields["name"] = "Grace", "Edsger"
	c := &state.Commit{
		Cursors:     map[concord.SystemID]connector.Cursor{"crm": "42"},
		States:      []*state.Record{a, b, state.Sample("c", true, false)},
		DeadLetters: []state.DeadLetter{{System: "crm", Key: "x", Inbound: true, Reason: "bad", Class: "permanent"}},
	}
	done := make(chan error, 1)
	go func() { done <- commit(ctx, s, c) }()

	// Wait for the commit to block on the lock, then kill its backend.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var killed bool
		err := pool.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()`, schema).Scan(&killed)
		if err == nil && killed {
			break
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the commit never waited for the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	err = <-done
	if err == nil || errors.Is(err, store.ErrStale) || !strings.Contains(err.Error(), "pgstore: commit") {
		t.Fatalf("Commit on a terminated connection: %v; want a pgstore commit error", err)
	}
	t.Logf("the failed commit says: %v", err)
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Nothing of it was written, and the given states are untouched.
	for table, want := range map[string]int{"cursors": 0, "dead_letters": 0, "states": 2} {
		if got := count(t, pool, schema, table); got != want {
			t.Errorf("%s has %d rows after the failed commit; want %d", table, got, want)
		}
	}
	if a.Rev != 1 || b.Rev != 1 {
		t.Errorf("revisions after the failed commit: a %d, b %d; want 1, 1", a.Rev, b.Rev)
	}
	after, err := state.Load(ctx, s, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	for k, st := range after {
		if st.Rev != 1 || st.Fields["name"] != "Ada" {
			t.Errorf("record %s after the failed commit: rev %d, name %v; want rev 1, name Ada", k, st.Rev, st.Fields["name"])
		}
	}

	// The store recovers: the same commit now goes through.
	if err := commit(ctx, s, c); err != nil {
		t.Fatalf("Commit after the lost connection: %v", err)
	}
	if a.Rev != 2 || b.Rev != 2 || c.States[2].Rev != 1 {
		t.Errorf("revisions after the retried commit: %d, %d, %d; want 2, 2, 1", a.Rev, b.Rev, c.States[2].Rev)
	}
}

// Leases expire by the store's clock, and a commit under a lease that was
// taken over is refused.
func TestLeaseClock(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	s := openStore(t, newSchema(t), pgstore.WithClock(clock))

	a, err := s.AcquireLease(ctx, "p", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "p", "b", time.Minute); !errors.Is(err, recsync.ErrLeaseHeld) {
		t.Fatalf("AcquireLease by b while a holds it: %v; want ErrLeaseHeld", err)
	}
	advance(2 * time.Minute)
	b, err := s.AcquireLease(ctx, "p", "b", time.Minute)
	if err != nil {
		t.Fatalf("AcquireLease by b after a's expiry: %v", err)
	}
	want := store.Lease{Name: "p", Holder: "b", Token: a.Token + 1, Expires: now.Add(time.Minute)}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("lease taken over (-want +got):\n%s", diff)
	}
	st := state.Sample("k", false, false)
	err = commit(ctx, s, &state.Commit{Lease: &a, States: []*state.Record{st}})
	if !errors.Is(err, store.ErrStale) || st.Rev != 0 {
		t.Errorf("Commit under the expired lease: %v (rev %d); want ErrStale, rev 0", err, st.Rev)
	}
	if err := s.ReleaseLease(ctx, b); err != nil {
		t.Fatal(err)
	}
	c, err := s.AcquireLease(ctx, "p", "a", time.Minute)
	if err != nil || c.Token != b.Token+1 {
		t.Errorf("AcquireLease after release: %+v, %v; want token %d", c, err, b.Token+1)
	}
}

// Keys PostgreSQL text cannot hold are refused up front, by name.
func TestBadText(t *testing.T) {
	s := openStore(t, newSchema(t))
	for _, key := range []string{"a\x00b", "\xff\xfe"} {
		err := commit(ctx, s, &state.Commit{States: []*state.Record{state.Sample(key, false, false)}})
		if !errors.Is(err, pgstore.ErrBadText) || !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) {
			t.Errorf("Commit of key %q: %v; want ErrBadText naming it", key, err)
		}
		if _, err := state.Load(ctx, s, []string{key}); !errors.Is(err, pgstore.ErrBadText) {
			t.Errorf("Load of key %q: %v; want ErrBadText", key, err)
		}
	}
	err := commit(ctx, s, &state.Commit{Cursors: map[concord.SystemID]connector.Cursor{"c\x00rm": "1"}})
	if !errors.Is(err, pgstore.ErrBadText) || !strings.Contains(err.Error(), `"c\x00rm"`) {
		t.Errorf("Commit of a cursor of system \"c\\x00rm\": %v; want ErrBadText naming it", err)
	}
}

// A holder that asks again for a lease it holds and need not renew yet
// gets it from a plain read: it does not wait for a row lock someone else
// holds on the lease (an idle cycle takes no lock and writes nothing). A
// renewal, which writes, still waits for the lock.
func TestLeaseHeldWithoutRowLock(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	schema := newSchema(t)
	s := openStore(t, schema, pgstore.WithClock(clock))
	a, err := s.AcquireLease(ctx, "p", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	pool := adminPool(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var holder string
	if err := tx.QueryRow(ctx, `SELECT holder FROM `+pgx.Identifier{schema, "leases"}.Sanitize()+` WHERE name = 'p' FOR UPDATE`).Scan(&holder); err != nil {
		t.Fatal(err)
	}

	quick, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	again, err := s.AcquireLease(quick, "p", "a", time.Minute)
	if err != nil || again.Token != a.Token || again.Holder != a.Holder || !again.Expires.Equal(a.Expires) {
		t.Fatalf("AcquireLease of a held lease, not due, while the row is locked: %+v, %v; want %+v", again, err, a)
	}

	advance(40 * time.Second) // past half the ttl: a renewal, a write
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if _, err := s.AcquireLease(short, "p", "a", time.Minute); err == nil {
		t.Fatal("a renewal went through while another transaction held the lease row's lock")
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	renewed, err := s.AcquireLease(ctx, "p", "a", time.Minute)
	if err != nil || renewed.Token != a.Token || !renewed.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("renewal after the lock went: %+v, %v", renewed, err)
	}
}

// Without WithClock a lease is taken by the database server's clock, not
// the host's: the server's clock is moved a day ahead (a clock_timestamp()
// of the connection's search_path shadows pg_catalog's), and the lease
// expires a day and its TTL after the host's now; an instance whose server
// clock is the true one sees it held, and takes it over once the server's
// clock passed its expiry.
func TestLeaseByTheDatabaseClock(t *testing.T) {
	schema, ahead := newSchema(t), newSchema(t)
	admin := adminPool(t)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{ahead}.Sanitize()+`;
		CREATE FUNCTION `+pgx.Identifier{ahead, "clock_timestamp"}.Sanitize()+`() RETURNS timestamptz
		LANGUAGE sql AS $$ SELECT pg_catalog.clock_timestamp() + interval '1 day' $$`); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = ahead + ", pg_catalog"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	a, err := pgstore.New(ctx, pool, pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	b := openStore(t, schema)

	l, err := a.AcquireLease(ctx, "p", "a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(l.Expires); left < 24*time.Hour+59*time.Minute || left > 25*time.Hour {
		t.Errorf("lease taken with the server's clock a day ahead expires in %v; want a day and an hour (the server's clock)", left)
	}
	if _, err := b.AcquireLease(ctx, "p", "b", time.Hour); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("another instance's AcquireLease: %v; want ErrLeaseHeld", err)
	}
	// Expired by the server's clock (though not by a day-ahead one):
	// taken over.
	if _, err := admin.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "leases"}.Sanitize()+` SET expires = clock_timestamp() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if got, err := b.AcquireLease(ctx, "p", "b", time.Hour); err != nil || got.Token != l.Token+1 {
		t.Errorf("AcquireLease after the server's clock passed the expiry: %+v, %v; want token %d", got, err, l.Token+1)
	}
}
