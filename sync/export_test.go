package sync

// SkipWriteAheadForBenchmark makes e commit a cycle only after its writes,
// as before write-ahead, so that a benchmark can measure what the
// write-ahead commit costs. Unsafe: after a crash such an engine can take
// its own writes for the systems' edits.
func SkipWriteAheadForBenchmark(e *Engine) { e.noWriteAhead = true }

// EngineActorName is the prefix of the engine's actor name, for tests that
// normalise the random epoch in an audit trail.
const EngineActorName = engineActorName
