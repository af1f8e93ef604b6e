package sync

import (
	"fmt"
	"strings"
	"time"

	"github.com/concordsync/concord"
)

// Report says what one cycle (or one Ingest) did.
type Report struct {
	// Cycle number, counted from 1 by this Engine.
	Cycle uint64
	// Started and Finished by the engine's clock.
	Started, Finished time.Time
	// Systems has one entry per configured system.
	Systems map[concord.SystemID]*SystemReport
	// Records is the number of records merged.
	Records int
	// Echoes is the number of records read back exactly as the cycle
	// before wrote them, recognised without loading their state (not
	// counted in Records).
	Echoes int
	// Failures lists what did not succeed, per record where it applies.
	Failures []Failure
}

// Backlog reports whether some system had more changes waiting when the
// cycle stopped reading ([SystemReport.Backlog]).
func (r *Report) Backlog() bool {
	for _, s := range r.Systems {
		if s.Backlog {
			return true
		}
	}
	return false
}

// SystemReport counts what happened in one system during a cycle.
type SystemReport struct {
	Read             int // records read
	Edits            int // unit edits detected
	Conflicts        int // conflicts this system took part in
	Held             int // units held for a person
	Refused          int // edits refused by a gate
	Writes           int // patches applied
	Failed           int // patches or reads that failed
	Quarantined      int // records dead-lettered on the way in
	ReadCalls        int // batches asked for
	DeadLettered     int // writes dead-lettered (permanent, or too many attempts)
	Retries          int // calls retried within the cycle
	RetryAfterCapped int // Retry-After answers longer than the policy allows
	// Backlog reports that the system had more changes waiting when the
	// cycle stopped reading (after Config.MaxBatches batches, or a scan
	// not done): [Engine.Run] starts the next cycle at once.
	Backlog bool
	// Deferred counts the records whose writes to the system waited for
	// a later cycle: this step did not read the system's changes to the
	// end (its read failed or stopped with more waiting, or the step was
	// an [Engine.Ingest] or an [Engine.Replay]) and the system has no
	// conditional writes to refuse a write made over an edit the engine
	// has not read (its records carry no version tag).
	Deferred int
	// OutOfScope counts writes refused by the system's [Scope] (also
	// counted in Failed); the connector was not called for them.
	OutOfScope int
	// Scan is the progress of the system's first sync by scan, if one
	// ran in this cycle (see [FirstSyncScan]); nil otherwise.
	Scan *ScanProgress
}

// Failure is one thing that did not succeed in a cycle.
type Failure struct {
	System concord.SystemID
	Key    string // empty for a whole read
	Op     Op     // the step that failed
	Err    error
}

// Error formats the failure: system, step, record and cause.
func (f Failure) Error() string {
	s := string(f.Op)
	if f.System != "" {
		s = string(f.System) + " " + s
	}
	if f.Key != "" {
		s += " record " + concord.QuoteKey(f.Key)
	}
	if f.Err == nil {
		return s + ": failed"
	}
	return s + ": " + f.Err.Error()
}

// Unwrap returns the cause.
func (f Failure) Unwrap() error { return f.Err }

// CycleError is returned by [Engine.RunCycle] and [Engine.Ingest] when some
// records or calls failed. Everything else in the cycle was committed; the
// failed work is retried in the next cycle (nothing is lost). errors.Is and
// errors.As see every failure's cause.
type CycleError struct {
	Failures []Failure
}

// MaxListedFailures is how many failures [CycleError.Error] spells out;
// it counts the rest ("and 7 more"). Failures has them all.
const MaxListedFailures = 10

// Error lists the failures, one after the other, the first
// [MaxListedFailures] of them in full.
func (e *CycleError) Error() string {
	switch len(e.Failures) {
	case 0:
		return "concord: cycle failed"
	case 1:
		return "concord: " + e.Failures[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "concord: %d failures: ", len(e.Failures))
	for i, f := range e.Failures[:min(len(e.Failures), MaxListedFailures)] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	if n := len(e.Failures) - MaxListedFailures; n > 0 {
		fmt.Fprintf(&b, "; and %d more", n)
	}
	return b.String()
}

// Unwrap returns the failures.
func (e *CycleError) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f
	}
	return out
}
