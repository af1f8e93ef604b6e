package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
)

// FirstSync says how the engine reads a system for which it has no cursor:
// one just added to the pipeline, or one whose cursor a person reset to the
// start ([Engine.ResetCursor] with the empty cursor).
type FirstSync int8

const (
	// FirstSyncScan, the default, reads every record by
	// [connector.Scanner.Scan] when the connector has that ability, then
	// follows the change feed from where it ended when the scan began (the
	// cursor of [connector.ScanStarter.StartScan]; without that ability,
	// from the start of the feed). The scan's progress is committed with
	// the records it read, so a crash resumes it where it stopped, and
	// every cycle's report says how far it is ([SystemReport.Scan]). A
	// connector without Scanner is read from the start of its feed.
	FirstSyncScan FirstSync = iota
	// FirstSyncFeed reads the change feed from its start, never by scan.
	FirstSyncFeed
)

// String names the policy: "scan" or "feed".
func (f FirstSync) String() string {
	switch f {
	case FirstSyncScan:
		return "scan"
	case FirstSyncFeed:
		return "feed"
	}
	return fmt.Sprintf("FirstSync(%d)", int8(f))
}

// ScanProgress is how far a system's first sync by scan has come.
type ScanProgress struct {
	// Scanned is the number of records read by scan so far.
	Scanned int64
	// Estimate is the number of records the connector expected when the
	// scan began ([connector.ScanStart.Estimate]); 0 if unknown.
	Estimate int64
	// Done reports that the scan is over: the system's change feed is
	// followed from where it ended when the scan began.
	Done bool
	// Started and Finished (zero until Done) by the engine's clock.
	Started, Finished time.Time
}

// String says "1200 of about 5000 records scanned" (or "... done").
func (p ScanProgress) String() string {
	s := fmt.Sprintf("%d records scanned", p.Scanned)
	if p.Estimate > 0 {
		s = fmt.Sprintf("%d of about %d records scanned", p.Scanned, p.Estimate)
	}
	if p.Done {
		s += ", done"
	}
	return s
}

// scan is a first sync by scan as stored, in the engine value
// scanValueName(system), committed with the records each page brought.
type scan struct {
	V        int              `json:"v"`
	Cursor   connector.Cursor `json:"cursor,omitempty"` // after the last page read
	Feed     connector.Cursor `json:"feed,omitempty"`   // the feed cursor to follow once done
	Scanned  int64            `json:"scanned"`
	Estimate int64            `json:"estimate,omitempty"`
	Done     bool             `json:"done,omitempty"`
	Started  time.Time        `json:"started"`
	Finished time.Time        `json:"finished,omitzero"`
}

const scanFormat = 1

func scanValueName(s concord.SystemID) string { return "scan/" + string(s) }

func (s *scan) progress() ScanProgress {
	return ScanProgress{Scanned: s.Scanned, Estimate: s.Estimate, Done: s.Done, Started: s.Started, Finished: s.Finished}
}

func (s *scan) encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic("concord: encoding scan progress: " + err.Error()) // plain types: cannot fail
	}
	return b
}

// loadScan returns the stored scan of system s, nil if there is none.
func (e *Engine) loadScan(ctx context.Context, s concord.SystemID) (*scan, error) {
	b, err := e.store.Value(ctx, scanValueName(s))
	if err != nil {
		return nil, fmt.Errorf("concord: loading the scan progress of %q: %w", s, err)
	}
	if b == nil {
		return nil, nil
	}
	var sc scan
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("%w: the scan progress of %q does not decode: %v", ErrDamaged, s, err)
	}
	switch {
	case sc.V > scanFormat:
		return nil, fmt.Errorf("%w: the scan progress of %q has format %d", ErrNewerFormat, s, sc.V)
	case sc.V != scanFormat || sc.Scanned < 0 || sc.Estimate < 0:
		return nil, fmt.Errorf("%w: the scan progress of %q is not valid", ErrDamaged, s)
	}
	return &sc, nil
}

// ErrFeedStuck is the cause of a read failure when a connector's Changes
// answered a page with More set but the cursor it was given: the engine
// would read the same page forever (and Run, seeing a backlog, cycle again
// at once). The cursor is kept; the next cycle asks again.
var ErrFeedStuck = errors.New("concord: the connector's change feed made no progress")

// ErrScanStuck is the cause of a read failure when a connector's Scan
// answered a page with More set but no new cursor: the scan would read the
// same page forever. Its progress is kept; the next cycle asks again.
var ErrScanStuck = errors.New("concord: the connector's scan made no progress")

// readScan reads up to MaxBatches pages of s's first sync by scan into r,
// starting the scan if the system has none stored and needs one. It
// returns false if the system is not (or no longer) in a scan: its change
// feed is to be read.
func (c *cycle) readScan(ctx context.Context, s *system, cur connector.Cursor, r *pullResult) bool {
	scanner := s.scanner
	if scanner == nil || s.FirstSync != FirstSyncScan {
		return false
	}
	sc, err := c.e.loadScan(ctx, s.id)
	if err != nil {
		r.err = err
		return true
	}
	if sc == nil {
		if cur != "" {
			return false // synced by its feed before scans existed
		}
		sc = &scan{V: scanFormat, Started: c.e.now()}
		if st := s.starter; st != nil {
			var start connector.ScanStart
			c.report.Systems[s.id].ReadCalls++
			if err := c.call(ctx, s, func(ctx context.Context) (err error) {
				start, err = st.StartScan(ctx)
				return err
			}); err != nil {
				r.err = err
				return true
			}
			sc.Feed, sc.Estimate = start.Feed, max(start.Estimate, 0)
		}
		r.scanStarted = true
	}
	if sc.Done {
		return false
	}
	for range c.e.cfg.MaxBatches {
		var b connector.Batch
		c.report.Systems[s.id].ReadCalls++
		err := c.call(ctx, s, func(ctx context.Context) (err error) {
			b, err = scanner.Scan(ctx, sc.Cursor, s.BatchSize)
			return err
		})
		if err != nil {
			r.err = err
			break
		}
		r.recs = append(r.recs, b.Records...)
		sc.Scanned += int64(len(b.Records))
		if !b.More {
			sc.Done, sc.Finished = true, c.e.now()
			break
		}
		if b.Next == sc.Cursor {
			r.err = fmt.Errorf("%w: %s answered scan cursor %q with More and the same cursor", ErrScanStuck, s.id, sc.Cursor)
			break
		}
		sc.Cursor = b.Next
	}
	r.scan = sc
	r.backlog = !sc.Done && r.err == nil
	if sc.Done {
		r.next, r.read = sc.Feed, true
	}
	return true
}

// noteScan records, after pull, a system's scan: its progress is committed
// with the cycle, reported, audited and logged.
func (c *cycle) noteScan(s *system, r *pullResult) {
	if r.scan == nil {
		return
	}
	if c.values == nil {
		c.values = map[string][]byte{}
	}
	c.values[scanValueName(s.id)] = r.scan.encode()
	p := r.scan.progress()
	c.report.Systems[s.id].Scan = &p
	c.e.metrics.scan(context.Background(), s.id, p)
	if f := c.e.cfg.Progress; f != nil && !c.dry {
		if perr := isolate("Progress hook", func() { f(s.id, p) }); perr != nil {
			c.e.log.Warn("concord: the Progress hook panicked", "error", perr)
		}
	}
	if r.scanStarted {
		c.events.add(audit.Event{Time: c.e.now(), Kind: audit.ScanStarted, Cycle: c.report.Cycle, System: s.id,
			Reason: fmt.Sprintf("first sync of %s by scan began (%d records expected; 0: unknown)", s.id, p.Estimate)})
	}
	if p.Done {
		c.events.add(audit.Event{Time: c.e.now(), Kind: audit.ScanFinished, Cycle: c.report.Cycle, System: s.id,
			Reason: fmt.Sprintf("first sync of %s by scan done: %d records read; its change feed is followed from cursor %q", s.id, p.Scanned, r.scan.Feed)})
	}
	level := slog.LevelDebug
	if r.scanStarted || p.Done {
		level = slog.LevelInfo
	}
	c.e.log.Log(context.Background(), level, "concord: first sync by scan", "system", s.id, "progress", p.String())
}
