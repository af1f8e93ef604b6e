package sqltable

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// A damaged cursor is an error (ErrCursor, permanent), never a panic and
// never a silent restart from another position.
func TestDamagedCursors(t *testing.T) {
	cfg := feedConfig()
	cfg.Key = []Column{{"id", Text}, {"no", Int64}}
	s := newSchema(t, sqliteBackend, cfg)
	tb := mustNew(t, s.cfg)
	ctx := context.Background()
	for i := range 5 {
		if err := s.edit(ctx, s.db, []any{"k", int64(i)}, time.Now(), map[string]concord.Value{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := tb.Changes(ctx, "", 2)
	if err != nil || !b.More {
		t.Fatal(err, b.More)
	}
	good := string(b.Next)
	sc, err := tb.Scan(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	other := mustNew(t, func() Config { c := s.cfg; c.Table = "other"; return c }())
	otherCur := other.encodeCursor(cursorState{Hi: ptr("2025-01-01 00:00:00.000000000")})
	damaged := []string{"x", "sqlt1.", "sqlt1.!!!", "sqlt1.AAAA", good[:len(good)-3], good + "A", string(otherCur), string(sc.Next)}
	for i := len("sqlt1."); i < len(good); i += 7 {
		flipped := []byte(good)
		flipped[i] ^= 0x01
		damaged = append(damaged, string(flipped))
	}
	for _, c := range damaged {
		_, err := tb.Changes(ctx, connector.Cursor(c), 2)
		if !errors.Is(err, ErrCursor) || connector.Classify(err) != connector.ErrPermanent {
			if err == nil && c != good {
				// A flip inside base64 padding bits can decode to the
				// same bytes; that cursor is the good one.
				if dec, _ := tb.decodeCursor(connector.Cursor(c), false); reflect.DeepEqual(dec, must(tb.decodeCursor(connector.Cursor(good), false))) {
					continue
				}
			}
			t.Errorf("Changes(%.60q): got %v; want a permanent ErrCursor", c, err)
		}
	}
	if _, err := tb.Scan(ctx, b.Next, 2); !errors.Is(err, ErrCursor) {
		t.Errorf("Scan with a feed cursor: got %v; want ErrCursor", err)
	}
}

func ptr[T any](v T) *T { return &v }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzCursor: any string given as a cursor is either refused with
// ErrCursor or decodes to a state that encodes back to a cursor that
// decodes the same.
func FuzzCursor(f *testing.F) {
	db := sqliteBackend.open(f)
	tb := mustNew(f, Config{DB: db, Dialect: SQLite, Table: "t", Key: []Column{{"id", Text}, {"no", Int64}}, Fields: []Column{{"n", Int64}}, UpdatedAt: "u"})
	seen := newSeenSet(nil)
	seen.put(1, 2)
	for _, st := range []cursorState{
		{},
		{Hi: ptr("2025-01-01 00:00:00.000000000")},
		{Hi: ptr("1700000000"), At: &pos{T: "2025-01-01T00:00:00Z", K: []any{"a", int64(-5)}}, Over: ptr("2460000.5"), Seen: seen.bytes()},
	} {
		f.Add(string(tb.encodeCursor(st)))
	}
	f.Add(string(tb.encodeCursor(cursorState{S: true, At: &pos{K: []any{"x", int64(1)}}})))
	f.Add("sqlt1.")
	f.Fuzz(func(t *testing.T, c string) {
		for _, scan := range []bool{false, true} {
			st, err := tb.decodeCursor(connector.Cursor(c), scan)
			if err != nil {
				if !errors.Is(err, ErrCursor) {
					t.Fatalf("decodeCursor(%q): error %v is not ErrCursor", c, err)
				}
				continue
			}
			if c == "" {
				if !reflect.DeepEqual(st, cursorState{}) {
					t.Fatalf("the empty cursor decodes to %+v; want the start", st)
				}
				continue
			}
			again, err := tb.decodeCursor(tb.encodeCursor(st), scan)
			if err != nil || !reflect.DeepEqual(again, st) {
				t.Fatalf("cursor %q decodes to %+v, re-encoded to %+v, %v", c, st, again, err)
			}
			if !scan && st.Hi != nil {
				if _, err := tb.windowStart(*st.Hi); err != nil {
					t.Fatalf("cursor %q accepted with a tracking value the window cannot start from: %v", c, err)
				}
			}
		}
	})
}
