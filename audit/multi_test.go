package audit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord/audit"
)

func TestMulti(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		failing []int // indices of sinks that fail
	}{
		{name: "none", n: 0},
		{name: "all succeed", n: 3},
		{name: "first fails, rest still run", n: 3, failing: []int{0}},
		{name: "middle fails", n: 3, failing: []int{1}},
		{name: "several fail", n: 4, failing: []int{0, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := sampleEvents()
			type call struct {
				sink   int
				events int
			}
			var calls []call
			causes := map[int]error{}
			sinks := make([]audit.Sink, tt.n)
			for i := range sinks {
				for _, f := range tt.failing {
					if f == i {
						causes[i] = fmt.Errorf("sink %d is down", i)
					}
				}
				sinks[i] = audit.SinkFunc(func(_ context.Context, evs []audit.Event) error {
					calls = append(calls, call{sink: i, events: len(evs)})
					return causes[i]
				})
			}
			err := audit.Multi(sinks...).Emit(context.Background(), events)

			var wantCalls []call
			for i := range tt.n {
				wantCalls = append(wantCalls, call{sink: i, events: len(events)})
			}
			if diff := cmp.Diff(wantCalls, calls, cmp.AllowUnexported(call{})); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if len(tt.failing) == 0 {
				require.NoError(t, err, "Emit")
				return
			}
			// Every failure is reported, wrapped in a SinkError naming its
			// index, and the joined error unwraps to each (Unwrap() []error,
			// which alert.Async's permanence check walks too).
			joined, ok := err.(interface{ Unwrap() []error })
			require.True(t, ok, "Emit's error %T has no Unwrap() []error", err)
			var got []int
			for _, e := range joined.Unwrap() {
				var se *audit.SinkError
				require.ErrorAs(t, e, &se)
				assert.ErrorIs(t, se, causes[se.Index], "SinkError %d", se.Index)
				got = append(got, se.Index)
			}
			assert.Equal(t, tt.failing, got, "failed sink indices")
			for _, i := range tt.failing {
				assert.ErrorIs(t, err, causes[i], "Emit error wraps the error of sink %d", i)
			}
		})
	}
}

func TestMultiErrorMessage(t *testing.T) {
	down := audit.SinkFunc(func(context.Context, []audit.Event) error { return errors.New("webhook down") })
	err := audit.Multi(audit.Discard, down).Emit(context.Background(), sampleEvents())
	assert.EqualError(t, err, "audit: sink 1: webhook down")
}

func TestMultiKeepsItsOwnSlice(t *testing.T) {
	called := false
	sinks := []audit.Sink{audit.SinkFunc(func(context.Context, []audit.Event) error { called = true; return nil })}
	m := audit.Multi(sinks...)
	sinks[0] = audit.Discard
	require.NoError(t, m.Emit(context.Background(), nil), "Emit")
	assert.True(t, called, "Multi used the caller's slice after it was changed")
}
