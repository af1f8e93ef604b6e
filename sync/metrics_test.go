package sync_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	recsync "github.com/concordsync/concord/sync"
)

// sum returns the value of an Int64 sum metric for the data points whose
// attributes include every pair in attrs.
func sum(t *testing.T, rm metricdata.ResourceMetrics, name string, attrs map[string]string) int64 {
	t.Helper()
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			data, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T", name, m.Data)
			}
		points:
			for _, dp := range data.DataPoints {
				for k, v := range attrs {
					if got, ok := dp.Attributes.Value(attributeKey(k)); !ok || got.AsString() != v {
						continue points
					}
				}
				total += dp.Value
			}
		}
	}
	return total
}

func TestMetricsThroughOpenTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, func(c *recsync.Config) { c.MeterProvider = mp })
	r.sys["warehouse"].FailKey("c2", connector.Permanent(errors.New("422")))
	r.sys["warehouse"].FailKey("c3", connector.Transient(errors.New("503")))
	for _, k := range []string{"c1", "c2", "c3", "c4"} {
		r.sys["portal"].Edit(k, map[string]any{"n": 1})
	}
	r.cycle()
	r.sys["warehouse"].ClearFailKey("c3")
	r.cycle() // c3 is resolved

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		attrs map[string]string
		want  int64
	}{
		{"concord.records.read", map[string]string{"system": "portal"}, 4},
		{"concord.writes", map[string]string{"system": "warehouse", "outcome": "ok"}, 3},
		{"concord.writes", map[string]string{"system": "warehouse", "outcome": "failed"}, 2},
		{"concord.failures", map[string]string{"system": "warehouse", "class": "permanent"}, 1},
		{"concord.failures", map[string]string{"system": "warehouse", "class": "transient"}, 1},
		{"concord.dead_letters", map[string]string{"system": "warehouse", "direction": "out"}, 1},
		{"concord.dead_letters.depth", map[string]string{"system": "warehouse"}, 1},
	} {
		if got := sum(t, rm, tc.name, tc.attrs); got != tc.want {
			t.Errorf("%s%v = %d; want %d", tc.name, tc.attrs, got, tc.want)
		}
	}
	st := r.engine.Stats()
	w := st.Systems["warehouse"]
	if w.Writes != 3 || w.WriteFailures != 2 || w.FailureRate != 0.4 || w.DeadLettered != 1 || w.Resolved != 1 || w.MeanTimeToResolution <= 0 {
		t.Errorf("warehouse stats %+v", w)
	}
	if st.Cycles != 2 {
		t.Errorf("cycles = %d", st.Cycles)
	}
	// c1, c4 agreed within the first cycle, c3 in the second; c2 is
	// dead-lettered, so its systems still disagree.
	if st.Converged != 3 || st.MeanTimeToConsistency <= 0 {
		t.Errorf("converged %d, mean time to consistency %v; want 3 and > 0", st.Converged, st.MeanTimeToConsistency)
	}
}

func TestRateBudgetSlowsDownOn429AndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTimedRig(t, recsync.RetryPolicy{MaxAttempts: 5}, 100)
		r.sys["portal"].Edit("c1", map[string]any{"n": 1})
		r.sys["warehouse"].RateLimitNext(2, 0) // 429 without Retry-After
		if _, err := r.engine.RunCycle(context.Background()); err != nil {
			t.Fatal(err)
		}
		slowed := r.engine.Stats().Systems["warehouse"].Rate
		if slowed >= 100 || slowed < 100.0/16 {
			t.Fatalf("rate after two 429s = %v; want lowered from 100, not below 100/16", slowed)
		}
		for i := range 40 {
			r.sys["portal"].Edit("c1", map[string]any{"n": i + 2})
			if _, err := r.engine.RunCycle(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if got := r.engine.Stats().Systems["warehouse"].Rate; got != 100 {
			t.Fatalf("rate after 40 good cycles = %v; want back to 100", got)
		}
		if rec, _ := r.sys["warehouse"].Record("c1"); rec.Fields["n"] != 41 {
			t.Fatalf("warehouse = %v; nothing may be lost", rec.Fields)
		}
	})
}

func attributeKey(k string) attribute.Key { return attribute.Key(k) }
