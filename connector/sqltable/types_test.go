package sqltable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

func typesConfig() Config {
	return Config{
		Key: []Column{{"id", Text}},
		Fields: []Column{
			{"t", Text}, {"i", Int64}, {"f", Float64}, {"b", Bool},
			{"dec", Decimal}, {"raw", Bytes}, {"at", Time},
		},
		UpdatedAt:   "updated_at",
		Version:     "version",
		AllowCreate: true,
	}
}

// Every declared type comes back as its Go type, with its exact value,
// through Changes, Get and Scan, on both backends.
func TestTypesRoundTrip(t *testing.T) {
	zone := time.FixedZone("x", -(3*3600 + 30*60))
	cases := []map[string]concord.Value{
		{"t": "plain", "i": int64(0), "f": 0.0, "b": false, "dec": json.Number("0"), "raw": []byte{}, "at": time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"t": "ünïcödé ✓ 'quote\" ; DROP TABLE x; --", "i": int64(math.MaxInt64), "f": math.SmallestNonzeroFloat64, "b": true,
			"dec": json.Number("12.50"), "raw": []byte{0, 0xff, 0xfe, '\'', 0}, "at": time.Date(2025, 3, 1, 9, 30, 15, 123456000, zone)},
		{"t": "", "i": int64(math.MinInt64), "f": -math.MaxFloat64, "b": true,
			"dec": json.Number("-123456789012345678901234567890.123456789012345678900"), "raw": []byte("x"), "at": time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"t": strings.Repeat("long ", 2000), "i": int64(-1), "f": 0.1, "b": false, "dec": json.Number("0.000000100"), "raw": []byte(strings.Repeat("\x00\x01", 1000)), "at": time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"t": nil, "i": nil, "f": nil, "b": nil, "dec": nil, "raw": nil, "at": nil},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := newSchema(t, be, typesConfig())
			tb := mustNew(t, s.cfg)
			ctx := context.Background()
			var patches []connector.Patch
			for i, c := range cases {
				patches = append(patches, connector.Patch{Key: fmt.Sprint("r", i), Set: c, Create: true})
			}
			res, err := tb.Apply(ctx, patches)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					t.Fatalf("Apply %s: %v", r.Key, r.Err)
				}
			}
			fromFeed, _, _ := drainAll(t, tb, "", 2)
			got, err := tb.Get(ctx, []string{"r0", "r1", "r2", "r3", "r4"})
			if err != nil {
				t.Fatal(err)
			}
			fromGet := map[string]concord.Record{}
			for _, r := range got {
				fromGet[r.Key] = r
			}
			sc, err := tb.Scan(ctx, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			fromScan := map[string]concord.Record{}
			for _, r := range sc.Records {
				fromScan[r.Key] = r
			}
			for i, want := range cases {
				key := fmt.Sprint("r", i)
				for via, m := range map[string]map[string]concord.Record{"Changes": fromFeed, "Get": fromGet, "Scan": fromScan} {
					r, ok := m[key]
					if !ok {
						t.Errorf("%s: record %s missing", via, key)
						continue
					}
					for name, w := range want {
						g := r.Fields[name]
						if !sameTyped(w, g) {
							t.Errorf("%s: record %s field %s: got %#v (%T); want %#v (%T)", via, key, name, g, g, w, w)
						}
					}
				}
			}
		})
	}
}

// sameTyped is exact equality that also insists on the Go type: a bool is
// a bool, a decimal keeps its digits (json.Number "12.50" is not "12.5").
func sameTyped(want, got concord.Value) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	if reflect.TypeOf(want) != reflect.TypeOf(got) {
		return false
	}
	switch w := want.(type) {
	case time.Time:
		return w.Equal(got.(time.Time)) && got.(time.Time).Location() == time.UTC
	case []byte:
		return string(w) == string(got.([]byte))
	case json.Number:
		return w == got.(json.Number)
	}
	return concord.EqualValues(want, got)
}

// SQLite's loose storage is read by the declared type: 0/1 and "true" as
// bools, integer Unix seconds, Julian days and several text forms as times,
// integral reals as integers; a value that does not fit is an error naming
// the record and field.
func TestSQLiteLooseStorage(t *testing.T) {
	s := newSchema(t, sqliteBackend, typesConfig())
	tb := mustNew(t, s.cfg)
	ctx := context.Background()
	ins := func(id string, i, f, b, at any) {
		t.Helper()
		mustExec(t, s.db, fmt.Sprintf(`INSERT INTO %s (id, i, f, b, at, updated_at, version) VALUES (?, ?, ?, ?, ?, '2025-01-01 00:00:00', 1)`, s.table), id, i, f, b, at)
	}
	ins("ints", 7.0, int64(3), int64(1), int64(1700000000))
	ins("text", "42", "2.5", "true", "2025-03-01T09:30:15.5+02:00")
	ins("julian", int64(1), 1.5, int64(0), 2460000.5)
	ins("sqlite-now", int64(1), 1.5, "false", "2025-03-01 09:30:15")
	got, err := tb.Get(ctx, []string{"ints", "text", "julian", "sqlite-now"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]concord.Value{
		"ints":       {"i": int64(7), "f": float64(3), "b": true, "at": time.Unix(1700000000, 0).UTC()},
		"text":       {"i": int64(42), "f": 2.5, "b": true, "at": time.Date(2025, 3, 1, 7, 30, 15, 500000000, time.UTC)},
		"julian":     {"i": int64(1), "f": 1.5, "b": false, "at": time.Date(2023, 2, 25, 0, 0, 0, 0, time.UTC)},
		"sqlite-now": {"b": false, "at": time.Date(2025, 3, 1, 9, 30, 15, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("Get returned %d records; want %d", len(got), len(want))
	}
	for _, r := range got {
		for name, w := range want[r.Key] {
			if !sameTyped(w, r.Fields[name]) {
				t.Errorf("record %s field %s: got %#v; want %#v", r.Key, name, r.Fields[name], w)
			}
		}
	}
	ins("bad-bool", int64(1), 1.0, int64(7), nil)
	_, err = tb.Get(ctx, []string{"bad-bool"})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "bad-bool" || fe.Field != "b" || !errors.Is(err, ErrValue) || !errors.Is(err, connector.ErrPermanent) {
		t.Errorf("a bool column holding 7: got %v; want a permanent *FieldError naming bad-bool and b", err)
	}
}

// A value outside the declared type fails its own patch (permanently, naming
// key, field and reason); the other patches of the batch are applied.
func TestPatchValuesOutOfType(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := newSchema(t, be, typesConfig())
			tb := mustNew(t, s.cfg)
			ctx := context.Background()
			if res, err := tb.Apply(ctx, []connector.Patch{{Key: "r", Set: map[string]concord.Value{"i": 1}, Create: true}}); err != nil || res[0].Err != nil {
				t.Fatal(err, res)
			}
			bad := []struct {
				field string
				v     concord.Value
			}{
				{"i", 1.5}, {"i", uint64(math.MaxUint64)}, {"i", "7"}, {"i", json.Number("1e30")}, {"i", true},
				{"f", math.NaN()}, {"f", math.Inf(1)}, {"f", int64(1<<53 + 1)}, {"f", "1"},
				{"b", int64(1)}, {"b", "true"},
				{"dec", "12,50"}, {"dec", "NaN"}, {"dec", json.Number("01")}, {"dec", strings.Repeat("9", 1001)}, {"dec", math.Inf(-1)},
				{"t", []byte("x")}, {"t", "a\x00b"}, {"t", "\xff"}, {"t", 5},
				{"raw", "text"},
				{"at", "2025-01-01"}, {"at", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}, {"at", int64(0)},
				{"nope", 1}, {"updated_at", time.Now()}, {"version", 9}, {"id", "other"},
			}
			var patches []connector.Patch
			for i, b := range bad {
				patches = append(patches, connector.Patch{Key: "r", Set: map[string]concord.Value{b.field: b.v}})
				if i == len(bad)/2 {
					patches = append(patches, connector.Patch{Key: "r", Set: map[string]concord.Value{"i": 2}})
				}
			}
			res, err := tb.Apply(ctx, patches)
			if err != nil {
				t.Fatal(err)
			}
			j := 0
			for i, p := range patches {
				if p.Set["i"] == 2 {
					if res[i].Err != nil {
						t.Errorf("the good patch in the middle failed: %v", res[i].Err)
					}
					continue
				}
				b := bad[j]
				j++
				var fe *FieldError
				if !errors.As(res[i].Err, &fe) || fe.Key != "r" || fe.Field != b.field || fe.Reason == "" || connector.Classify(res[i].Err) != connector.ErrPermanent {
					t.Errorf("patch %s=%#v: got %v; want a permanent *FieldError naming record r and field %s", b.field, b.v, res[i].Err, b.field)
				}
			}
			got, _ := tb.Get(ctx, []string{"r"})
			if len(got) != 1 || !sameTyped(int64(2), got[0].Fields["i"]) {
				t.Errorf("after the batch: got %v; want i=2 (only the good patch applied)", got)
			}
		})
	}
}

// Configured names that are not plain identifiers are refused, naming
// them; nothing reaches the database.
func TestInjectionThroughNamesRefused(t *testing.T) {
	s := newSchema(t, sqliteBackend, typesConfig())
	evil := []string{
		`t" = 'x'; DROP TABLE users; --`, `t; DROP TABLE x`, `a b`, `"quoted"`, `t--`, ``, `1abc`, `naïve`,
		strings.Repeat("a", 64), "a\x00b", `a.b`,
	}
	for _, name := range evil {
		for _, setting := range []string{"Fields", "Key", "UpdatedAt", "Version", "Deleted", "Table", "Sequence"} {
			if name == "" && (setting == "UpdatedAt" || setting == "Version" || setting == "Deleted") {
				continue // empty: not configured
			}
			cfg := s.cfg
			cfg.Fields = append([]Column(nil), cfg.Fields...)
			switch setting {
			case "Fields":
				cfg.Fields = append(cfg.Fields, Column{name, Text})
			case "Key":
				cfg.Key = []Column{{name, Text}}
			case "UpdatedAt":
				cfg.UpdatedAt = name
			case "Version":
				cfg.Version = name
			case "Deleted":
				cfg.Deleted = name
			case "Table":
				if name == "a.b" {
					continue // schema-qualified: allowed
				}
				cfg.Table = name
			case "Sequence":
				cfg.Dialect, cfg.Track, cfg.UpdatedAt = PostgreSQL, TrackVersion, ""
				cfg.Sequence = name
				if name == "a.b" {
					continue
				}
			}
			_, err := New(cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrConfig) || ce.Setting != setting || (name != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", name))) {
				t.Errorf("%s %q: got %v; want a *ConfigError naming the setting and the name", setting, name, err)
			}
		}
	}
	// The table is untouched and the connector still works.
	tb := mustNew(t, s.cfg)
	if _, err := tb.Get(context.Background(), []string{"x"}); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRefusals(t *testing.T) {
	db := sqliteBackend.open(t)
	base := Config{DB: db, Dialect: SQLite, Table: "t", Key: []Column{{"id", Text}}, Fields: []Column{{"n", Int64}}, UpdatedAt: "u"}
	for name, mod := range map[string]func(*Config){
		"no DB":              func(c *Config) { c.DB = nil },
		"no dialect":         func(c *Config) { c.Dialect = 0 },
		"no key":             func(c *Config) { c.Key = nil },
		"bool key":           func(c *Config) { c.Key = []Column{{"id", Bool}} },
		"duplicate column":   func(c *Config) { c.Fields = append(c.Fields, Column{"ID", Text}) },
		"field is tracking":  func(c *Config) { c.Fields = append(c.Fields, Column{"u", Time}) },
		"unknown type":       func(c *Config) { c.Fields = []Column{{"n", Type(99)}} },
		"no tracking":        func(c *Config) { c.UpdatedAt = "" },
		"negative window":    func(c *Config) { c.Window = -time.Second },
		"version w/o column": func(c *Config) { c.Track = TrackVersion },
		"pg seq missing": func(c *Config) {
			c.Dialect, c.Track, c.Version = PostgreSQL, TrackVersion, "v"
		},
		"sqlite seq given": func(c *Config) { c.Track, c.Version, c.Sequence = TrackVersion, "v", "s" },
		"bad track":        func(c *Config) { c.Track = 7 },
	} {
		c := base
		mod(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v; want ErrConfig", name, err)
		}
	}
	if _, err := New(base); err != nil {
		t.Errorf("the base config: %v", err)
	}
}
