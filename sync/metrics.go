package sync

import (
	"context"
	gosync "sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/concordsync/concord"
)

// Stats is a plain snapshot of what the engine has done since it was
// created, for hosts without OpenTelemetry. See [Engine.Stats].
type Stats struct {
	Cycles int
	// LastCycle is how long the latest cycle took.
	LastCycle time.Duration
	// Converged counts records whose systems disagreed (an edit not yet
	// everywhere, for whatever reason) and agree again;
	// MeanTimeToConsistency is the mean time that took, from the cycle
	// that saw the discrepancy to the cycle that resolved it.
	Converged             int
	MeanTimeToConsistency time.Duration
	Systems               map[concord.SystemID]SystemStats
}

// SystemStats counts what happened with one system.
type SystemStats struct {
	Read          int // records read
	ReadCalls     int // reads attempted (batches)
	ReadFailures  int // reads that failed after retries
	Writes        int // patches applied
	WriteFailures int // patches that failed (each attempt counts)
	Conflicts     int
	Held          int
	DeadLettered  int // writes dead-lettered
	Quarantined   int // records dead-lettered on the way in
	OutOfScope    int // writes refused by the system's Scope
	Retries       int
	// FailureRate is the integration failure rate: failed writes over
	// attempted writes, 0 when none were attempted.
	FailureRate float64
	// MeanTimeToResolution is the mean time from a record's first failed
	// write to the system to its successful write; Resolved how many.
	MeanTimeToResolution time.Duration
	Resolved             int
	// Rate is the current call budget in calls per second (rate.Inf
	// without one): lower than configured after rate limiting.
	Rate rate.Limit
}

// metrics holds the OpenTelemetry instruments and the plain totals.
type metrics struct {
	mu             gosync.Mutex
	stats          Stats
	ttrTotal       map[concord.SystemID]time.Duration
	convergedTotal time.Duration

	records, writes, failures, conflicts, holds, deadLetters metric.Int64Counter
	deadDepth                                                metric.Int64UpDownCounter
	cycle, ttr                                               metric.Float64Histogram
	scanned, scanEstimate                                    metric.Int64Gauge
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	m := &metrics{stats: Stats{Systems: map[concord.SystemID]SystemStats{}}, ttrTotal: map[concord.SystemID]time.Duration{}}
	if mp == nil {
		return m, nil
	}
	meter := mp.Meter("github.com/concordsync/concord/sync")
	var err error
	counter := func(name, desc string) metric.Int64Counter {
		c, e := meter.Int64Counter(name, metric.WithDescription(desc))
		if e != nil && err == nil {
			err = e
		}
		return c
	}
	m.records = counter("concord.records.read", "Records read from a system.")
	m.writes = counter("concord.writes", "Patches written to a system, by outcome.")
	m.failures = counter("concord.failures", "Failed calls and records, by system, direction and error class.")
	m.conflicts = counter("concord.conflicts", "Conflicts a system took part in.")
	m.holds = counter("concord.holds", "Units held for a person.")
	m.deadLetters = counter("concord.dead_letters", "Records dead-lettered, by system and direction.")
	if err != nil {
		return nil, err // before the calls below overwrite it
	}
	if m.deadDepth, err = meter.Int64UpDownCounter("concord.dead_letters.depth", metric.WithDescription("Writes waiting in dead letters.")); err != nil {
		return nil, err
	}
	if m.scanned, err = meter.Int64Gauge("concord.scan.records", metric.WithDescription("Records read so far by a system's first sync by scan.")); err != nil {
		return nil, err
	}
	if m.scanEstimate, err = meter.Int64Gauge("concord.scan.estimate", metric.WithDescription("Records a system's first sync by scan expects (0: unknown).")); err != nil {
		return nil, err
	}
	if m.cycle, err = meter.Float64Histogram("concord.cycle.duration", metric.WithUnit("s"), metric.WithDescription("Duration of a cycle.")); err != nil {
		return nil, err
	}
	if m.ttr, err = meter.Float64Histogram("concord.time_to_resolution", metric.WithUnit("s"),
		metric.WithDescription("Time to resolution: from a record's first failed write to a system to its successful write (from=failure), or from a detected discrepancy to the agreement of every system (from=discrepancy).")); err != nil {
		return nil, err
	}
	return m, err
}

func sysAttr(s concord.SystemID) attribute.KeyValue { return attribute.String("system", string(s)) }

// scan records a system's scan progress in the gauges.
func (m *metrics) scan(ctx context.Context, s concord.SystemID, p ScanProgress) {
	if m.scanned == nil {
		return
	}
	m.scanned.Record(ctx, p.Scanned, metric.WithAttributes(sysAttr(s)))
	m.scanEstimate.Record(ctx, p.Estimate, metric.WithAttributes(sysAttr(s)))
}

// observe adds a cycle's report to the totals and the instruments.
func (m *metrics) observe(ctx context.Context, r *Report, systems []*system) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Cycles++
	m.stats.LastCycle = r.Finished.Sub(r.Started)
	reads := map[concord.SystemID]int{}
	for _, f := range r.Failures {
		if f.Op == OpRead {
			reads[f.System]++
		}
	}
	for _, s := range systems {
		sr := r.Systems[s.id]
		st := m.stats.Systems[s.id]
		st.Read += sr.Read
		st.ReadCalls += sr.ReadCalls
		st.ReadFailures += reads[s.id]
		st.Writes += sr.Writes
		st.WriteFailures += sr.Failed - reads[s.id]
		st.Conflicts += sr.Conflicts
		st.Held += sr.Held
		st.DeadLettered += sr.DeadLettered
		st.Quarantined += sr.Quarantined
		st.OutOfScope += sr.OutOfScope
		st.Retries += sr.Retries
		if n := st.Writes + st.WriteFailures; n > 0 {
			st.FailureRate = float64(st.WriteFailures) / float64(n)
		}
		st.Rate = s.budget.limit()
		if st.Resolved > 0 {
			st.MeanTimeToResolution = m.ttrTotal[s.id] / time.Duration(st.Resolved)
		}
		m.stats.Systems[s.id] = st
		if m.records == nil {
			continue
		}
		attrs := metric.WithAttributes(sysAttr(s.id))
		m.records.Add(ctx, int64(sr.Read), attrs)
		m.writes.Add(ctx, int64(sr.Writes), metric.WithAttributes(sysAttr(s.id), attribute.String("outcome", "ok")))
		m.writes.Add(ctx, int64(sr.Failed-reads[s.id]), metric.WithAttributes(sysAttr(s.id), attribute.String("outcome", "failed")))
		m.conflicts.Add(ctx, int64(sr.Conflicts), attrs)
		m.holds.Add(ctx, int64(sr.Held), attrs)
		m.deadLetters.Add(ctx, int64(sr.DeadLettered), metric.WithAttributes(sysAttr(s.id), attribute.String("direction", "out")))
		m.deadLetters.Add(ctx, int64(sr.Quarantined), metric.WithAttributes(sysAttr(s.id), attribute.String("direction", "in")))
		m.deadDepth.Add(ctx, int64(sr.DeadLettered), attrs)
	}
	if m.cycle != nil {
		m.cycle.Record(ctx, m.stats.LastCycle.Seconds())
		for _, f := range r.Failures {
			dir := "out"
			if f.Op == OpRead || f.Op == OpTransform {
				dir = "in"
			}
			m.failures.Add(ctx, 1, metric.WithAttributes(sysAttr(f.System), attribute.String("direction", dir), attribute.String("class", classOf(f.Err).String())))
		}
	}
}

// convergedAfter records one record whose systems agree again after d.
func (m *metrics) convergedAfter(ctx context.Context, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.convergedTotal += d
	m.stats.Converged++
	m.stats.MeanTimeToConsistency = m.convergedTotal / time.Duration(m.stats.Converged)
	if m.ttr != nil {
		m.ttr.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("from", "discrepancy")))
	}
}

// resolved records one record that is in sync again after failures.
func (m *metrics) resolved(ctx context.Context, s concord.SystemID, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stats.Systems[s]
	st.Resolved++
	m.ttrTotal[s] += d
	m.stats.Systems[s] = st
	if m.ttr != nil {
		m.ttr.Record(ctx, d.Seconds(), metric.WithAttributes(sysAttr(s), attribute.String("from", "failure")))
	}
}

func (m *metrics) replayed(ctx context.Context, s concord.SystemID) {
	if m.deadDepth != nil {
		m.deadDepth.Add(ctx, -1, metric.WithAttributes(sysAttr(s)))
	}
}

// Stats returns a snapshot of the engine's totals.
func (e *Engine) Stats() Stats {
	e.metrics.mu.Lock()
	defer e.metrics.mu.Unlock()
	out := e.metrics.stats
	out.Systems = make(map[concord.SystemID]SystemStats, len(e.systems))
	for _, s := range e.systems {
		st := e.metrics.stats.Systems[s.id]
		st.Rate = s.budget.limit()
		out.Systems[s.id] = st
	}
	return out
}
