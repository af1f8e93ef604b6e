package connectortest

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a testing.TB that records failures and skips instead of
// reporting them, so that the suite's own tests can run a check against a
// broken connector and assert that it fails.
type recorder struct {
	testing.TB // the real test: Name, TempDir, Context, ...

	mu       sync.Mutex
	failed   bool
	skipped  bool
	msgs     []string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Fail() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) Skipped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skipped
}

func (r *recorder) log(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, s)
}

func (r *recorder) Log(args ...any)                 { r.log(fmt.Sprint(args...)) }
func (r *recorder) Logf(format string, args ...any) { r.log(fmt.Sprintf(format, args...)) }
func (r *recorder) Error(args ...any)               { r.Log(args...); r.Fail() }
func (r *recorder) Errorf(format string, args ...any) {
	r.Logf(format, args...)
	r.Fail()
}
func (r *recorder) FailNow()                       { r.Fail(); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)              { r.Log(args...); r.FailNow() }
func (r *recorder) Fatalf(format string, a ...any) { r.Logf(format, a...); r.FailNow() }
func (r *recorder) SkipNow()                       { r.mu.Lock(); r.skipped = true; r.mu.Unlock(); runtime.Goexit() }
func (r *recorder) Skip(args ...any)               { r.Log(args...); r.SkipNow() }
func (r *recorder) Skipf(format string, a ...any)  { r.Logf(format, a...); r.SkipNow() }
func (r *recorder) Cleanup(f func())               { r.mu.Lock(); r.cleanups = append(r.cleanups, f); r.mu.Unlock() }
func (r *recorder) String() string                 { return strings.Join(r.msgs, "\n") }

// goexitSafe runs f in its own goroutine, so that FailNow and SkipNow
// (runtime.Goexit) end f and not the caller, and waits for it.
func (r *recorder) goexitSafe(f func()) {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	<-done
}

// runCleanups runs the registered cleanups, last first, as testing does.
func (r *recorder) runCleanups() {
	slices.Reverse(r.cleanups)
	for _, f := range r.cleanups {
		r.goexitSafe(f)
	}
}

// record runs check c against h with a recorder and returns it.
func record(t testing.TB, h Harness, c check) *recorder {
	t.Helper()
	r := &recorder{TB: t}
	r.goexitSafe(func() { runCheck(r, h, c) })
	r.runCleanups()
	return r
}

// person adapts a fake System, seen through conn, to System.
type person struct {
	s    *fake.System
	conn connector.Connector
}

func (p person) Connector() connector.Connector { return p.conn }
func (p person) Edit(_ context.Context, key string, f map[string]concord.Value) error {
	p.s.Edit(key, f)
	return nil
}
func (p person) Delete(_ context.Context, key string) error { p.s.Delete(key); return nil }

// broken is a fake System with some connector methods replaced.
type broken struct {
	*fake.System
	changes func(context.Context, connector.Cursor, int) (connector.Batch, error)
	apply   func(context.Context, []connector.Patch) ([]connector.Result, error)
	scan    func(context.Context, connector.Cursor, int) (connector.Batch, error)
}

func (b *broken) Changes(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
	if b.changes != nil {
		return b.changes(ctx, c, limit)
	}
	return b.System.Changes(ctx, c, limit)
}

func (b *broken) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	if b.apply != nil {
		return b.apply(ctx, ps)
	}
	return b.System.Apply(ctx, ps)
}

func (b *broken) Scan(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
	if b.scan != nil {
		return b.scan(ctx, c, limit)
	}
	return b.System.Scan(ctx, c, limit)
}

// editPatches returns copies of ps with edit applied to each copy.
func editPatches(ps []connector.Patch, edit func(*connector.Patch)) []connector.Patch {
	out := slices.Clone(ps)
	for i := range out {
		edit(&out[i])
	}
	return out
}

func TestSuiteDetectsBrokenConnectors(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })

	tests := []struct {
		name     string
		opts     []fake.Option
		features func(*Harness) // changes the default: every feature claimed
		wrap     func(*fake.System) connector.Connector
		only     []string // run only these checks; nil: all
		wantFail []string // nil: no check may fail
		wantSkip []string
		wantMsg  string // in the failure messages, if not empty
	}{
		{name: "Correct"},
		{name: "NoTagsNotClaimed", opts: []fake.Option{fake.WithoutTags()},
			features: func(h *Harness) { h.Conditional = false }, wantSkip: []string{"ConditionalWrites"}},
		{name: "ConnectorOnly", wrap: func(s *fake.System) connector.Connector { return struct{ connector.Connector }{s} },
			wantSkip: []string{"Getter", "Scanner"}},
		{name: "DropsEveryThirdChange", wrap: func(s *fake.System) connector.Connector {
			var mu sync.Mutex
			n := 0
			return &broken{System: s, changes: func(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
				b, err := s.Changes(ctx, c, limit)
				mu.Lock()
				defer mu.Unlock()
				b.Records = slices.DeleteFunc(b.Records, func(concord.Record) bool { n++; return n%3 == 0 })
				return b, err
			}}
		}, wantFail: []string{"ChangesReturnsEveryEdit", "EditsWhilePaging"}, wantMsg: "records differ"},
		{name: "OverwritesWholeRecords", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, apply: func(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
				return s.Apply(ctx, editPatches(ps, func(p *connector.Patch) {
					if cur, ok := s.Record(p.Key); ok && !p.Delete {
						set := map[string]concord.Value{}
						for k := range cur.Fields {
							set[k] = nil
						}
						maps.Copy(set, p.Set)
						p.Set = set
					}
				}))
			}}
		}, wantFail: []string{"ApplyTouchesOnlyNamedFields"}, wantMsg: `"keep"`},
		{name: "OversizedBatches", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, changes: func(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
				return s.Changes(ctx, c, limit+1)
			}}
		}, wantFail: []string{"ChangesReturnsEveryEdit", "BatchBounds"}, wantMsg: "want at most 1"},
		{name: "AlwaysCreates", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, apply: func(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
				return s.Apply(ctx, editPatches(ps, func(p *connector.Patch) { p.Create = true }))
			}}
		}, wantFail: []string{"ApplyCreate", "ApplyResultsInOrder", "Deletes"}, wantMsg: "want class not found"},
		{name: "ReversesResults", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, apply: func(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
				res, err := s.Apply(ctx, ps)
				slices.Reverse(res)
				return res, err
			}}
		}, wantFail: []string{"ApplyResultsInOrder"}, wantMsg: "results must be in patch order"},
		{name: "StopsAtFirstFailure", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, apply: func(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
				var out []connector.Result
				for _, p := range ps {
					if len(out) > 0 && out[len(out)-1].Err != nil {
						out = append(out, connector.Result{Key: p.Key, Err: connector.Transient(fmt.Errorf("batch aborted"))})
						continue
					}
					res, err := s.Apply(ctx, []connector.Patch{p})
					if err != nil {
						return nil, err
					}
					out = append(out, res...)
				}
				return out, nil
			}}
		}, wantFail: []string{"ApplyCreate", "ApplyResultsInOrder"}, wantMsg: "batch aborted"},
		{name: "IgnoresIfMatch", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, apply: func(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
				return s.Apply(ctx, editPatches(ps, func(p *connector.Patch) { p.IfMatch = "" }))
			}}
		}, wantFail: []string{"ConditionalWrites"}, wantMsg: "want class precondition failed"},
		{name: "NoTagsButClaimed", opts: []fake.Option{fake.WithoutTags()},
			wantFail: []string{"ConditionalWrites"}, wantMsg: `has Tag ""`},
		{name: "IgnoresIdempotencyKeys", opts: []fake.Option{fake.WithoutIdempotency()},
			wantFail: []string{"IdempotentWrites"}, wantMsg: "no second effect"},
		{name: "HidesItsOwnWrites", wrap: func(s *fake.System) connector.Connector {
			var mu sync.Mutex
			written := map[string]bool{}
			return &broken{System: s,
				apply: func(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
					mu.Lock()
					for _, p := range ps {
						written[p.Key] = true
					}
					mu.Unlock()
					return s.Apply(ctx, ps)
				},
				changes: func(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
					b, err := s.Changes(ctx, c, limit)
					mu.Lock()
					defer mu.Unlock()
					b.Records = slices.DeleteFunc(b.Records, func(r concord.Record) bool { return written[r.Key] })
					return b, err
				}}
		}, wantFail: []string{"ApplyEchoesInFeed", "ApplyTouchesOnlyNamedFields"}, wantMsg: "want both writes echoed"},
		{name: "MutatesPatches", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, apply: func(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
				for _, p := range ps {
					if p.Set != nil {
						p.Set["touched"] = true
					}
				}
				return s.Apply(ctx, ps)
			}}
		}, wantFail: []string{"ApplyTouchesOnlyNamedFields"}, wantMsg: "Apply modified its patches"},
		{name: "ScanSkipsRecords", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, scan: func(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
				b, err := s.Scan(ctx, c, limit+1) // Next points past a record not returned
				if len(b.Records) > limit {
					b.Records, b.More = b.Records[:limit], true
				}
				return b, err
			}}
		}, wantFail: []string{"Scanner"}, wantMsg: "Scan with limit 1"},
		{name: "IgnoresContext", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s,
				changes: func(_ context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
					return s.Changes(context.Background(), c, limit)
				},
				apply: func(_ context.Context, ps []connector.Patch) ([]connector.Result, error) {
					return s.Apply(context.Background(), ps)
				}}
		}, wantFail: []string{"CancelledContext"}, wantMsg: "want context.Canceled"},
		{name: "LeaksGoroutines", only: []string{"ChangesReturnsEveryEdit"}, wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, changes: func(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
				go func() { <-release }()
				return s.Changes(ctx, c, limit)
			}}
		}, wantFail: []string{"ChangesReturnsEveryEdit"}, wantMsg: "unexpected goroutines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Harness{Conditional: true, Idempotent: true, Deletes: true}
			if tt.features != nil {
				tt.features(&h)
			}
			h.New = func(testing.TB) System {
				s := fake.New("crm", tt.opts...)
				var conn connector.Connector = s
				if tt.wrap != nil {
					conn = tt.wrap(s)
				}
				return person{s: s, conn: conn}
			}
			var failed, skipped []string
			var msgs strings.Builder
			for _, c := range checks {
				if tt.only != nil && !slices.Contains(tt.only, c.name) {
					continue
				}
				r := record(t, h, c)
				if r.Failed() {
					failed = append(failed, c.name)
					fmt.Fprintf(&msgs, "--- %s:\n%s\n", c.name, r)
				}
				if r.Skipped() {
					skipped = append(skipped, c.name)
				}
			}
			if tt.wantFail == nil && len(failed) > 0 {
				t.Errorf("checks failed: %v; want none:\n%s", failed, &msgs)
			}
			for _, name := range tt.wantFail {
				if !slices.Contains(failed, name) {
					t.Errorf("check %s passed; want it to fail (failed: %v)", name, failed)
				}
			}
			if diff := cmp.Diff(tt.wantSkip, skipped); diff != "" {
				t.Errorf("skipped checks (-want +got):\n%s", diff)
			}
			if !strings.Contains(msgs.String(), tt.wantMsg) {
				t.Errorf("failure messages do not mention %q:\n%s", tt.wantMsg, &msgs)
			}
		})
	}
}

// TestRun runs the suite through its public entry point against the fake.
func TestRun(t *testing.T) {
	Run(t, Harness{
		New:         func(testing.TB) System { s := fake.New("crm"); return person{s: s, conn: s} },
		Conditional: true,
		Idempotent:  true,
		Deletes:     true,
	})
}
