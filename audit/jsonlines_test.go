package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

func TestJSONLinesRoundTrip(t *testing.T) {
	events := sampleEvents()
	before := cloneEvents(events)
	var buf bytes.Buffer
	require.NoError(t, audit.JSONLines(&buf).Emit(context.Background(), events), "Emit")
	requireEvents(t, events, before) // Emit left its input alone
	if n := strings.Count(buf.String(), "\n"); n != len(events) {
		t.Fatalf("wrote %d lines, want %d:\n%s", n, len(events), &buf)
	}
	got, err := audit.ReadJSONLines(&buf)
	require.NoError(t, err, "ReadJSONLines")
	requireEvents(t, got, events)
	// Numbers come back as json.Number, whatever they were written as.
	if n, ok := got[2].To["big"].(json.Number); !ok || n != "18446744073709551615" {
		t.Errorf("big = %#v, want json.Number(\"18446744073709551615\")", got[2].To["big"])
	}
}

// TestJSONLinesValueTypes pins down what each Value type becomes after a
// round trip: the same value under EqualValues, except for times, which
// JSON can only carry as strings.
func TestJSONLinesValueTypes(t *testing.T) {
	tests := []struct {
		name string
		in   concord.Value
		want concord.Value
	}{
		{"nil", nil, nil},
		{"bool", false, false},
		{"string", "Zürich \"quoted\" <b>", "Zürich \"quoted\" <b>"},
		{"int", -42, json.Number("-42")},
		{"uint64 max", uint64(math.MaxUint64), json.Number("18446744073709551615")},
		{"float64", 0.1, json.Number("0.1")},
		{"float32", float32(0.1), json.Number("0.1")},
		{"float64 exponent", 1e300, json.Number("1e+300")},
		{"json.Number", json.Number("1.50"), json.Number("1.50")},
		{"[]string", []string{"a", "b"}, []any{"a", "b"}},
		{"map[string]string", map[string]string{"k": "v"}, map[string]any{"k": "v"}},
		{"nested", map[string]any{"l": []any{1, map[string]any{"x": nil}}}, map[string]any{"l": []any{json.Number("1"), map[string]any{"x": nil}}}},
		{"time becomes string", t0.In(time.FixedZone("X", -7200)), "2025-03-14T07:26:53.589793238-02:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			ev := audit.Event{Kind: audit.EditObserved, To: map[string]concord.Value{"f": tt.in}}
			require.NoError(t, audit.JSONLines(&buf).Emit(context.Background(), []audit.Event{ev}), "Emit")
			got, err := audit.ReadJSONLines(&buf)
			require.NoError(t, err, "ReadJSONLines")
			if len(got) != 1 {
				t.Fatalf("read %d events, want 1", len(got))
			}
			v, ok := got[0].To["f"]
			if !ok {
				t.Fatalf("field f missing after round trip: %v", got[0].To)
			}
			if diff := cmp.Diff(tt.want, v); diff != "" {
				t.Errorf("value after round trip (-want +got):\n%s", diff)
			}
			if _, isTime := tt.in.(time.Time); !isTime && !concord.EqualValues(tt.in, v) {
				t.Errorf("EqualValues(%#v, %#v) = false, want true", tt.in, v)
			}
		})
	}
}

func TestJSONLinesOutputIsStable(t *testing.T) {
	ev := audit.Event{
		Time: t0, Kind: audit.MergeDecided, Cycle: 3, System: "crm", Key: "c<1>",
		Unit: "name", Fields: []string{"name"},
		From: map[string]concord.Value{"name": "Ann", "a": 1}, To: map[string]concord.Value{"name": "Anne", "z": nil},
		Version: v1, Rule: "fast-forward",
	}
	want := `{"time":"2025-03-14T09:26:53.589793238Z","kind":"merge.decided","cycle":3,` +
		`"system":"crm","key":"c<1>","unit":"name","fields":["name"],"from":{"a":1,"name":"Ann"},` +
		`"to":{"name":"Anne","z":null},"version":"{1:2,3:1}","rule":"fast-forward"}` + "\n"
	for range 3 { // map order must not matter
		var buf bytes.Buffer
		require.NoError(t, audit.JSONLines(&buf).Emit(context.Background(), []audit.Event{ev}), "Emit")
		if diff := cmp.Diff(want, buf.String()); diff != "" {
			t.Fatalf("output (-want +got):\n%s", diff)
		}
	}
}

func TestJSONLinesBadEventIsSkippedAndNamed(t *testing.T) {
	events := []audit.Event{
		{Kind: audit.EditObserved, Key: "ok-1"},
		{Kind: audit.EditObserved, System: "crm", Key: "bad", To: map[string]concord.Value{"x": math.NaN()}},
		{Kind: audit.EditObserved, Key: "ok-2"},
	}
	var buf bytes.Buffer
	err := audit.JSONLines(&buf).Emit(context.Background(), events)
	var ee *audit.EventError
	if !errors.As(err, &ee) {
		t.Fatalf("Emit error = %v, want an *audit.EventError", err)
	}
	if ee.Index != 1 || ee.Key != "bad" || ee.System != "crm" || ee.Kind != audit.EditObserved {
		t.Errorf("EventError = %+v, want index 1, key bad, system crm", ee)
	}
	var uve *json.UnsupportedValueError
	if !errors.As(err, &uve) {
		t.Errorf("Emit error %v does not wrap *json.UnsupportedValueError", err)
	}
	if want := `(edit.observed, system crm, key "bad")`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	got, rerr := audit.ReadJSONLines(&buf)
	if rerr != nil {
		t.Fatalf("ReadJSONLines: %v", rerr)
	}
	requireEvents(t, got, []audit.Event{events[0], events[2]})
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestJSONLinesWrites(t *testing.T) {
	errDisk := errors.New("disk full")
	tests := []struct {
		name       string
		events     []audit.Event
		fail       bool
		wantWrites int
		wantErr    error
	}{
		{name: "empty batch writes nothing", events: nil, wantWrites: 0},
		{name: "one write per batch", events: sampleEvents(), wantWrites: 1},
		{name: "write error returned", events: sampleEvents(), fail: true, wantWrites: 1, wantErr: errDisk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writes := 0
			w := writerFunc(func(p []byte) (int, error) {
				writes++
				if tt.fail {
					return 0, errDisk
				}
				return len(p), nil
			})
			err := audit.JSONLines(w).Emit(context.Background(), tt.events)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Emit error = %v, want %v", err, tt.wantErr)
			}
			if writes != tt.wantWrites {
				t.Errorf("%d Write calls, want %d", writes, tt.wantWrites)
			}
		})
	}
}

func TestJSONLinesConcurrentBatchesDoNotInterleave(t *testing.T) {
	const goroutines, batches, perBatch = 8, 40, 3
	var buf bytes.Buffer // not safe for concurrent use: the sink's mutex must guard it
	sink := audit.JSONLines(&buf)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*batches)
	for g := range goroutines {
		wg.Go(func() {
			for b := range batches {
				batch := make([]audit.Event, perBatch)
				for i := range batch {
					batch[i] = audit.Event{Kind: audit.WriteSucceeded, Key: fmt.Sprintf("g%d-b%d", g, b), Unit: fmt.Sprint(i)}
				}
				if err := sink.Emit(context.Background(), batch); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Emit: %v", err)
	}
	got, err := audit.ReadJSONLines(&buf)
	require.NoError(t, err, "ReadJSONLines")
	if len(got) != goroutines*batches*perBatch {
		t.Fatalf("read %d events, want %d", len(got), goroutines*batches*perBatch)
	}
	seen := map[string]bool{}
	for i := 0; i < len(got); i += perBatch {
		key := got[i].Key
		if seen[key] {
			t.Fatalf("batch %s appears twice", key)
		}
		seen[key] = true
		for j := range perBatch {
			if e := got[i+j]; e.Key != key || e.Unit != fmt.Sprint(j) {
				t.Fatalf("line %d: got %s/%s, want %s/%d: batches interleaved", i+j+1, e.Key, e.Unit, key, j)
			}
		}
	}
}

func TestReadJSONLines(t *testing.T) {
	a := `{"kind":"edit.observed","key":"a","version":"{1:1}"}`
	b := `{"kind":"write.failed","key":"b","version":"{}"}`
	evA := audit.Event{Kind: audit.EditObserved, Key: "a", Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: 1})}
	evB := audit.Event{Kind: audit.WriteFailed, Key: "b"}
	tests := []struct {
		name    string
		in      string
		want    []audit.Event
		wantErr string // substring; empty for no error
		wantAs  any    // pointer to an error type the error must wrap
		wantIs  error  // an error the error must wrap
	}{
		{name: "empty", in: "", want: nil},
		{name: "two lines", in: a + "\n" + b + "\n", want: []audit.Event{evA, evB}},
		{name: "no final newline", in: a + "\n" + b, want: []audit.Event{evA, evB}},
		{name: "blank lines and CRLF", in: "\n" + a + "\r\n\n  \n" + b + "\r\n", want: []audit.Event{evA, evB}},
		{name: "unknown fields ignored", in: `{"kind":"edit.observed","key":"a","version":"{1:1}","new":[1]}`, want: []audit.Event{evA}},
		{name: "missing version is zero", in: `{"kind":"write.failed","key":"b"}`, want: []audit.Event{evB}},
		{
			name: "syntax error keeps earlier lines", in: a + "\n" + `{"kind":}` + "\n" + b,
			want: []audit.Event{evA}, wantErr: "line 2", wantAs: new(*json.SyntaxError),
		},
		{
			name: "truncated last line", in: a + "\n" + b[:20],
			want: []audit.Event{evA}, wantErr: "line 2: unexpected EOF",
		},
		{name: "two objects on a line", in: a + " " + b, wantErr: "line 1: unexpected"},
		{name: "not an event", in: "[1,2]", wantErr: "line 1", wantAs: new(*json.UnmarshalTypeError)},
		{name: "no kind", in: a + "\n{}\n", want: []audit.Event{evA}, wantErr: "line 2: object has no kind"},
		{name: "bad version", in: `{"kind":"edit.observed","version":"{1:0}"}`, wantErr: "line 1", wantIs: concord.ErrBadVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audit.ReadJSONLines(strings.NewReader(tt.in))
			requireEvents(t, got, tt.want)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ReadJSONLines error = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("ReadJSONLines error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
				t.Errorf("error %v does not wrap %T", err, tt.wantAs)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
		})
	}
	t.Run("reader error", func(t *testing.T) {
		errRead := errors.New("connection reset")
		// DataErrReader returns io.EOF together with the last data.
		r := iotest.DataErrReader(strings.NewReader(`{"kind":"write.failed","key":"b"}`))
		if got, err := audit.ReadJSONLines(r); err != nil || len(got) != 1 {
			t.Fatalf("ReadJSONLines = %d events, %v; want 1, nil", len(got), err)
		}
		_, err := audit.ReadJSONLines(iotest.ErrReader(errRead))
		if !errors.Is(err, errRead) {
			t.Errorf("error = %v, want one wrapping %v", err, errRead)
		}
	})
}
