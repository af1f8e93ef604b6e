package fake_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/connectortest"
	"github.com/concordsync/concord/connector/fake"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// person adapts a System to connectortest.System.
type person struct{ s *fake.System }

func (p person) Connector() connector.Connector { return p.s }

func (p person) Edit(_ context.Context, key string, f map[string]concord.Value) error {
	p.s.Edit(key, f)
	return nil
}

func (p person) Delete(_ context.Context, key string) error {
	p.s.Delete(key)
	return nil
}

func (p person) EditAll(_ context.Context, edits map[string]map[string]concord.Value) error {
	p.s.EditAll(edits)
	return nil
}

var _ connectortest.BulkEditor = person{}

// TestEditAllOneInstant checks that EditAll stamps every record with one
// reading of the clock, in key order, and that the clock moves on after it.
func TestEditAllOneInstant(t *testing.T) {
	s := fake.New("crm", fake.WithClock(clock()))
	before := s.Edit("z", map[string]concord.Value{"n": 0}).Modified
	recs := s.EditAll(map[string]map[string]concord.Value{"b": {"n": 2}, "a": {"n": 1}, "c": {"n": nil}})
	if len(recs) != 3 || recs[0].Key != "a" || recs[1].Key != "b" || recs[2].Key != "c" {
		t.Fatalf("EditAll returned %v; want records a, b, c in key order", recs)
	}
	for _, r := range recs {
		if !r.Modified.Equal(recs[0].Modified) || !r.Modified.After(before) {
			t.Errorf("record %q: Modified %v; want %v for all, after %v", r.Key, r.Modified, recs[0].Modified, before)
		}
	}
	if after := s.Edit("z", map[string]concord.Value{"n": 1}).Modified; !after.After(recs[0].Modified) {
		t.Errorf("an edit after EditAll has Modified %v; want after %v", after, recs[0].Modified)
	}
	b, err := s.Changes(t.Context(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range b.Records {
		keys = append(keys, r.Key)
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "z"}, keys); diff != "" {
		t.Errorf("feed order (-want +got):\n%s", diff)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("EditAll with an empty key did not panic")
			}
		}()
		s.EditAll(map[string]map[string]concord.Value{"": {"n": 1}})
	}()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("EditAll with an unsupported value did not panic")
			}
		}()
		s.EditAll(map[string]map[string]concord.Value{"q": {"n": struct{}{}}})
	}()
	if _, ok := s.Record("q"); ok {
		t.Error("EditAll that panicked on a bad value changed the system")
	}
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		opts []fake.Option
		h    connectortest.Harness
	}{
		{"Full", nil, connectortest.Harness{Conditional: true, Idempotent: true, Deletes: true}},
		{"WithoutTags", []fake.Option{fake.WithoutTags()}, connectortest.Harness{Idempotent: true, Deletes: true}},
		{"WithoutIdempotency", []fake.Option{fake.WithoutIdempotency()}, connectortest.Harness{Conditional: true, Deletes: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			h.New = func(testing.TB) connectortest.System { return person{fake.New("crm", tt.opts...)} }
			connectortest.Run(t, h)
		})
	}
}

// clock returns a clock that starts at 2025-01-01 and advances a second per
// reading.
func clock() func() time.Time {
	var mu sync.Mutex
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

func at(sec int) time.Time { return time.Date(2025, 1, 1, 0, 0, sec, 0, time.UTC) }

func diff(t testing.TB, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

func TestPersonEdits(t *testing.T) {
	s := fake.New("crm", fake.WithClock(clock()))
	s.Edit("b", map[string]concord.Value{"x": 1})
	got := s.Edit("a", map[string]concord.Value{"x": 1, "y": "old"})
	diff(t, "first Edit", concord.Record{Key: "a", Fields: map[string]concord.Value{"x": 1, "y": "old"}, Modified: at(2), Tag: "1"}, got)
	s.Edit("a", map[string]concord.Value{"y": "new", "z": nil})

	want := []concord.Record{
		{Key: "a", Fields: map[string]concord.Value{"x": 1, "y": "new", "z": nil}, Modified: at(3), Tag: "2"},
		{Key: "b", Fields: map[string]concord.Value{"x": 1}, Modified: at(1), Tag: "1"},
	}
	diff(t, "Records after edits", want, s.Records())
	if s.Len() != 2 {
		t.Errorf("Len() = %d; want 2", s.Len())
	}

	if !s.Delete("a") {
		t.Error(`Delete("a") = false; want true for a live record`)
	}
	if s.Delete("a") || s.Delete("missing") {
		t.Error("Delete of a missing record = true; want false")
	}
	if r, ok := s.Record("a"); ok {
		t.Errorf(`Record("a") after Delete = %v, true; want false`, r)
	}
	// Re-creating a deleted record never reuses a tag.
	got = s.Edit("a", map[string]concord.Value{"x": 9})
	diff(t, "Edit after Delete", concord.Record{Key: "a", Fields: map[string]concord.Value{"x": 9}, Modified: at(5), Tag: "4"}, got)
}

func TestEditPanicsOnBadInput(t *testing.T) {
	for _, tt := range []struct {
		name   string
		key    string
		fields map[string]concord.Value
	}{
		{"NoKey", "", nil},
		{"BadValue", "a", map[string]concord.Value{"f": make(chan int)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Edit(%q, %v) did not panic", tt.key, tt.fields)
				}
			}()
			fake.New("crm").Edit(tt.key, tt.fields)
		})
	}
}

func TestChanges(t *testing.T) {
	ctx := t.Context()
	s := fake.New("crm", fake.WithClock(clock()))
	s.Edit("a", map[string]concord.Value{"n": 1}) // seq 1, superseded by 4
	s.Edit("b", map[string]concord.Value{"n": 1}) // seq 2
	s.Edit("c", map[string]concord.Value{"n": 1}) // seq 3, superseded by 5
	s.Edit("a", map[string]concord.Value{"n": 2}) // seq 4
	s.Delete("c")                                 // seq 5

	keys := func(b connector.Batch) string {
		var ks []string
		for _, r := range b.Records {
			k := r.Key
			if r.Deleted {
				k += "(deleted)"
			}
			ks = append(ks, k)
		}
		return fmt.Sprintf("%v next=%q more=%v", ks, b.Next, b.More)
	}
	for _, tt := range []struct {
		cursor connector.Cursor
		limit  int
		want   string
	}{
		{"", 10, `[b a c(deleted)] next="5" more=false`},
		{"", 2, `[b a] next="4" more=true`},
		{"4", 2, `[c(deleted)] next="5" more=false`},
		{"5", 2, `[] next="5" more=false`},
		{"1", 1, `[b] next="2" more=true`},
	} {
		b, err := s.Changes(ctx, tt.cursor, tt.limit)
		if err != nil {
			t.Fatalf("Changes(%q, %d): %v", tt.cursor, tt.limit, err)
		}
		if got := keys(b); got != tt.want {
			t.Errorf("Changes(%q, %d) = %s; want %s", tt.cursor, tt.limit, got, tt.want)
		}
	}

	for _, tt := range []struct {
		cursor connector.Cursor
		limit  int
	}{{"x1", 10}, {"-1", 10}, {"", 0}} {
		_, err := s.Changes(ctx, tt.cursor, tt.limit)
		if connector.Classify(err) != connector.ErrPermanent || !strings.Contains(fmt.Sprint(err), "crm") {
			t.Errorf("Changes(%q, %d): got %v; want a permanent error naming the system", tt.cursor, tt.limit, err)
		}
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name      string
		opts      []fake.Option
		patch     connector.Patch
		wantClass connector.Class
		wantMsg   []string // substrings of the error
		wantField string   // the field a *concord.RecordError names
	}{
		{"StaleTag", nil, connector.Patch{Key: "a", Set: map[string]concord.Value{"n": 2}, IfMatch: "7"},
			connector.ErrConflict, []string{`"a"`, `"7"`, `"1"`, "crm"}, ""},
		{"IfMatchOnMissingWithCreate", nil, connector.Patch{Key: "new", Create: true, IfMatch: "1"},
			connector.ErrConflict, []string{`"new"`, "does not exist"}, ""},
		{"Missing", nil, connector.Patch{Key: "nope", Set: map[string]concord.Value{"n": 2}},
			connector.ErrNotFound, []string{`"nope"`, "crm"}, ""},
		{"BadValue", nil, connector.Patch{Key: "a", Set: map[string]concord.Value{"f": func() {}}},
			connector.ErrPermanent, []string{`"a"`, `"f"`, "crm"}, "f"},
		{"NoKey", nil, connector.Patch{Set: map[string]concord.Value{"n": 1}, Create: true},
			connector.ErrPermanent, []string{"no key"}, ""},
		{"NoTagsIgnoresIfMatch", []fake.Option{fake.WithoutTags()}, connector.Patch{Key: "a", Set: map[string]concord.Value{"n": 2}, IfMatch: "7"},
			"", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fake.New("crm", tt.opts...)
			s.Edit("a", map[string]concord.Value{"n": 1})
			res, err := s.Apply(t.Context(), []connector.Patch{tt.patch})
			require.NoError(t, err, "Apply")
			got := res[0].Err
			if c := connector.Classify(got); c != tt.wantClass {
				t.Fatalf("Apply: got error %v (class %v); want class %v", got, c, tt.wantClass)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(got.Error(), m) {
					t.Errorf("Apply: error %q does not mention %s", got, m)
				}
			}
			if tt.wantField != "" {
				var re *concord.RecordError
				if !errors.As(got, &re) || re.Field != tt.wantField || re.Key != tt.patch.Key {
					t.Errorf("Apply: error %v is not a *concord.RecordError naming key %q field %q", got, tt.patch.Key, tt.wantField)
				}
			}
			if tt.wantClass != "" && s.Effects(tt.patch.Key) != 0 {
				t.Errorf("Effects(%q) = %d after a failed patch; want 0", tt.patch.Key, s.Effects(tt.patch.Key))
			}
		})
	}
}

func TestApplyResults(t *testing.T) {
	s := fake.New("crm", fake.WithClock(clock()))
	s.Edit("a", map[string]concord.Value{"n": 1, "keep": true}) // at(1), tag 1
	res, err := s.Apply(t.Context(), []connector.Patch{
		{Key: "a", Set: map[string]concord.Value{"n": 2}, IfMatch: "1"},
		{Key: "b", Set: map[string]concord.Value{"n": 3}, Create: true},
		{Key: "a", Delete: true},
		{Key: "zz", Delete: true},
	})
	require.NoError(t, err)
	want := []connector.Result{
		{Key: "a", Tag: "2", Modified: at(2)},
		{Key: "b", Tag: "1", Modified: at(3)},
		{Key: "a", Tag: "3", Modified: at(4)},
		{Key: "zz"},
	}
	diff(t, "Apply results", want, res)
	diff(t, "Records", []concord.Record{{Key: "b", Fields: map[string]concord.Value{"n": 3}, Tag: "1", Modified: at(3)}}, s.Records())
	for k, n := range map[string]int{"a": 2, "b": 1, "zz": 0} {
		if got := s.Effects(k); got != n {
			t.Errorf("Effects(%q) = %d; want %d", k, got, n)
		}
	}
	if got := len(s.Applied()); got != 3 {
		t.Errorf("len(Applied()) = %d; want 3 (a deleting a missing record has no effect)", got)
	}
}

func TestIdempotency(t *testing.T) {
	p := connector.Patch{Key: "a", Set: map[string]concord.Value{"n": 1}, IdempotencyKey: "w1"}
	for _, tt := range []struct {
		name        string
		opts        []fake.Option
		wantEffects int
	}{
		{"Honoured", nil, 1},
		{"Ignored", []fake.Option{fake.WithoutIdempotency()}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := fake.New("crm", append(tt.opts, fake.WithClock(clock()))...)
			s.Edit("a", map[string]concord.Value{"n": 0})
			first, err := s.Apply(t.Context(), []connector.Patch{p})
			require.NoError(t, err)
			again, err := s.Apply(t.Context(), []connector.Patch{p})
			require.NoError(t, err)
			if got := s.Effects("a"); got != tt.wantEffects {
				t.Errorf("Effects = %d after an edit and the same write twice; want %d", got, tt.wantEffects)
			}
			if tt.wantEffects == 1 {
				diff(t, "replayed result", first, again)
			}
		})
	}
}

// TestNoSharing checks that the fake never keeps or hands out maps its
// callers hold.
func TestNoSharing(t *testing.T) {
	ctx := t.Context()
	s := fake.New("crm", fake.WithClock(clock()))
	in := map[string]concord.Value{"addr": map[string]any{"city": "Oslo"}, "tags": []any{"a"}}
	s.Edit("a", in)
	in["addr"].(map[string]any)["city"] = "Bergen"
	in["new"] = 1

	r, _ := s.Record("a")
	r.Fields["addr"].(map[string]any)["city"] = "Rome"
	b, _ := s.Changes(ctx, "", 10)
	b.Records[0].Fields["tags"].([]any)[0] = "z"
	s.Records()[0].Fields["x"] = 1

	set := map[string]concord.Value{"list": []any{1}}
	if _, err := s.Apply(ctx, []connector.Patch{{Key: "a", Set: set}}); err != nil {
		t.Fatal(err)
	}
	set["list"].([]any)[0] = 2
	s.Applied()[0].Set["list"].([]any)[0] = 3
	got, _ := s.Get(ctx, []string{"a"})
	got[0].Fields["list"] = "changed"

	want := map[string]concord.Value{"addr": map[string]any{"city": "Oslo"}, "tags": []any{"a"}, "list": []any{1}}
	r, _ = s.Record("a")
	diff(t, "fields after callers modified what they passed and got", want, r.Fields)
	diff(t, "Applied()[0].Set", map[string]concord.Value{"list": []any{1}}, s.Applied()[0].Set)
}

func TestGetAndScan(t *testing.T) {
	ctx := t.Context()
	s := fake.New("crm")
	for _, k := range []string{"d", "b", "a", "c"} {
		s.Edit(k, map[string]concord.Value{"k": k})
	}
	s.Delete("c")
	recs, err := s.Get(ctx, []string{"d", "c", "zz", "a", "d"})
	require.NoError(t, err)
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.Key)
	}
	diff(t, "Get keys", []string{"d", "a"}, keys)

	for _, tt := range []struct {
		cursor connector.Cursor
		limit  int
		want   []string
		next   connector.Cursor
		more   bool
	}{
		{"", 2, []string{"a", "b"}, "b", true},
		{"b", 2, []string{"d"}, "d", false},
		{"bb", 5, []string{"d"}, "d", false},
		{"d", 5, nil, "d", false},
	} {
		b, err := s.Scan(ctx, tt.cursor, tt.limit)
		require.NoError(t, err)
		var got []string
		for _, r := range b.Records {
			got = append(got, r.Key)
		}
		diff(t, fmt.Sprintf("Scan(%q, %d) keys", tt.cursor, tt.limit), tt.want, got)
		if b.Next != tt.next || b.More != tt.more {
			t.Errorf("Scan(%q, %d): Next %q, More %v; want %q, %v", tt.cursor, tt.limit, b.Next, b.More, tt.next, tt.more)
		}
	}
	if _, err := s.Scan(ctx, "", 0); connector.Classify(err) != connector.ErrPermanent {
		t.Errorf("Scan with limit 0: got %v; want a permanent error", err)
	}
}

// call makes one call of op and returns its error.
func call(ctx context.Context, s *fake.System, op fake.Op) error {
	var err error
	switch op {
	case fake.OpChanges:
		_, err = s.Changes(ctx, "", 10)
	case fake.OpApply:
		var res []connector.Result
		res, err = s.Apply(ctx, []connector.Patch{{Key: "a", Set: map[string]concord.Value{"n": 2}, Create: true}})
		if err == nil && res[0].Err != nil {
			err = fmt.Errorf("patch failed: %w", res[0].Err)
		}
	case fake.OpGet:
		_, err = s.Get(ctx, []string{"a"})
	case fake.OpScan:
		_, err = s.Scan(ctx, "", 10)
	}
	return err
}

var ops = []fake.Op{fake.OpChanges, fake.OpApply, fake.OpGet, fake.OpScan}

func TestFailNext(t *testing.T) {
	boom := connector.Permanent(errors.New("boom"))
	for _, op := range ops {
		t.Run(op.String(), func(t *testing.T) {
			s := fake.New("crm")
			s.FailNext(op, 2, boom)
			for _, other := range ops {
				if other != op {
					if err := call(t.Context(), s, other); err != nil {
						t.Errorf("%v after FailNext(%v): %v; want success", other, op, err)
					}
				}
			}
			s.Delete("a") // undo the Apply of the loop above
			for i := range 2 {
				if err := call(t.Context(), s, op); !errors.Is(err, boom) || !strings.Contains(err.Error(), "crm") {
					t.Errorf("call %d: got %v; want the injected error, naming the system", i+1, err)
				}
			}
			if s.Len() != 0 {
				t.Errorf("Len() = %d after failed calls; want 0 (no effect)", s.Len())
			}
			if err := call(t.Context(), s, op); err != nil {
				t.Errorf("third call: %v; want success", err)
			}
			if got := s.Calls(op); got != 3 {
				t.Errorf("Calls(%v) = %d; want 3", op, got)
			}
		})
	}
	t.Run("NilErr", func(t *testing.T) {
		s := fake.New("crm")
		s.FailNext(fake.OpGet, 1, nil)
		err := call(t.Context(), s, fake.OpGet)
		if !errors.Is(err, fake.ErrInjected) || connector.Classify(err) != connector.ErrTransient {
			t.Errorf("got %v; want a transient error wrapping ErrInjected", err)
		}
	})
}

func TestFailKey(t *testing.T) {
	ctx := t.Context()
	s := fake.New("crm")
	s.Edit("a", map[string]concord.Value{"n": 1})
	s.Edit("b", map[string]concord.Value{"n": 1})
	boom := errors.New("boom")
	s.FailKey("a", boom)
	batch := []connector.Patch{{Key: "a", Set: map[string]concord.Value{"n": 2}}, {Key: "b", Set: map[string]concord.Value{"n": 2}}}
	res, err := s.Apply(ctx, batch)
	require.NoError(t, err)
	if !errors.Is(res[0].Err, boom) || !strings.Contains(res[0].Err.Error(), `"a"`) || res[1].Err != nil {
		t.Errorf("results %v, %v; want a failing with boom (naming the key), b succeeding", res[0].Err, res[1].Err)
	}
	if r, _ := s.Record("a"); r.Fields["n"] != 1 {
		t.Errorf("a.n = %v after a failed patch; want 1", r.Fields["n"])
	}
	s.ClearFailKey("a")
	if res, _ = s.Apply(ctx, batch[:1]); res[0].Err != nil {
		t.Errorf("after ClearFailKey: %v; want success", res[0].Err)
	}
}

func TestRateLimitNext(t *testing.T) {
	s := fake.New("crm")
	s.RateLimitNext(len(ops), 3*time.Second)
	for _, op := range ops {
		err := call(t.Context(), s, op)
		if d, ok := connector.RetryAfter(err); connector.Classify(err) != connector.ErrRateLimited || d != 3*time.Second || !ok {
			t.Errorf("%v: got %v; want rate limited, retry after 3s", op, err)
		}
	}
	if s.Len() != 0 {
		t.Errorf("Len() = %d after rate-limited calls; want 0", s.Len())
	}
	for _, op := range ops {
		if err := call(t.Context(), s, op); err != nil {
			t.Errorf("%v after the rate limit: %v", op, err)
		}
	}
}

func TestLoseRepliesNext(t *testing.T) {
	ctx := t.Context()
	s := fake.New("crm")
	s.LoseRepliesNext(1)
	p := []connector.Patch{{Key: "a", Set: map[string]concord.Value{"n": 1}, Create: true, IdempotencyKey: "w1"}}
	res, err := s.Apply(ctx, p)
	if !errors.Is(err, fake.ErrReplyLost) || !connector.Retryable(err) || res != nil {
		t.Fatalf("Apply = %v, %v; want no results and a retryable ErrReplyLost", res, err)
	}
	if _, ok := s.Record("a"); !ok {
		t.Error("record a missing after a lost reply; want it applied")
	}
	// The engine retries; the idempotency key prevents a second effect.
	if res, err = s.Apply(ctx, p); err != nil || res[0].Err != nil {
		t.Fatalf("retry: %v, %v", err, res)
	}
	if got := s.Effects("a"); got != 1 {
		t.Errorf("Effects = %d after a lost reply and a retry; want 1", got)
	}
}

func TestLatencyAndCancel(t *testing.T) {
	s := fake.New("crm")
	s.SetLatency(20 * time.Millisecond)
	start := time.Now()
	require.NoError(t, call(t.Context(), s, fake.OpGet))
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("Get took %v; want at least the 20ms latency", d)
	}

	s.SetLatency(time.Hour)
	for _, op := range ops {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		err := call(ctx, s, op)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v during latency: got %v; want context.DeadlineExceeded", op, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s.SetLatency(0)
	for _, op := range ops {
		if err := call(ctx, s, op); !errors.Is(err, context.Canceled) {
			t.Errorf("%v with a cancelled context: got %v; want context.Canceled", op, err)
		}
	}
	if s.Len() != 0 {
		t.Errorf("Len() = %d; want 0: cancelled calls have no effect", s.Len())
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := t.Context()
	s := fake.New("crm")
	var wg sync.WaitGroup
	const workers, n = 8, 50
	for w := range workers {
		wg.Go(func() {
			for i := range n {
				key := fmt.Sprintf("w%d-%d", w, i)
				if w%2 == 0 {
					s.Edit(key, map[string]concord.Value{"i": i})
				} else if _, err := s.Apply(ctx, []connector.Patch{{Key: key, Set: map[string]concord.Value{"i": i}, Create: true}}); err != nil {
					t.Error(err)
				}
				if _, err := s.Changes(ctx, "", 5); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := s.Len(); got != workers*n {
		t.Errorf("Len() = %d; want %d", got, workers*n)
	}
	if got := len(s.Applied()); got != workers/2*n {
		t.Errorf("len(Applied()) = %d; want %d", got, workers/2*n)
	}
	var cursor connector.Cursor
	seen := 0
	for more := true; more; {
		b, err := s.Changes(ctx, cursor, 7)
		require.NoError(t, err)
		seen += len(b.Records)
		cursor, more = b.Next, b.More
	}
	if seen != workers*n {
		t.Errorf("change feed holds %d records; want %d", seen, workers*n)
	}
}

func keysOf(b connector.Batch) []string {
	var out []string
	for _, r := range b.Records {
		out = append(out, r.Key)
	}
	return out
}

func TestRepeatNext(t *testing.T) {
	ctx := context.Background()
	s := fake.New("crm")
	s.Edit("a", map[string]concord.Value{"n": 1})
	s.Edit("b", map[string]concord.Value{"n": 2})
	b, err := s.Changes(ctx, "", 10)
	require.NoError(t, err)
	s.Edit("c", map[string]concord.Value{"n": 3})
	s.RepeatNext(1, 1)
	r, err := s.Changes(ctx, b.Next, 10)
	require.NoError(t, err)
	if got := keysOf(r); !cmp.Equal(got, []string{"b", "c"}) {
		t.Fatalf("repeated read returned %v, want [b c]", got)
	}
	if r.Next != "3" {
		t.Fatalf("cursor after a repeated read is %q, want \"3\"", r.Next)
	}
	// Only one call repeats; the cursor never goes back; back beyond the
	// start of the feed starts at the beginning.
	if r, _ = s.Changes(ctx, b.Next, 10); !cmp.Equal(keysOf(r), []string{"c"}) {
		t.Fatalf("second read returned %v, want [c]", keysOf(r))
	}
	s.RepeatNext(1, 1000)
	if r, _ = s.Changes(ctx, "3", 10); !cmp.Equal(keysOf(r), []string{"a", "b", "c"}) || r.Next != "3" {
		t.Fatalf("repeat from before the start returned %v next %q", keysOf(r), r.Next)
	}
	// A repeated record is in its current state, once.
	s.Edit("a", map[string]concord.Value{"n": 9})
	s.RepeatNext(1, 1000)
	r, _ = s.Changes(ctx, "3", 10)
	if !cmp.Equal(keysOf(r), []string{"b", "c", "a"}) || r.Records[2].Fields["n"] != 9 {
		t.Fatalf("repeat after an edit returned %v", r.Records)
	}
	s.RepeatNext(0, 5)
	if r, _ = s.Changes(ctx, "4", 10); len(r.Records) != 0 {
		t.Fatalf("cleared knob still repeats: %v", keysOf(r))
	}
}

func TestReorderNext(t *testing.T) {
	ctx := context.Background()
	s := fake.New("crm")
	for _, k := range []string{"a", "b", "c"} {
		s.Edit(k, map[string]concord.Value{"n": k})
	}
	s.ReorderNext(1)
	r, err := s.Changes(ctx, "", 10)
	require.NoError(t, err)
	if !cmp.Equal(keysOf(r), []string{"c", "b", "a"}) || r.Next != "3" {
		t.Fatalf("reordered read returned %v next %q", keysOf(r), r.Next)
	}
	if r, _ = s.Changes(ctx, "", 10); !cmp.Equal(keysOf(r), []string{"a", "b", "c"}) {
		t.Fatalf("knob outlived its one call: %v", keysOf(r))
	}
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	s := fake.New("crm")
	s.Edit("a", map[string]concord.Value{"n": 1})
	if _, err := s.Apply(ctx, []connector.Patch{{Key: "a", Set: map[string]concord.Value{"m": "x"}}}); err != nil {
		t.Fatal(err)
	}
	s.Delete("a")
	s.Edit("b", map[string]concord.Value{"n": 2})
	h := s.History("a")
	if len(h) != 3 {
		t.Fatalf("History has %d states, want 3: %v", len(h), h)
	}
	if h[0].Fields["n"] != 1 || len(h[0].Fields) != 1 || h[0].Tag != "1" {
		t.Fatalf("first state %+v", h[0])
	}
	if h[1].Fields["m"] != "x" || h[1].Tag != "2" {
		t.Fatalf("second state %+v", h[1])
	}
	if !h[2].Deleted || h[2].Fields != nil {
		t.Fatalf("third state %+v, want a deletion", h[2])
	}
	// Copies: changing what History returned changes nothing.
	h[0].Fields["n"] = 42
	if s.History("a")[0].Fields["n"] != 1 {
		t.Fatal("History shares its maps")
	}
	if len(s.History("zzz")) != 0 {
		t.Fatal("History of an unknown key is not empty")
	}
}

// WithFieldTimes stamps a field when its value changes, by an edit or a
// write, and not when it is set to the value it had; a re-created record
// starts afresh.
func TestFieldTimesMoveOnlyWhenAValueChanges(t *testing.T) {
	ctx := context.Background()
	s := fake.New("crm", fake.WithClock(clock()), fake.WithFieldTimes())
	first := s.Edit("c1", map[string]any{"name": "Ada", "city": "Leeds"})
	if first.FieldModified["name"].IsZero() || !first.FieldModified["name"].Equal(first.Modified) {
		t.Fatalf("field times of a new record: %v (record %v)", first.FieldModified, first.Modified)
	}
	second := s.Edit("c1", map[string]any{"name": "Ada", "city": "York"})
	if !second.FieldModified["name"].Equal(first.FieldModified["name"]) {
		t.Errorf("name set to the value it had moved its time: %v -> %v", first.FieldModified["name"], second.FieldModified["name"])
	}
	if !second.FieldModified["city"].Equal(second.Modified) {
		t.Errorf("city changed but its time is %v, the record's %v", second.FieldModified["city"], second.Modified)
	}
	if _, err := s.Apply(ctx, []connector.Patch{{Key: "c1", Set: map[string]any{"name": "Bea"}}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Record("c1")
	if !got.FieldModified["name"].Equal(got.Modified) || !got.FieldModified["city"].Equal(second.Modified) {
		t.Errorf("after a write of name: %v (record %v)", got.FieldModified, got.Modified)
	}
	b, err := s.Changes(ctx, "", 10)
	if err != nil || len(b.Records) != 1 || len(b.Records[0].FieldModified) != 2 {
		t.Fatalf("the feed does not carry field times: %+v, %v", b.Records, err)
	}
	s.Delete("c1")
	again := s.Edit("c1", map[string]any{"city": "Hull"})
	if _, ok := again.FieldModified["name"]; ok || len(again.FieldModified) != 1 {
		t.Errorf("a re-created record kept old field times: %v", again.FieldModified)
	}
	if plain := fake.New("x").Edit("c1", map[string]any{"a": 1}); plain.FieldModified != nil {
		t.Errorf("a system without WithFieldTimes reported field times: %v", plain.FieldModified)
	}
}

// Injected puts back the faults the next calls consume, as they were.
func TestInjectedRestoresPendingFaults(t *testing.T) {
	ctx := context.Background()
	s := fake.New("s")
	s.FailNext(fake.OpChanges, 2, nil)
	s.LoseRepliesNext(1)
	restore := s.Injected()
	if _, err := s.Changes(ctx, "", 10); err == nil {
		t.Fatal("the first Changes did not fail")
	}
	if _, err := s.Apply(ctx, []connector.Patch{{Key: "a", Set: map[string]concord.Value{"n": 1}, Create: true}}); err == nil {
		t.Fatal("the reply was not lost")
	}
	restore()
	for i := range 2 {
		if _, err := s.Changes(ctx, "", 10); err == nil {
			t.Fatalf("Changes %d after restore did not fail", i+1)
		}
	}
	if _, err := s.Changes(ctx, "", 10); err != nil {
		t.Fatalf("Changes after the two restored failures: %v", err)
	}
	if _, err := s.Apply(ctx, []connector.Patch{{Key: "a", Set: map[string]concord.Value{"n": 2}}}); err == nil {
		t.Fatal("the restored lost reply was not lost")
	}
}
