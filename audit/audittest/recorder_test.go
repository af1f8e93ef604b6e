package audittest_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var versionCmp = cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal })

func events() []audit.Event {
	return []audit.Event{
		{Kind: audit.EditObserved, System: "portal", Key: "c1", Unit: "email"},
		{Kind: audit.MergeDecided, System: "portal", Key: "c1", Unit: "email", Rule: "fast-forward"},
		{Kind: audit.WriteAttempted, System: "crm", Key: "c1", Fields: []string{"mail"}},
		{Kind: audit.WriteFailed, System: "crm", Key: "c1", Error: "503"},
		{Kind: audit.MergeDecided, System: "erp", Key: "c2", Unit: "price", Rule: "system-of-record"},
	}
}

// recorded returns a Recorder holding events().
func recorded(t testing.TB) *audittest.Recorder {
	t.Helper()
	r := audittest.New()
	if err := r.Emit(context.Background(), events()); err != nil {
		t.Fatalf("Emit: %v", err)
	}
	return r
}

func TestFilterAndCount(t *testing.T) {
	tests := []struct {
		name string
		m    audittest.Match
		want []int // indices into events()
	}{
		{"zero matches all", audittest.Match{}, []int{0, 1, 2, 3, 4}},
		{"kind", audittest.Match{Kind: audit.MergeDecided}, []int{1, 4}},
		{"key", audittest.Match{Key: "c2"}, []int{4}},
		{"system", audittest.Match{System: "crm"}, []int{2, 3}},
		{"unit", audittest.Match{Unit: "email"}, []int{0, 1}},
		{"rule", audittest.Match{Rule: "fast-forward"}, []int{1}},
		{"all fields", audittest.Match{Kind: audit.MergeDecided, Key: "c2", System: "erp", Unit: "price", Rule: "system-of-record"}, []int{4}},
		{"one field off", audittest.Match{Kind: audit.MergeDecided, Key: "c2", System: "portal"}, nil},
		{"no such kind", audittest.Match{Kind: audit.ConflictHeld}, nil},
	}
	all := events()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recorded(t)
			var want []audit.Event
			for _, i := range tt.want {
				want = append(want, all[i])
			}
			if diff := cmp.Diff(want, r.Filter(tt.m), versionCmp); diff != "" {
				t.Errorf("Filter(%v) (-want +got):\n%s", tt.m, diff)
			}
			if got := r.Count(tt.m); got != len(tt.want) {
				t.Errorf("Count(%v) = %d, want %d", tt.m, got, len(tt.want))
			}
			for i, ev := range all {
				if got, want := tt.m.Matches(ev), slices.Contains(tt.want, i); got != want {
					t.Errorf("Matches(event %d) = %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestFilterFunc(t *testing.T) {
	r := recorded(t)
	got := r.FilterFunc(func(ev audit.Event) bool { return ev.Error != "" || len(ev.Fields) > 0 })
	if diff := cmp.Diff(events()[2:4], got, versionCmp); diff != "" {
		t.Errorf("FilterFunc (-want +got):\n%s", diff)
	}
}

func TestMatchString(t *testing.T) {
	tests := []struct {
		m    audittest.Match
		want string
	}{
		{audittest.Match{}, "any event"},
		{audittest.Match{Kind: audit.WriteFailed}, "kind=write.failed"},
		{audittest.Match{Key: "c 1", System: "crm"}, `key="c 1" system=crm`},
		{audittest.Match{Kind: audit.MergeDecided, Key: "c1", System: "erp", Unit: "price", Rule: "lww"}, `kind=merge.decided key="c1" system=erp unit=price rule=lww`},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestZeroValueLenReset(t *testing.T) {
	var r audittest.Recorder
	if r.Len() != 0 || r.Events() != nil {
		t.Fatalf("zero Recorder has %d events", r.Len())
	}
	_ = r.Emit(context.Background(), events()[:2])
	_ = r.Emit(context.Background(), nil)
	_ = r.Emit(context.Background(), events()[2:])
	if diff := cmp.Diff(events(), r.Events(), versionCmp); diff != "" {
		t.Errorf("Events across Emit calls (-want +got):\n%s", diff)
	}
	if r.Len() != 5 {
		t.Errorf("Len = %d, want 5", r.Len())
	}
	r.Reset()
	if r.Len() != 0 || len(r.Events()) != 0 {
		t.Errorf("after Reset: Len = %d, Events = %v", r.Len(), r.Events())
	}
}

func TestRecorderKeepsCopies(t *testing.T) {
	in := []audit.Event{{
		Kind: audit.ConflictDetected, Key: "c1", Fields: []string{"a"},
		From: map[string]concord.Value{"a": []any{"x"}},
		To:   map[string]concord.Value{"a": map[string]any{"k": "v"}},
		Candidates: []audit.Candidate{
			{System: "crm", Values: map[string]concord.Value{"a": []string{"y"}}},
		},
	}}
	r := audittest.New()
	_ = r.Emit(context.Background(), in)
	first := r.Events()
	// The emitter changes everything it passed.
	in[0].Key = "changed"
	in[0].Fields[0] = "changed"
	in[0].From["a"].([]any)[0] = "changed"
	in[0].To["a"].(map[string]any)["k"] = "changed"
	in[0].Candidates[0].Values["a"].([]string)[0] = "changed"
	in[0].Candidates[0].System = "changed"
	got := r.Events()
	if got[0].Key != "c1" || got[0].Fields[0] != "a" || got[0].From["a"].([]any)[0] != "x" ||
		got[0].To["a"].(map[string]any)["k"] != "v" || got[0].Candidates[0].Values["a"].([]string)[0] != "y" ||
		got[0].Candidates[0].System != "crm" {
		t.Errorf("recorded event changed with its source: %+v", got[0])
	}
	// Events returns a new slice each time.
	first[0] = audit.Event{}
	if r.Events()[0].Key != "c1" {
		t.Errorf("changing the slice Events returned changed the Recorder")
	}
}

func TestConcurrentEmit(t *testing.T) {
	const goroutines, batches = 8, 50
	r := audittest.New()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for b := range batches {
				_ = r.Emit(context.Background(), []audit.Event{
					{Kind: audit.WriteAttempted, Key: fmt.Sprintf("g%d-%d", g, b)},
					{Kind: audit.WriteSucceeded, Key: fmt.Sprintf("g%d-%d", g, b)},
				})
				_ = r.Count(audittest.Match{Kind: audit.WriteSucceeded}) // reads race with writes
			}
		})
	}
	wg.Wait()
	if got, want := r.Len(), goroutines*batches*2; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	evs := r.Events()
	for i := 0; i < len(evs); i += 2 { // each batch stays together
		if evs[i].Kind != audit.WriteAttempted || evs[i+1].Kind != audit.WriteSucceeded || evs[i].Key != evs[i+1].Key {
			t.Fatalf("events %d and %d are not one batch: %v, %v", i, i+1, evs[i], evs[i+1])
		}
	}
}

// recordingTB is a testing.TB that records failures instead of reporting
// them. Like *testing.T, its Fatalf ends the calling goroutine with
// runtime.Goexit, so run code that may call it through runTB.
type recordingTB struct {
	testing.TB // the real test, for the methods not overridden here
	mu         sync.Mutex
	errors     []string
	fatal      bool
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.mu.Lock()
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recordingTB) FailNow() { r.Fatalf("FailNow") }

// runTB runs f with a recordingTB in a new goroutine, waits for it, and
// reports whether f returned (rather than being stopped by Fatalf).
func runTB(t *testing.T, f func(testing.TB)) (tb *recordingTB, returned bool) {
	t.Helper()
	tb = &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
		returned = true
	}()
	<-done
	return tb, returned
}

func TestRequireHelpers(t *testing.T) {
	tests := []struct {
		name     string
		call     func(*audittest.Recorder, testing.TB)
		wantFail string // substring of the failure message; empty to pass
	}{
		{
			name: "Require finds",
			call: func(r *audittest.Recorder, t testing.TB) { r.Require(t, audittest.Match{Kind: audit.WriteFailed}) },
		},
		{
			name:     "Require misses",
			call:     func(r *audittest.Recorder, t testing.TB) { r.Require(t, audittest.Match{Kind: audit.ConflictHeld}) },
			wantFail: "no event matches kind=conflict.held; 5 recorded",
		},
		{
			name: "Require misses on one field",
			call: func(r *audittest.Recorder, t testing.TB) {
				r.Require(t, audittest.Match{Kind: audit.WriteFailed, Key: "c2"})
			},
			wantFail: `no event matches kind=write.failed key="c2"`,
		},
		{
			name: "RequireNone passes",
			call: func(r *audittest.Recorder, t testing.TB) { r.RequireNone(t, audittest.Match{Key: "c3"}) },
		},
		{
			name:     "RequireNone fails",
			call:     func(r *audittest.Recorder, t testing.TB) { r.RequireNone(t, audittest.Match{System: "crm"}) },
			wantFail: "2 events match system=crm, want 0",
		},
		{
			name: "RequireCount passes",
			call: func(r *audittest.Recorder, t testing.TB) {
				r.RequireCount(t, audittest.Match{Kind: audit.MergeDecided}, 2)
			},
		},
		{
			name: "RequireCount zero passes",
			call: func(r *audittest.Recorder, t testing.TB) {
				r.RequireCount(t, audittest.Match{Kind: audit.ReadFailed}, 0)
			},
		},
		{
			name: "RequireCount too few",
			call: func(r *audittest.Recorder, t testing.TB) {
				r.RequireCount(t, audittest.Match{Kind: audit.MergeDecided}, 3)
			},
			wantFail: "2 events match kind=merge.decided, want 3",
		},
		{
			name:     "RequireCount too many",
			call:     func(r *audittest.Recorder, t testing.TB) { r.RequireCount(t, audittest.Match{}, 4) },
			wantFail: "5 events match any event, want 4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := recorded(t)
			tb, returned := runTB(t, func(tb testing.TB) { tt.call(r, tb) })
			if tt.wantFail == "" {
				if !returned || len(tb.errors) > 0 {
					t.Fatalf("helper failed: %q", tb.errors)
				}
				return
			}
			if returned || !tb.fatal {
				t.Fatalf("helper did not stop the test with Fatalf (returned %v, errors %q)", returned, tb.errors)
			}
			if len(tb.errors) != 1 || !strings.Contains(tb.errors[0], tt.wantFail) {
				t.Fatalf("failure = %q, want one message containing %q", tb.errors, tt.wantFail)
			}
		})
	}
}

func TestRequireReturnsFirstMatch(t *testing.T) {
	r := recorded(t)
	got := r.Require(t, audittest.Match{Kind: audit.MergeDecided})
	if diff := cmp.Diff(events()[1], got, versionCmp); diff != "" {
		t.Errorf("Require (-want +got):\n%s", diff)
	}
}

func TestRequireFailureListing(t *testing.T) {
	r := recorded(t)
	tb, _ := runTB(t, func(tb testing.TB) { r.Require(tb, audittest.Match{Kind: audit.MergeDecided, Key: "c9"}) })
	want := `audittest: no event matches kind=merge.decided key="c9"; 5 recorded (* = matches):
	    0  edit.observed key="c1" system=portal unit=email
	    1  merge.decided key="c1" system=portal unit=email rule=fast-forward
	    2  write.attempted key="c1" system=crm
	    3  write.failed key="c1" system=crm
	    4  merge.decided key="c2" system=erp unit=price rule=system-of-record`
	if diff := cmp.Diff([]string{want}, tb.errors); diff != "" {
		t.Errorf("failure message (-want +got):\n%s", diff)
	}

	tb, _ = runTB(t, func(tb testing.TB) { r.RequireCount(tb, audittest.Match{Key: "c1", System: "crm"}, 1) })
	want = `audittest: 2 events match key="c1" system=crm, want 1; 5 recorded (* = matches):
	    0  edit.observed key="c1" system=portal unit=email
	    1  merge.decided key="c1" system=portal unit=email rule=fast-forward
	*   2  write.attempted key="c1" system=crm
	*   3  write.failed key="c1" system=crm
	    4  merge.decided key="c2" system=erp unit=price rule=system-of-record`
	if diff := cmp.Diff([]string{want}, tb.errors); diff != "" {
		t.Errorf("failure message (-want +got):\n%s", diff)
	}

	tb, _ = runTB(t, func(tb testing.TB) { audittest.New().Require(tb, audittest.Match{}) })
	if diff := cmp.Diff([]string{"audittest: no event matches any event; no events were recorded"}, tb.errors); diff != "" {
		t.Errorf("failure message (-want +got):\n%s", diff)
	}
}

func TestRequireFailureListingIsCapped(t *testing.T) {
	r := audittest.New()
	for i := range 150 {
		_ = r.Emit(context.Background(), []audit.Event{{Kind: audit.WriteSucceeded, Key: fmt.Sprint(i)}})
	}
	tb, _ := runTB(t, func(tb testing.TB) { r.RequireNone(tb, audittest.Match{Kind: audit.WriteSucceeded}) })
	if len(tb.errors) != 1 {
		t.Fatalf("failures = %q, want one", tb.errors)
	}
	msg := tb.errors[0]
	if lines := strings.Count(msg, "\n"); lines != 101 {
		t.Errorf("message has %d lines after the first, want 100 events and a summary", lines)
	}
	if !strings.HasSuffix(msg, "\n\t... and 50 more") {
		t.Errorf("message does not end with the count of events left out:\n%s", msg[len(msg)-100:])
	}
}
