package sqltable

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// Composite keys map to record keys by the documented escaping join, both
// ways, through every call.
func TestCompositeKeys(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			cfg := Config{
				Key:         []Column{{"region", Text}, {"no", Int64}},
				Fields:      []Column{{"name", Text}},
				UpdatedAt:   "updated_at",
				Version:     "version",
				Deleted:     "deleted",
				AllowCreate: true,
				AllowDelete: true,
			}
			s := newSchema(t, be, cfg)
			tb := mustNew(t, s.cfg)
			ctx := context.Background()
			keys := map[string][]string{
				`eu/7`:                 {"eu", "7"},
				`a\/b/-3`:              {"a/b", "-3"},
				`back\\/0`:             {`back\`, "0"},
				`/9223372036854775807`: {"", "9223372036854775807"},
			}
			var patches []connector.Patch
			for k, parts := range keys {
				if got := EncodeKey(parts); got != k {
					t.Fatalf("EncodeKey(%q) = %q; want %q", parts, got, k)
				}
				patches = append(patches, connector.Patch{Key: k, Set: map[string]concord.Value{"name": k}, Create: true})
			}
			for _, bad := range []string{"eu", "eu/7/1", "eu/07", "eu/+7", `eu\x/7`, "eu/", `eu/7\`, "eu/99999999999999999999"} {
				patches = append(patches, connector.Patch{Key: bad, Set: map[string]concord.Value{"name": "x"}, Create: true})
			}
			res, err := tb.Apply(ctx, patches)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				_, good := keys[r.Key]
				if good && r.Err != nil {
					t.Errorf("Apply %q: %v", r.Key, r.Err)
				}
				if !good && (!errors.Is(r.Err, ErrKey) || connector.Classify(r.Err) != connector.ErrPermanent || !strings.Contains(r.Err.Error(), fmt.Sprintf("%q", r.Key))) {
					t.Errorf("Apply to malformed key %q: got %v; want a permanent ErrKey naming it", r.Key, r.Err)
				}
			}
			feed, _, _ := drainAll(t, tb, "", 3)
			recs, err := tb.Get(ctx, append(slices.Collect(func(yield func(string) bool) {
				for k := range keys {
					if !yield(k) {
						return
					}
				}
			}), "eu/07", "eu"))
			if err != nil {
				t.Fatal(err)
			}
			if len(feed) != len(keys) || len(recs) != len(keys) {
				t.Fatalf("feed has %d records, Get %d; want %d", len(feed), len(recs), len(keys))
			}
			for _, r := range recs {
				if r.Fields["name"] != r.Key || feed[r.Key].Fields["name"] != r.Key {
					t.Errorf("record %q holds name %v (feed %v); want its own key", r.Key, r.Fields["name"], feed[r.Key].Fields["name"])
				}
			}
			// Scan pages in key order across composite keys.
			var order []string
			var cur connector.Cursor
			for {
				b, err := tb.Scan(ctx, cur, 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range b.Records {
					order = append(order, r.Key)
				}
				cur = b.Next
				if !b.More {
					break
				}
			}
			if len(order) != len(keys) {
				t.Errorf("Scan with limit 1 returned %v; want all %d keys", order, len(keys))
			}
		})
	}
}

func TestDecodeKey(t *testing.T) {
	for _, c := range []struct {
		key  string
		n    int
		want []string
	}{
		{"a", 1, []string{"a"}}, {"a/b", 1, []string{"a/b"}}, {"", 1, []string{""}},
		{"/", 2, []string{"", ""}}, {`\\\//x`, 2, []string{`\/`, "x"}},
	} {
		got, err := DecodeKey(c.key, c.n)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("DecodeKey(%q, %d) = %q, %v; want %q", c.key, c.n, got, err, c.want)
		}
	}
	for _, bad := range []string{"a", "a/b/c", `a\`, `a\b/c`} {
		if _, err := DecodeKey(bad, 2); !errors.Is(err, ErrKey) {
			t.Errorf("DecodeKey(%q, 2): got %v; want ErrKey", bad, err)
		}
	}
}

// FuzzKey: DecodeKey never panics, and what it accepts encodes back to
// the same key (the mapping is one to one).
func FuzzKey(f *testing.F) {
	for _, s := range []string{"", "a/b", `a\/b/c`, `\\`, `\`, "//", "a/b/c/d", "\xff/\x00"} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, key string, n int) {
		n = 1 + (n%4+4)%4
		parts, err := DecodeKey(key, n)
		if err != nil {
			if !errors.Is(err, ErrKey) {
				t.Fatalf("DecodeKey(%q, %d): error %v does not wrap ErrKey", key, n, err)
			}
			return
		}
		if len(parts) != n {
			t.Fatalf("DecodeKey(%q, %d) = %d parts", key, n, len(parts))
		}
		if got := EncodeKey(parts); got != key {
			t.Fatalf("EncodeKey(DecodeKey(%q)) = %q", key, got)
		}
	})
}

// Create and delete are refused unless the configuration permits them.
func TestWritesNotPermitted(t *testing.T) {
	cfg := Config{Key: []Column{{"id", Text}}, Fields: []Column{{"n", Int64}}, UpdatedAt: "updated_at"}
	s := newSchema(t, sqliteBackend, cfg)
	tb := mustNew(t, s.cfg)
	ctx := context.Background()
	if err := s.edit(ctx, s.db, []any{"a"}, time.Now(), map[string]concord.Value{"n": 1}); err != nil {
		t.Fatal(err)
	}
	res, err := tb.Apply(ctx, []connector.Patch{
		{Key: "b", Set: map[string]concord.Value{"n": 1}, Create: true},
		{Key: "a", Delete: true},
		{Key: "a", Set: map[string]concord.Value{"n": 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if !errors.Is(res[i].Err, ErrNotPermitted) || connector.Classify(res[i].Err) != connector.ErrPermanent {
			t.Errorf("result %d: got %v; want a permanent ErrNotPermitted", i, res[i].Err)
		}
	}
	if res[2].Err != nil {
		t.Errorf("the permitted update failed: %v", res[2].Err)
	}
	got, _ := tb.Scan(ctx, "", 10)
	if len(got.Records) != 1 || !concord.EqualValues(got.Records[0].Fields["n"], 2) {
		t.Errorf("table after the batch: %v; want only a with n=2", got.Records)
	}
}

// Hard deletes (no Deleted column) remove the row; a conditional delete
// with a stale tag is a conflict.
func TestHardDelete(t *testing.T) {
	cfg := Config{Key: []Column{{"id", Text}}, Fields: []Column{{"n", Int64}}, UpdatedAt: "updated_at", Version: "version", AllowDelete: true}
	s := newSchema(t, sqliteBackend, cfg)
	tb := mustNew(t, s.cfg)
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if err := s.edit(ctx, s.db, []any{k}, time.Now(), map[string]concord.Value{"n": 1}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := tb.Apply(ctx, []connector.Patch{{Key: "a", Delete: true, IfMatch: "999"}, {Key: "b", Delete: true, IfMatch: "1"}, {Key: "zz", Delete: true}})
	if err != nil {
		t.Fatal(err)
	}
	if connector.Classify(res[0].Err) != connector.ErrConflict || res[1].Err != nil || res[2].Err != nil {
		t.Errorf("got %v, %v, %v; want conflict, nil, nil", res[0].Err, res[1].Err, res[2].Err)
	}
	got, _ := tb.Get(ctx, []string{"a", "b"})
	if len(got) != 1 || got[0].Key != "a" {
		t.Errorf("after deletes: %v; want only a", got)
	}
}

// A database error is classified: a constraint the table enforces is
// permanent for that patch only.
func TestDatabaseErrorsClassified(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			cfg := Config{Key: []Column{{"id", Text}}, Fields: []Column{{"n", Int64}}, UpdatedAt: "updated_at"}
			s := newSchema(t, be, cfg)
			mustExec(t, s.db, "ALTER TABLE "+s.table+" ADD CONSTRAINT small CHECK (n < 100)")
			tb := mustNew(t, s.cfg)
			ctx := context.Background()
			for _, k := range []string{"a", "b"} {
				if err := s.edit(ctx, s.db, []any{k}, time.Now(), map[string]concord.Value{"n": 1}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := tb.Apply(ctx, []connector.Patch{{Key: "a", Set: map[string]concord.Value{"n": 500}}, {Key: "b", Set: map[string]concord.Value{"n": 5}}})
			if err != nil {
				t.Fatal(err)
			}
			if connector.Classify(res[0].Err) != connector.ErrPermanent || !strings.Contains(res[0].Err.Error(), `"a"`) || res[1].Err != nil {
				t.Errorf("got %v, %v; want a permanent error naming record a, then success", res[0].Err, res[1].Err)
			}
		})
	}
}
