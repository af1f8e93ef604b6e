package enrich_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/enrich"
	"github.com/concordsync/concord/transform/transformtest"
)

// directory is an in-memory lookup that counts its calls.
type directory struct {
	mu    sync.Mutex
	data  map[string]map[string]concord.Value
	calls map[string]int
	err   error
}

func newDirectory() *directory {
	return &directory{
		data: map[string]map[string]concord.Value{
			"acme.test":   {"industry": "Manufacturing", "employees": 120, "owner": "sales-bot"},
			"globex.test": {"industry": "Energy", "employees": nil},
		},
		calls: map[string]int{},
	}
}

func (d *directory) Lookup(_ context.Context, key string) (map[string]concord.Value, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[key]++
	if d.err != nil {
		return nil, d.err
	}
	return d.data[key], nil
}

func (d *directory) count(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[key]
}

// clock is a settable time source.
type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

func rec(key string, kv ...any) concord.Record {
	r := concord.Record{Key: key, Fields: map[string]concord.Value{}}
	for i := 0; i < len(kv); i += 2 {
		r.Fields[kv[i].(string)] = kv[i+1]
	}
	return r
}

func newEnricher(t testing.TB, cfg enrich.Config) *enrich.Enricher {
	t.Helper()
	e, err := enrich.New(cfg)
	require.NoError(t, err)
	return e
}

func TestTransform(t *testing.T) {
	dir := newDirectory()
	e := newEnricher(t, enrich.Config{
		KeyField:  "domain",
		Fields:    []string{"industry", "employees", "owner"},
		Protected: []string{"owner"},
		Lookup:    dir.Lookup,
	})
	transformtest.Table(t, e, []transformtest.Case{
		{Name: "fills missing fields", In: rec("c1", "domain", "acme.test"),
			Want: rec("c1", "domain", "acme.test", "industry", "Manufacturing", "employees", 120)},
		{Name: "fills nil, keeps values", In: rec("c2", "domain", "acme.test", "industry", "Retail", "employees", nil),
			Want: rec("c2", "domain", "acme.test", "industry", "Retail", "employees", 120)},
		{Name: "never fills protected fields", In: rec("c3", "domain", "acme.test", "owner", nil),
			Want: rec("c3", "domain", "acme.test", "owner", nil, "industry", "Manufacturing", "employees", 120)},
		{Name: "nil answers fill nothing", In: rec("c4", "domain", "globex.test"),
			Want: rec("c4", "domain", "globex.test", "industry", "Energy")},
		{Name: "unknown key", In: rec("c5", "domain", "nowhere.test"), Want: rec("c5", "domain", "nowhere.test")},
		{Name: "no key field", In: rec("c6", "industry", nil), Want: rec("c6", "industry", nil)},
		{Name: "key not a string", In: rec("c7", "domain", 7), Want: rec("c7", "domain", 7)},
		{Name: "deleted", In: concord.Record{Key: "c8", Deleted: true}, Want: concord.Record{Key: "c8", Deleted: true}},
	})
	transformtest.NoMutation(t, e, rec("c1", "domain", "acme.test"), rec("c2", "domain", "acme.test", "industry", nil))
}

func TestCache(t *testing.T) {
	dir := newDirectory()
	var clk clock
	e := newEnricher(t, enrich.Config{
		KeyField: "domain", Fields: []string{"industry"}, Lookup: dir.Lookup,
		CacheSize: 1, TTL: time.Minute, Now: clk.Now,
	})
	run := func(domain string) {
		t.Helper()
		if _, err := e.Transform(t.Context(), rec("c", "domain", domain)); err != nil {
			t.Fatal(err)
		}
	}
	run("acme.test")
	run("acme.test")
	if got := dir.count("acme.test"); got != 1 {
		t.Errorf("lookups of acme.test after a hit = %d; want 1", got)
	}
	run("nowhere.test") // cached as "nothing known", evicts acme (size 1)
	run("nowhere.test")
	if got := dir.count("nowhere.test"); got != 1 {
		t.Errorf("lookups of nowhere.test = %d; want 1 (empty answers are cached)", got)
	}
	run("acme.test")
	if got := dir.count("acme.test"); got != 2 {
		t.Errorf("lookups of acme.test after eviction = %d; want 2", got)
	}
	clk.Advance(time.Minute)
	run("acme.test")
	if got := dir.count("acme.test"); got != 3 {
		t.Errorf("lookups of acme.test after the TTL = %d; want 3", got)
	}
	// A record that lacks nothing causes no lookup at all.
	if _, err := e.Transform(t.Context(), rec("c", "domain", "x.test", "industry", "Retail")); err != nil {
		t.Fatal(err)
	}
	if got := dir.count("x.test"); got != 0 {
		t.Errorf("lookups for a complete record = %d; want 0", got)
	}
	want := enrich.Stats{Hits: 2, Lookups: 4}
	if diff := cmp.Diff(want, e.Stats()); diff != "" {
		t.Errorf("Stats differ (-want +got):\n%s", diff)
	}
}

func TestCachedValuesAreCopies(t *testing.T) {
	tags := []any{"b2b"}
	e := newEnricher(t, enrich.Config{KeyField: "domain", Fields: []string{"tags"},
		Lookup: func(context.Context, string) (map[string]concord.Value, error) {
			return map[string]concord.Value{"tags": tags}, nil
		}})
	first, err := e.Transform(t.Context(), rec("c1", "domain", "acme.test"))
	require.NoError(t, err)
	tags[0] = "changed by the host"
	first.Fields["tags"].([]any)[0] = "changed by a caller"
	second, err := e.Transform(t.Context(), rec("c2", "domain", "acme.test"))
	require.NoError(t, err)
	if diff := cmp.Diff([]any{"b2b"}, second.Fields["tags"]); diff != "" {
		t.Errorf("cached value changed (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	errDown := errors.New("directory down")
	dir := newDirectory()
	dir.err = errDown
	e := newEnricher(t, enrich.Config{KeyField: "domain", Fields: []string{"industry"}, Lookup: dir.Lookup})
	_, err := e.Transform(t.Context(), rec("c1", "domain", "acme.test"))
	var fe *transform.FieldError
	if !errors.As(err, &fe) || !errors.Is(err, errDown) || fe.Key != "c1" || fe.Field != "domain" || fe.Value != "acme.test" {
		t.Fatalf("Transform error = %v; want a FieldError for c1 field domain wrapping %v", err, errDown)
	}
	dir.err = nil
	if _, err := e.Transform(t.Context(), rec("c1", "domain", "acme.test")); err != nil {
		t.Errorf("Transform after recovery = %v; want nil (errors are not cached)", err)
	}

	bad := newEnricher(t, enrich.Config{KeyField: "domain", Fields: []string{"industry"},
		Lookup: func(context.Context, string) (map[string]concord.Value, error) {
			return map[string]concord.Value{"industry": struct{}{}}, nil
		}})
	if _, err := bad.Transform(t.Context(), rec("c1", "domain", "acme.test")); !errors.Is(err, concord.ErrUnsupportedValue) || !strings.Contains(err.Error(), `"industry"`) {
		t.Errorf("Transform with a bad looked-up value = %v; want ErrUnsupportedValue naming industry", err)
	}
	if got := bad.Stats().Errors; got != 1 {
		t.Errorf("Stats().Errors = %d; want 1", got)
	}
}

func TestLimiter(t *testing.T) {
	dir := newDirectory()
	var waits atomic.Int32
	limiter := enrich.LimiterFunc(func(ctx context.Context) error {
		waits.Add(1)
		return ctx.Err()
	})
	e := newEnricher(t, enrich.Config{KeyField: "domain", Fields: []string{"industry"}, Lookup: dir.Lookup, Limiter: limiter})
	for _, d := range []string{"acme.test", "acme.test", "globex.test"} {
		if _, err := e.Transform(t.Context(), rec("c", "domain", d)); err != nil {
			t.Fatal(err)
		}
	}
	if got := waits.Load(); got != 2 {
		t.Errorf("limiter waits = %d; want 2 (one per lookup, none on a cache hit)", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.Transform(ctx, rec("c", "domain", "initech.test"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Transform with a cancelled limiter wait = %v; want context.Canceled", err)
	}
	if got := dir.count("initech.test"); got != 0 {
		t.Errorf("lookups after a failed wait = %d; want 0", got)
	}
}

func TestConcurrent(t *testing.T) {
	dir := newDirectory()
	e := newEnricher(t, enrich.Config{KeyField: "domain", Fields: []string{"industry"}, Lookup: dir.Lookup, CacheSize: 2})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				d := []string{"acme.test", "globex.test", "nowhere.test"}[(i+j)%3]
				if _, err := e.Transform(context.Background(), rec("c", "domain", d)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if s := e.Stats(); s.Hits+s.Lookups+s.Shared != 8*200 {
		t.Errorf("Stats = %+v; want hits + lookups + shared = %d", s, 8*200)
	}
}

func TestNewValidates(t *testing.T) {
	lookup := newDirectory().Lookup
	tests := []struct {
		name string
		cfg  enrich.Config
		want string
	}{
		{"no key field", enrich.Config{Fields: []string{"a"}, Lookup: lookup}, "no KeyField"},
		{"no fields", enrich.Config{KeyField: "k", Lookup: lookup}, "no Fields"},
		{"empty field", enrich.Config{KeyField: "k", Fields: []string{""}, Lookup: lookup}, "empty field name"},
		{"no lookup", enrich.Config{KeyField: "k", Fields: []string{"a"}}, "no Lookup"},
		{"negative ttl", enrich.Config{KeyField: "k", Fields: []string{"a"}, Lookup: lookup, TTL: -1}, "negative TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := enrich.New(tt.cfg)
			if !errors.Is(err, enrich.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v; want ErrInvalidConfig containing %q", err, tt.want)
			}
		})
	}
}
