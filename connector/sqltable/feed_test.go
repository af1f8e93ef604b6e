package sqltable

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// drainAll pages through Changes from cursor with limit until More is
// false and returns the records read, by key (the last state of each), and
// the next cursor.
func drainAll(t testing.TB, tb *Table, cursor connector.Cursor, limit int) (map[string]concord.Record, []concord.Record, connector.Cursor) {
	t.Helper()
	got := map[string]concord.Record{}
	var all []concord.Record
	for range 100_000 {
		b, err := tb.Changes(context.Background(), cursor, limit)
		if err != nil {
			t.Fatalf("Changes(limit %d): %v", limit, err)
		}
		if len(b.Records) > limit {
			t.Fatalf("Changes(limit %d) returned %d records", limit, len(b.Records))
		}
		for _, r := range b.Records {
			got[r.Key] = r
		}
		all = append(all, b.Records...)
		cursor = b.Next
		if !b.More {
			return got, all, cursor
		}
	}
	t.Fatal("Changes never stopped reporting More")
	return nil, nil, ""
}

func feedConfig() Config {
	return Config{
		Key:       []Column{{"id", Text}},
		Fields:    []Column{{"n", Int64}},
		UpdatedAt: "updated_at",
		Window:    time.Minute,
	}
}

// Many rows share one timestamp across page boundaries: a cursor of
// updated_at alone ("updated_at > last") would drop every row after the
// boundary with the boundary's timestamp. All must arrive, for every limit.
func TestEqualTimestampsAcrossPageBoundary(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := newSchema(t, be, feedConfig())
			tb := mustNew(t, s.cfg)
			ctx := context.Background()
			at := time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)
			const n = 53
			for i := range n {
				ts := at
				if i%10 == 9 {
					ts = at.Add(time.Microsecond) // a few just after
				}
				if err := s.edit(ctx, s.db, []any{fmt.Sprintf("r%03d", n-i)}, ts, map[string]concord.Value{"n": i}); err != nil {
					t.Fatal(err)
				}
			}
			for _, limit := range []int{1, 2, 7, 10, 52, 53, 54} {
				got, all, next := drainAll(t, tb, "", limit)
				if len(got) != n || len(all) != n {
					t.Errorf("limit %d: got %d distinct records in %d deliveries; want %d once each", limit, len(got), len(all), n)
				}
				// Nothing changed: reading on delivers nothing new.
				again, _, _ := drainAll(t, tb, next, limit)
				if len(again) != 0 {
					t.Errorf("limit %d: reading again with nothing changed delivered %d records; want 0 (already delivered, same content)", limit, len(again))
				}
			}
			// A row with the boundary's timestamp committed after the read
			// is still delivered.
			_, _, next := drainAll(t, tb, "", 7)
			if err := s.edit(ctx, s.db, []any{"r000"}, at, map[string]concord.Value{"n": 1000}); err != nil {
				t.Fatal(err)
			}
			got, _, _ := drainAll(t, tb, next, 7)
			if r, ok := got["r000"]; !ok || !concord.EqualValues(r.Fields["n"], 1000) {
				t.Errorf("a row committed later with the boundary's timestamp: got %v; want r000 with n=1000", got)
			}
		})
	}
}

// A slow transaction takes its timestamp early and commits after the feed
// has read past it: the overlap window still delivers it.
func TestLateCommitWithEarlierTimestamp(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		s := newSchema(t, postgresBackend, feedConfig())
		tb := mustNew(t, s.cfg)
		ctx := context.Background()
		if err := s.edit(ctx, s.db, []any{"before"}, time.Now(), map[string]concord.Value{"n": 0}); err != nil {
			t.Fatal(err)
		}
		_, _, cursor := drainAll(t, tb, "", 10)

		// The slow transaction: its row gets updated_at = now() (the
		// transaction's start) but commits only later.
		slow, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Rollback()
		if _, err := slow.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (id, n, updated_at) VALUES ('slow', 1, now())`, s.table)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		// Faster writers commit after it started; the feed reads them and
		// moves its cursor past the slow row's timestamp.
		for i := range 5 {
			if _, err := s.db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (id, n, updated_at) VALUES ($1, 2, now())`, s.table), fmt.Sprintf("fast%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		got, _, cursor := drainAll(t, tb, cursor, 2)
		if len(got) != 5 {
			t.Fatalf("read %d of the 5 fast rows; want 5", len(got))
		}
		if _, ok := got["slow"]; ok {
			t.Fatal("the uncommitted row was read")
		}
		if err := slow.Commit(); err != nil {
			t.Fatal(err)
		}
		got, _, _ = drainAll(t, tb, cursor, 2)
		if _, ok := got["slow"]; !ok {
			t.Errorf("after the slow transaction committed: got %v; want the row \"slow\" delivered", keysOf(got))
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		// SQLite has one writer at a time: the late commit is simulated by
		// writing a row with an explicit earlier updated_at after the read.
		s := newSchema(t, sqliteBackend, feedConfig())
		tb := mustNew(t, s.cfg)
		ctx := context.Background()
		t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		for i := range 5 {
			if err := s.edit(ctx, s.db, []any{fmt.Sprintf("fast%d", i)}, t0.Add(time.Duration(i+1)*time.Second), map[string]concord.Value{"n": i}); err != nil {
				t.Fatal(err)
			}
		}
		_, _, cursor := drainAll(t, tb, "", 2)
		if err := s.edit(ctx, s.db, []any{"slow"}, t0.Add(500*time.Millisecond), map[string]concord.Value{"n": 9}); err != nil {
			t.Fatal(err)
		}
		// And a row committed late with exactly the cursor's timestamp and
		// a key before the cursor's key.
		if err := s.edit(ctx, s.db, []any{"a-late"}, t0.Add(5*time.Second), map[string]concord.Value{"n": 10}); err != nil {
			t.Fatal(err)
		}
		got, _, cursor := drainAll(t, tb, cursor, 2)
		for _, k := range []string{"slow", "a-late"} {
			if _, ok := got[k]; !ok {
				t.Errorf("late rows: got %v; want %q delivered", keysOf(got), k)
			}
		}
		// The window is what bounds it: a row older than the window
		// before the newest delivered timestamp is outside the guarantee
		// (a transaction longer than the window), and is not re-read.
		if err := s.edit(ctx, s.db, []any{"too-late"}, t0.Add(5*time.Second-2*time.Minute), map[string]concord.Value{"n": 11}); err != nil {
			t.Fatal(err)
		}
		got, _, _ = drainAll(t, tb, cursor, 2)
		if _, ok := got["too-late"]; ok {
			t.Errorf("a row older than the window was re-read: the window is not what bounds the overlap")
		}
	})
}

func keysOf(m map[string]concord.Record) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// A model of slow writers: every write takes its timestamp up to the
// window before it commits, writers' clocks tie often, and the feed is read
// with random limits between commits. Every committed write must be
// delivered by a read that starts after its commit (that read, or one of
// the following ones before the next write), never skipped.
func TestFeedNeverMissesACommittedWrite(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			cfg := feedConfig()
			cfg.Window = 10 * time.Second
			if seed%2 == 1 {
				cfg.Version, cfg.Track, cfg.UpdatedAt = "seq", TrackVersion, ""
				cfg.VersionWindow = 8
			}
			s := newSchema(t, sqliteBackend, cfg)
			tb := mustNew(t, s.cfg)
			ctx := context.Background()
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			var cursor connector.Cursor
			var pending []int // indexes of writes committed but not yet delivered
			type w struct {
				key string
				n   int
			}
			var writes []w
			nextSeq := int64(0)
			type slowTx struct {
				key string
				at  time.Time
				seq int64
			}
			var open []slowTx
			for range 400 {
				switch op := rng.IntN(10); {
				case op < 4: // a writer takes its timestamp/sequence and starts
					now = now.Add(time.Duration(rng.IntN(3)) * time.Second / 2) // ties often
					nextSeq++
					open = append(open, slowTx{key: fmt.Sprintf("k%02d", rng.IntN(30)), at: now, seq: nextSeq})
				case op < 7 && len(open) > 0: // one of them commits
					i := rng.IntN(len(open))
					tx := open[i]
					open = append(open[:i], open[i+1:]...)
					if now.Sub(tx.at) >= cfg.Window || nextSeq-tx.seq >= cfg.VersionWindow-1 {
						continue // longer than the window: outside the guarantee
					}
					// n numbers commits, so that a later state of a
					// key has a larger n.
					if err := s.commitAt(ctx, tx.key, tx.at, tx.seq, len(writes)); err != nil {
						t.Fatal(err)
					}
					writes = append(writes, w{tx.key, len(writes)})
					pending = append(pending, len(writes)-1)
				default: // read one page
					b, err := tb.Changes(ctx, cursor, 1+rng.IntN(4))
					if err != nil {
						t.Fatal(err)
					}
					cursor = b.Next
					for _, r := range b.Records {
						got, _ := r.Fields["n"].(int64)
						keep := pending[:0]
						for _, p := range pending {
							// Delivered if this key now shows this write
							// or a later one.
							if writes[p].key == r.Key && int(got) >= writes[p].n {
								continue
							}
							keep = append(keep, p)
						}
						pending = keep
					}
				}
			}
			for _, tx := range open { // commit the rest that are within the window
				if now.Sub(tx.at) >= cfg.Window || nextSeq-tx.seq >= cfg.VersionWindow-1 {
					continue
				}
				if err := s.commitAt(ctx, tx.key, tx.at, tx.seq, len(writes)); err != nil {
					t.Fatal(err)
				}
				writes = append(writes, w{tx.key, len(writes)})
				pending = append(pending, len(writes)-1)
			}
			got, _, _ := drainAll(t, tb, cursor, 3)
			for _, p := range pending {
				r, ok := got[writes[p].key]
				if n, _ := r.Fields["n"].(int64); !ok || int(n) < writes[p].n {
					t.Errorf("write %d (key %s, n=%d) was never delivered", p, writes[p].key, writes[p].n)
				}
			}
		})
	}
}

// commitAt writes key with an explicit tracking value: the timestamp (or
// sequence number) the writer took when it started.
func (s *schema) commitAt(ctx context.Context, key string, at time.Time, seq int64, n int) error {
	if s.cfg.Track == TrackVersion {
		_, err := s.db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (id, n, seq) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET n = excluded.n, seq = excluded.seq`, s.table), key, n, seq)
		return err
	}
	return s.edit(ctx, s.db, []any{key}, at, map[string]concord.Value{"n": n})
}
