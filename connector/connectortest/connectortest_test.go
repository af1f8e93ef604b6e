package connectortest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
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

// person adapts a fake System, seen through conn, to System. Its clock (if
// not nil) stamps the fake's records; EditAll holds it still.
type person struct {
	s     *fake.System
	conn  connector.Connector
	clock *clock
}

func (p person) Connector() connector.Connector { return p.conn }
func (p person) Edit(_ context.Context, key string, f map[string]concord.Value) error {
	p.s.Edit(key, f)
	return nil
}
func (p person) Delete(_ context.Context, key string) error { p.s.Delete(key); return nil }

// EditAll makes the edits with the clock stopped, so that every record
// gets the same modification time.
func (p person) EditAll(_ context.Context, edits map[string]map[string]concord.Value) error {
	if p.clock == nil {
		return fmt.Errorf("person: EditAll without a clock")
	}
	p.clock.hold(func() {
		for _, k := range slices.Sorted(maps.Keys(edits)) {
			p.s.Edit(k, edits[k])
		}
	})
	return nil
}

// clock is a fake's clock that moves one millisecond per reading, unless
// held still.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	held bool
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) read() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		c.now = c.now.Add(time.Millisecond)
	}
	return c.now
}

// hold runs f with the clock one millisecond on and then stopped.
func (c *clock) hold(f func()) {
	c.read()
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.held = false; c.mu.Unlock() }()
	f()
}

// broken is a fake System with some connector methods replaced.
type broken struct {
	*fake.System
	changes func(context.Context, connector.Cursor, int) (connector.Batch, error)
	apply   func(context.Context, []connector.Patch) ([]connector.Result, error)
	scan    func(context.Context, connector.Cursor, int) (connector.Batch, error)
	get     func(context.Context, []string) ([]concord.Record, error)
	start   func(context.Context) (connector.ScanStart, error)
}

func (b *broken) StartScan(ctx context.Context) (connector.ScanStart, error) {
	if b.start != nil {
		return b.start(ctx)
	}
	return b.System.StartScan(ctx)
}

func (b *broken) Get(ctx context.Context, keys []string) ([]concord.Record, error) {
	if b.get != nil {
		return b.get(ctx, keys)
	}
	return b.System.Get(ctx, keys)
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
		noMsg    string // not in the failure messages, if not empty
		schema   map[string]Kind
		accept   func(creating bool, f map[string]concord.Value) error // refuses edits and writes
	}{
		{name: "Correct"},
		{name: "NoTagsNotClaimed", opts: []fake.Option{fake.WithoutTags()},
			features: func(h *Harness) { h.Conditional = false }, wantSkip: []string{"ConditionalWrites"}},
		{name: "ConnectorOnly", wrap: func(s *fake.System) connector.Connector { return struct{ connector.Connector }{s} },
			wantSkip: []string{"Getter", "Scanner", "ScanStarter"}},
		{name: "ScanStartPastTheEnd", wrap: func(s *fake.System) connector.Connector {
			// A feed cursor taken as "the latest change plus one": the
			// first change after StartScan is never read.
			return &broken{System: s, start: func(ctx context.Context) (connector.ScanStart, error) {
				st, err := s.StartScan(ctx)
				n, _ := strconv.ParseUint(string(st.Feed), 10, 64)
				st.Feed = connector.Cursor(strconv.FormatUint(n+1, 10))
				return st, err
			}}
		}, only: []string{"ScanStarter"}, wantFail: []string{"ScanStarter"}, wantMsg: "from the cursor StartScan returned"},
		{name: "ScanStartWildEstimate", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, start: func(ctx context.Context) (connector.ScanStart, error) {
				st, err := s.StartScan(ctx)
				st.Estimate *= 1000
				return st, err
			}}
		}, only: []string{"ScanStarter"}, wantFail: []string{"ScanStarter"}, wantMsg: "want 0 (unknown) or about 6"},
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
			wantFail: []string{"ConditionalWrites"}, wantMsg: "ConditionalWrites() = false, but Harness.Conditional = true"},
		{name: "NoTagsButClaimedByTheHarnessOnly", opts: []fake.Option{fake.WithoutTags()},
			wrap:     func(s *fake.System) connector.Connector { return struct{ connector.Connector }{s} },
			wantSkip: []string{"Getter", "Scanner", "ScanStarter"},
			wantFail: []string{"ConditionalWrites"}, wantMsg: `has Tag ""`},
		{name: "ClaimsConditionalWritesItLacks", opts: []fake.Option{fake.WithoutTags()},
			features: func(h *Harness) { h.Conditional = false },
			wrap:     func(s *fake.System) connector.Connector { return claimsConditional{s} },
			wantFail: []string{"ConditionalWrites"}, wantMsg: "ConditionalWrites() = true, but Harness.Conditional = false"},
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

		// The bugs the suite once missed (issue 10, item 4).
		{name: "PagesByTimestamp", features: noDeletes,
			wrap:     func(s *fake.System) connector.Connector { return &byTime{System: s} },
			wantSkip: []string{"Deletes"}, wantFail: []string{"EditsAtOneInstant"}, wantMsg: "updated_at > cursor"},
		{name: "PagesByTimestampAndKey", features: noDeletes,
			wrap:     func(s *fake.System) connector.Connector { return &byTime{System: s, tieBreak: true} },
			wantSkip: []string{"Deletes"}},
		{name: "EmptyCursorAfterEmptyBatch", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, changes: func(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
				b, err := s.Changes(ctx, c, limit)
				if err == nil && len(b.Records) == 0 {
					b.Next = ""
				}
				return b, err
			}}
		}, wantFail: []string{"CursorAfterEmptyBatch"}, wantMsg: "cursor going back: Changes returned an empty batch with Next \"\""},
		{name: "EarlierCursorAfterEmptyBatch", wrap: func(s *fake.System) connector.Connector {
			return &broken{System: s, changes: func(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
				b, err := s.Changes(ctx, c, limit)
				if n, perr := strconv.Atoi(string(c)); err == nil && perr == nil && len(b.Records) == 0 {
					b.Next = connector.Cursor(strconv.Itoa(max(n-2, 0)))
				}
				return b, err
			}}
		}, wantFail: []string{"CursorAfterEmptyBatch"}, wantMsg: "cursor going back"},
		{name: "BoolComesBackAsInt64", wrap: func(s *fake.System) connector.Connector {
			return reading(s, func(_ string, v concord.Value) concord.Value {
				if b, ok := v.(bool); ok {
					return int64(map[bool]int{false: 0, true: 1}[b])
				}
				return v
			})
		}, wantFail: []string{"TypeFidelity"},
			wantMsg: `field "c" (Bool): wrote true (bool), read back 1 (int64)`},
		{name: "FalseComesBackAsNil", wrap: func(s *fake.System) connector.Connector {
			return reading(s, func(_ string, v concord.Value) concord.Value {
				if v == false {
					return nil
				}
				return v
			})
		}, wantFail: []string{"TypeFidelity"}, wantMsg: `wrote false (bool), read back nil`},
		{name: "IntsComeBackAsInt64", wrap: func(s *fake.System) connector.Connector {
			return reading(s, func(_ string, v concord.Value) concord.Value {
				if i, ok := v.(int); ok {
					return int64(i)
				}
				return v
			})
		}},
		{name: "Int64AndOneWrongValue", only: []string{"ChangesReturnsEveryEdit"}, wrap: func(s *fake.System) connector.Connector {
			return reading(s, func(field string, v concord.Value) concord.Value {
				if i, ok := v.(int); ok {
					if field == "n" && i == 1 {
						i++
					}
					return int64(i)
				}
				return v
			})
		}, wantFail: []string{"ChangesReturnsEveryEdit"},
			wantMsg: `record "ct-01", field "n": got 2 (int64); want 1 (int)`, noMsg: `field "a"`},
		{name: "DecimalsAsFloats", schema: everyKind, wrap: func(s *fake.System) connector.Connector {
			return reading(s, func(_ string, v concord.Value) concord.Value {
				if n, ok := v.(json.Number); ok {
					f, _ := n.Float64()
					return f
				}
				return v
			})
		}, wantFail: []string{"TypeFidelity"},
			wantMsg: `field "price" (Decimal): wrote -12345678901234567890.123456789 (json.Number), read back -1.2345678901234567e+19 (float64)`},
		{name: "TimesTruncatedToSeconds", schema: everyKind, wrap: func(s *fake.System) connector.Connector {
			return reading(s, func(_ string, v concord.Value) concord.Value {
				if t, ok := v.(time.Time); ok {
					return t.Truncate(time.Second)
				}
				return v
			})
		}, wantFail: []string{"TypeFidelity"}, wantMsg: `wrote 2024-02-29T23:59:59.123456Z (time.Time), read back 2024-02-29T23:59:59Z (time.Time)`},
		{name: "BytesAsStrings", schema: everyKind, wrap: func(s *fake.System) connector.Connector {
			return reading(s, func(_ string, v concord.Value) concord.Value {
				if b, ok := v.([]byte); ok {
					return string(b)
				}
				return v
			})
		}, wantFail: []string{"TypeFidelity"}, wantMsg: `wrote "plain" ([]byte), read back "plain" (string)`},
		{name: "FixedColumnsDeclared", schema: fixedColumns, accept: acceptFixed},
		{name: "FixedColumnsUndeclared", accept: acceptFixed, only: []string{"ChangesReturnsEveryEdit"},
			wantFail: []string{"ChangesReturnsEveryEdit"}, wantMsg: `column "qty" is NOT NULL`},
		{name: "SchemaOnlyBools", schema: map[string]Kind{"on": KindBool},
			wantFail: checkNames(), wantMsg: "only Bool fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Harness{Conditional: true, Idempotent: true, Deletes: true}
			if tt.features != nil {
				tt.features(&h)
			}
			h.Schema = tt.schema
			h.New = func(testing.TB) System {
				c := newClock()
				s := fake.New("crm", append([]fake.Option{fake.WithClock(c.read)}, tt.opts...)...)
				var conn connector.Connector = s
				if tt.wrap != nil {
					conn = tt.wrap(s)
				}
				if tt.accept != nil {
					return strict{person: person{s: s, conn: &refusing{System: s, accept: tt.accept}, clock: c}, accept: tt.accept}
				}
				return person{s: s, conn: conn, clock: c}
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
			if testing.Verbose() {
				t.Logf("failed: %v\n%s", failed, &msgs)
			}
			if tt.wantFail == nil && len(failed) > 0 {
				t.Errorf("checks failed: %v; want none:\n%s", failed, &msgs)
			}
			for _, name := range tt.wantFail {
				if !slices.Contains(failed, name) {
					t.Errorf("check %s passed; want it to fail (failed: %v)", name, failed)
				}
			}
			if diff := gocmp.Diff(tt.wantSkip, skipped); diff != "" {
				t.Errorf("skipped checks (-want +got):\n%s", diff)
			}
			if !strings.Contains(msgs.String(), tt.wantMsg) {
				t.Errorf("failure messages do not mention %q:\n%s", tt.wantMsg, &msgs)
			}
			if tt.noMsg != "" && strings.Contains(msgs.String(), tt.noMsg) {
				t.Errorf("failure messages mention %q; want them not to:\n%s", tt.noMsg, &msgs)
			}
		})
	}
}

// TestRun runs the suite through its public entry point against the fake.
func TestRun(t *testing.T) {
	Run(t, Harness{
		New: func(testing.TB) System {
			c := newClock()
			s := fake.New("crm", fake.WithClock(c.read))
			return person{s: s, conn: s, clock: c}
		},
		Conditional: true,
		Idempotent:  true,
		Deletes:     true,
	})
}

func checkNames() []string {
	var names []string
	for _, c := range checks {
		names = append(names, c.name)
	}
	return names
}

func noDeletes(h *Harness) { h.Deletes = false }

// reading returns the fake with every value it reads (through Changes, Get
// and Scan) passed through conv.
func reading(s *fake.System, conv func(field string, v concord.Value) concord.Value) connector.Connector {
	convert := func(recs []concord.Record) []concord.Record {
		for i, r := range recs {
			r = r.Clone()
			for k, v := range r.Fields {
				r.Fields[k] = conv(k, v)
			}
			recs[i] = r
		}
		return recs
	}
	return &broken{System: s,
		changes: func(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
			b, err := s.Changes(ctx, c, limit)
			b.Records = convert(b.Records)
			return b, err
		},
		scan: func(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
			b, err := s.Scan(ctx, c, limit)
			b.Records = convert(b.Records)
			return b, err
		},
		get: func(ctx context.Context, keys []string) ([]concord.Record, error) {
			recs, err := s.Get(ctx, keys)
			return convert(recs), err
		},
	}
}

// byTime is a change feed over a fake's live records that pages by
// modification time in milliseconds, as `WHERE updated_at > $cursor ORDER BY
// updated_at LIMIT n` does; with tieBreak it pages by (time, key), which is
// right. It reports no deletions.
type byTime struct {
	*fake.System
	tieBreak bool
}

func (c *byTime) Changes(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	if err := ctx.Err(); err != nil {
		return connector.Batch{}, err
	}
	var ms int64 = -1 << 63
	var after string
	if cursor != "" {
		msText, key, _ := strings.Cut(string(cursor), "/")
		n, err := strconv.ParseInt(msText, 10, 64)
		if err != nil {
			return connector.Batch{}, connector.Permanent(fmt.Errorf("byTime: malformed cursor %q", cursor))
		}
		ms, after = n, key
	}
	recs := c.System.Records()
	slices.SortStableFunc(recs, func(a, b concord.Record) int {
		return cmp.Or(cmp.Compare(a.Modified.UnixMilli(), b.Modified.UnixMilli()), cmp.Compare(a.Key, b.Key))
	})
	recs = slices.DeleteFunc(recs, func(r concord.Record) bool {
		t := r.Modified.UnixMilli()
		return t < ms || t == ms && (!c.tieBreak || r.Key <= after)
	})
	b := connector.Batch{Records: recs, Next: cursor}
	if len(recs) > limit {
		b.Records, b.More = recs[:limit], true
	}
	if n := len(b.Records); n > 0 {
		last := b.Records[n-1]
		b.Next = connector.Cursor(fmt.Sprintf("%d/%s", last.Modified.UnixMilli(), last.Key))
	}
	return b, nil
}

// everyKind declares a field of every kind.
var everyKind = map[string]Kind{
	"n": KindInt, "label": KindString, "ratio": KindFloat, "price": KindDecimal,
	"ok": KindBool, "at": KindTime, "blob": KindBytes, "qty": KindInt | NotNull,
}

// fixedColumns is the schema of a table with fixed, typed columns, one of
// them NOT NULL; acceptFixed refuses anything else.
var fixedColumns = map[string]Kind{
	"qty": KindInt | NotNull, "label": KindString, "price": KindDecimal, "at": KindTime, "ok": KindBool,
}

func acceptFixed(creating bool, f map[string]concord.Value) error {
	if v, ok := f["qty"]; creating && (!ok || v == nil) {
		return fmt.Errorf("column \"qty\" is NOT NULL; a new row needs it")
	}
	for name, v := range f {
		k, ok := fixedColumns[name]
		if !ok {
			return fmt.Errorf("no column %q", name)
		}
		if v == nil {
			if !k.nullable() {
				return fmt.Errorf("column %q is NOT NULL", name)
			}
			continue
		}
		okType := false
		switch v.(type) {
		case int, int64:
			okType = k.base() == KindInt
		case string:
			okType = k.base() == KindString
		case json.Number:
			okType = k.base() == KindDecimal
		case time.Time:
			okType = k.base() == KindTime
		case bool:
			okType = k.base() == KindBool
		}
		if !okType {
			return fmt.Errorf("column %q is %v; got %T", name, k, v)
		}
	}
	return nil
}

// strict is a person who cannot edit what the columns refuse.
type strict struct {
	person
	accept func(creating bool, f map[string]concord.Value) error
}

func (p strict) Edit(ctx context.Context, key string, f map[string]concord.Value) error {
	_, exists := p.s.Record(key)
	if err := p.accept(!exists, f); err != nil {
		return fmt.Errorf("record %q: %w", key, err)
	}
	return p.person.Edit(ctx, key, f)
}

func (p strict) EditAll(ctx context.Context, edits map[string]map[string]concord.Value) error {
	for key, f := range edits {
		if _, exists := p.s.Record(key); p.accept(!exists, f) != nil {
			return fmt.Errorf("record %q: %w", key, p.accept(!exists, f))
		}
	}
	return p.person.EditAll(ctx, edits)
}

// refusing is a fake whose Apply refuses patches the columns refuse.
type refusing struct {
	*fake.System
	accept func(creating bool, f map[string]concord.Value) error
}

func (r *refusing) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	out := make([]connector.Result, len(ps))
	for i, p := range ps {
		_, exists := r.Record(p.Key)
		if !p.Delete {
			if err := r.accept(p.Create && !exists, p.Set); err != nil {
				out[i] = connector.Result{Key: p.Key, Err: connector.Permanent(fmt.Errorf("record %q: %w", p.Key, err))}
				continue
			}
		}
		res, err := r.System.Apply(ctx, []connector.Patch{p})
		if err != nil {
			return nil, err
		}
		out[i] = res[0]
	}
	return out, nil
}

// TestRunEveryKind runs the suite against the fake with a field of every
// kind declared.
func TestRunEveryKind(t *testing.T) {
	Run(t, Harness{
		New: func(testing.TB) System {
			c := newClock()
			s := fake.New("crm", fake.WithClock(c.read))
			return person{s: s, conn: s, clock: c}
		},
		Conditional: true, Idempotent: true, Deletes: true,
		Schema: everyKind,
	})
}

// claimsConditional is a system without tags whose connector says it has
// conditional writes (connector.Conditional).
type claimsConditional struct{ *fake.System }

func (claimsConditional) ConditionalWrites() bool { return true }
