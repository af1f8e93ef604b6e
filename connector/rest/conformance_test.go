package rest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/connectortest"
	"github.com/concordsync/concord/connector/rest"
	"github.com/concordsync/concord/connector/rest/resttest"
)

// fieldPaths maps the fields the conformance suite writes to nested places
// in the records, so that the suite exercises nested reads and nested
// merge-patch writes.
var fieldPaths = map[string]string{
	"n":    "n",
	"name": "profile.name",
	"a":    "attrs.a",
	"b":    "attrs.b",
	"c":    "flags.c",
	"d":    "d",
	"k":    "meta.k",
	"keep": "keep",
}

const token = "tok-secret"

// baseConfig is the configuration for a resttest server, without its
// change feed.
func baseConfig(srv *resttest.Server) rest.Config {
	return rest.Config{
		BaseURL:      srv.URL(),
		Client:       srv.Client(),
		Auth:         rest.BearerToken(func(context.Context) (string, error) { return token, nil }),
		Timeout:      5 * time.Second,
		Collection:   "/records",
		KeyPath:      "id",
		TagPath:      "version",
		ModifiedPath: "updated_at",
		DeletedPath:  "deleted",
		Fields:       fieldPaths,
		Create:       rest.CreatePOST,
		AllowDelete:  true,
		Scan:         rest.Scan{Path: "/records", ItemsPath: "data", AfterParam: "after"},
	}
}

func cursorConfig(srv *resttest.Server) rest.Config {
	cfg := baseConfig(srv)
	cfg.Changes = rest.Changes{Path: "/changes", ItemsPath: "data", CursorParam: "cursor", NextCursorPath: "next_cursor", HasMorePath: "has_more"}
	return cfg
}

func pageConfig(srv *resttest.Server) rest.Config {
	cfg := baseConfig(srv)
	cfg.Changes = rest.Changes{Path: "/records", ItemsPath: "data", PageParam: "page", LimitParam: "per_page", SinceParam: "updated_since"}
	cfg.Create = rest.CreatePUT
	return cfg
}

func newServer(t testing.TB, opts resttest.Options) *resttest.Server {
	t.Helper()
	if opts.Token == "" {
		opts.Token = token
	}
	srv := resttest.New(opts)
	t.Cleanup(srv.Close)
	return srv
}

func mustNew(t testing.TB, cfg rest.Config) *rest.Scanning {
	t.Helper()
	c, err := rest.NewScanning(cfg)
	if err != nil {
		t.Fatalf("NewScanning: %v", err)
	}
	return c
}

// nest turns the suite's flat fields into the nested merge patch a person
// would send, splitting the paths of fieldPaths by hand (not with
// package rest's own path code).
func nest(fields map[string]concord.Value) map[string]any {
	out := map[string]any{}
	for name, v := range fields {
		p, ok := fieldPaths[name]
		if !ok {
			p = name
		}
		parts := strings.Split(p, ".")
		m := out
		for _, part := range parts[:len(parts)-1] {
			sub, ok := m[part].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[part] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

type system struct {
	srv  *resttest.Server
	conn connector.Connector
}

func (s system) Connector() connector.Connector { return s.conn }

func (s system) Edit(_ context.Context, key string, fields map[string]concord.Value) error {
	s.srv.Edit(key, nest(fields))
	return nil
}

func (s system) Delete(_ context.Context, key string) error {
	s.srv.Delete(key)
	return nil
}

// statuses counts the statuses that the servers a harness made answered.
type statuses struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *statuses) add(srv *resttest.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[int]int{}
	}
	for _, r := range srv.Requests() {
		s.n[r.Status]++
	}
}

func harness(cfg func(*resttest.Server) rest.Config, opts resttest.Options, wrap func(*rest.Scanning) connector.Connector, seen *statuses) connectortest.Harness {
	var servers atomic.Uint64
	return connectortest.Harness{
		New: func(t testing.TB) connectortest.System {
			o := opts
			o.Seed += 1000 * servers.Add(1) // each check its own schedule
			srv := newServer(t, o)
			if seen != nil {
				t.Cleanup(func() { seen.add(srv) })
			}
			conn := mustNew(t, cfg(srv))
			var c connector.Connector = conn
			if wrap != nil {
				c = wrap(conn)
			}
			return system{srv: srv, conn: c}
		},
		Conditional: true,
		Idempotent:  true,
		Deletes:     true,
	}
}

// The conformance suite with a clean server: cursor pagination with POST
// creates, and page pagination by modification time with PUT creates.
func TestConformanceCursor(t *testing.T) {
	connectortest.Run(t, harness(cursorConfig, resttest.Options{}, nil, nil))
}

func TestConformancePage(t *testing.T) {
	connectortest.Run(t, harness(pageConfig, resttest.Options{}, nil, nil))
}

// faults is a schedule under which roughly a third of requests fail or
// crawl.
var faults = resttest.Faults{RateLimit: 0.12, RetryAfter: "1", ServerError: 0.12, Slow: 0.08, Delay: 15 * time.Millisecond}

// The conformance suite with faults on, through a wrapper that retries as
// the engine does: transient and rate-limited failures again, honouring
// Retry-After (scaled down to keep the test fast; the wait asked for is
// checked), everything else as it is.
func TestConformanceCursorFaults(t *testing.T) {
	var seen statuses
	connectortest.Run(t, harness(cursorConfig, resttest.Options{Faults: faults, Seed: 1}, retryWrap(t), &seen))
	wantFaults(t, &seen)
}

func TestConformancePageFaults(t *testing.T) {
	var seen statuses
	connectortest.Run(t, harness(pageConfig, resttest.Options{Faults: faults, Seed: 2}, retryWrap(t), &seen))
	wantFaults(t, &seen)
}

// wantFaults checks that the faults did fire: a run that passes because
// nothing failed proves nothing.
func wantFaults(t *testing.T, seen *statuses) {
	t.Helper()
	fivexx := seen.n[500] + seen.n[502] + seen.n[503]
	if seen.n[429] < 10 || fivexx < 10 || seen.n[200] < 50 {
		t.Errorf("statuses served: %v; want at least 10 429s, 10 5xx and 50 successes", seen.n)
	}
	t.Logf("statuses served: %v", seen.n)
}

func retryWrap(t *testing.T) func(*rest.Scanning) connector.Connector {
	return func(c *rest.Scanning) connector.Connector { return &retrying{t: t, c: c} }
}

// retrying retries what the engine would retry.
type retrying struct {
	t  testing.TB
	c  *rest.Scanning
	mu sync.Mutex
	n  int // retries made
}

const maxAttempts = 60

func (r *retrying) wait(ctx context.Context, err error) error {
	if !connector.Retryable(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if connector.Classify(err) == connector.ErrRateLimited {
		if d, ok := connector.RetryAfter(err); !ok || d != time.Second {
			r.t.Errorf("rate limited: RetryAfter %v, %v; want 1s as the server said (%v)", d, ok, err)
		}
	}
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Millisecond): // the engine would wait 1s
		return nil
	}
}

func (r *retrying) Changes(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	for range maxAttempts {
		b, err := r.c.Changes(ctx, cur, limit)
		if err == nil {
			return b, nil
		}
		if err := r.wait(ctx, err); err != nil {
			return b, err
		}
	}
	return connector.Batch{}, errors.New("retrying: gave up")
}

func (r *retrying) Get(ctx context.Context, keys []string) ([]concord.Record, error) {
	// One key at a time: a Get of many keys is one request per key, and
	// retrying them all together until every one succeeds at once would
	// rarely succeed under the fault schedule.
	var out []concord.Record
	for _, k := range keys {
		var lastErr error
		ok := false
		for range maxAttempts {
			recs, err := r.c.Get(ctx, []string{k})
			if err == nil {
				out, ok = append(out, recs...), true
				break
			}
			lastErr = err
			if err := r.wait(ctx, err); err != nil {
				return nil, err
			}
		}
		if !ok {
			return nil, fmt.Errorf("retrying: gave up: %w", lastErr)
		}
	}
	return out, nil
}

func (r *retrying) Scan(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	for range maxAttempts {
		b, err := r.c.Scan(ctx, cur, limit)
		if err == nil {
			return b, nil
		}
		if err := r.wait(ctx, err); err != nil {
			return b, err
		}
	}
	return connector.Batch{}, errors.New("retrying: gave up")
}

// Apply retries the patches whose results are retryable, alone.
func (r *retrying) Apply(ctx context.Context, patches []connector.Patch) ([]connector.Result, error) {
	out := make([]connector.Result, len(patches))
	todo := make([]int, len(patches))
	for i := range todo {
		todo[i] = i
	}
	for range maxAttempts {
		batch := make([]connector.Patch, len(todo))
		for j, i := range todo {
			batch[j] = patches[i]
		}
		res, err := r.c.Apply(ctx, batch)
		if err != nil {
			return nil, err
		}
		var again []int
		for j, i := range todo {
			out[i] = res[j]
			if res[j].Err != nil && connector.Retryable(res[j].Err) {
				if err := r.wait(ctx, res[j].Err); err != nil {
					return nil, err
				}
				again = append(again, i)
			}
		}
		if todo = again; len(todo) == 0 {
			return out, nil
		}
	}
	return out, nil
}

// EditAll makes the edits at one instant of the server's clock, as a bulk
// import does, so that the suite's EditsAtOneInstant check runs.
func (s system) EditAll(_ context.Context, edits map[string]map[string]concord.Value) error {
	nested := make(map[string]map[string]any, len(edits))
	for key, fields := range edits {
		nested[key] = nest(fields)
	}
	s.srv.EditEach(nested)
	return nil
}

var _ connectortest.BulkEditor = system{}
