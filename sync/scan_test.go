package sync_test

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// failingValues fails the commits that carry engine values (the cycle's
// final commit, with the scan's progress) while fail is set.
type failingValues struct {
	store.Store
	mu   gosync.Mutex
	fail bool
}

func (s *failingValues) Commit(ctx context.Context, c *store.Commit) error {
	s.mu.Lock()
	fail := s.fail && len(c.Values) > 0
	s.mu.Unlock()
	if fail {
		return errors.New("injected: the process died before this commit")
	}
	return s.Store.Commit(ctx, c)
}

func (s *failingValues) set(fail bool) {
	s.mu.Lock()
	s.fail = fail
	s.mu.Unlock()
}

// scanRig is a portal of n records and an empty warehouse, read by scan in
// pages of 20, three pages a cycle.
type scanRig struct {
	t         *testing.T
	clock     *clock
	portal    *fake.System
	wh        *fake.System
	store     *failingValues
	audit     *audittest.Recorder
	firstSync recsync.FirstSync
	progress  func(concord.SystemID, recsync.ScanProgress)
}

func newScanRig(t *testing.T, n int) *scanRig {
	r := &scanRig{t: t, clock: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		store: &failingValues{Store: store.NewMemory()}, audit: audittest.New()}
	r.portal = fake.New("portal", fake.WithClock(r.clock.now))
	r.wh = fake.New("warehouse", fake.WithClock(r.clock.now))
	edits := map[string]map[string]concord.Value{}
	for i := range n {
		edits[fmt.Sprintf("c%04d", i)] = map[string]concord.Value{"name": fmt.Sprint("customer ", i), "n": int64(i)}
	}
	r.portal.EditAll(edits)
	return r
}

// engine is a new instance over the rig's store: what a restart after a
// crash would build.
func (r *scanRig) engine() *recsync.Engine {
	r.t.Helper()
	e, err := recsync.New(recsync.Config{
		Systems: []recsync.System{
			{ID: "portal", Connector: r.portal, BatchSize: 20, FirstSync: r.firstSync},
			{ID: "warehouse", Connector: r.wh, BatchSize: 20, FirstSync: r.firstSync},
		},
		Store: r.store, Audit: r.audit, Now: r.clock.now, MaxBatches: 3,
		Retry: recsync.RetryPolicy{MaxAttempts: 1}, Progress: r.progress,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

func (r *scanRig) requireSame() {
	r.t.Helper()
	want := r.portal.Records()
	if got := r.wh.Len(); got != len(want) {
		r.t.Fatalf("warehouse holds %d records; want the portal's %d", got, len(want))
	}
	for _, p := range want {
		w, ok := r.wh.Record(p.Key)
		if !ok || !concord.EqualValues(p.Fields, w.Fields) {
			r.t.Fatalf("record %s: warehouse %v; want the portal's %v", p.Key, w.Fields, p.Fields)
		}
	}
}

func TestFirstSyncByScanReportsProgressAndResumesAfterACrash(t *testing.T) {
	ctx := context.Background()
	r := newScanRig(t, 250)
	e := r.engine()

	rep, err := e.RunCycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Systems["portal"]
	if p.Scan == nil || *p.Scan != (recsync.ScanProgress{Scanned: 60, Estimate: 250, Started: p.Scan.Started}) || !p.Backlog {
		t.Fatalf("after cycle 1 portal reports scan %+v, backlog %v; want 60 of about 250 scanned, not done, a backlog", p.Scan, p.Backlog)
	}
	if got := p.Scan.String(); got != "60 of about 250 records scanned" {
		t.Errorf("progress reads %q", got)
	}
	if r.portal.Calls(fake.OpChanges) != 0 {
		t.Errorf("the portal's change feed was read during its scan")
	}
	r.audit.Require(t, audittest.Match{Kind: audit.ScanStarted, System: "portal"})
	if r.wh.Len() != 60 {
		t.Fatalf("warehouse holds %d records after one cycle; want the 60 scanned", r.wh.Len())
	}

	// Edits while the scan runs: one record already scanned, one not yet,
	// one new.
	r.portal.Edit("c0005", map[string]concord.Value{"name": "edited after its scan"})
	r.portal.Edit("c0200", map[string]concord.Value{"name": "edited before its scan"})
	r.portal.Edit("c9999", map[string]concord.Value{"name": "created during the scan"})

	// The next cycle dies before its commit: its scan progress is lost
	// with the rest of it, and a new instance resumes from the last one
	// committed (60), neither from the start nor past what it merged.
	r.store.set(true)
	if _, err := e.RunCycle(ctx); err == nil {
		t.Fatal("cycle 2 succeeded; want the injected commit failure")
	}
	r.store.set(false)
	e = r.engine()
	rep, err = e.RunCycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Systems["portal"].Scan; got == nil || got.Scanned != 120 {
		t.Fatalf("after the restart the scan reports %+v; want it resumed at 60 and now at 120", got)
	}

	cycles := 0
	for rep.Systems["portal"].Backlog {
		if cycles++; cycles > 10 {
			t.Fatal("the scan did not finish in 10 cycles")
		}
		if rep, err = e.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s := rep.Systems["portal"].Scan; s == nil || !s.Done || s.Scanned != 251 || s.Finished.IsZero() {
		t.Fatalf("last scan cycle reports %+v; want done after 251 records", s)
	}
	r.audit.Require(t, audittest.Match{Kind: audit.ScanFinished, System: "portal"})

	// From now on the feed is followed from where it ended when the scan
	// began: it brings the three edits made during the scan, not the 250
	// records again.
	rep, err = e.RunCycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Systems["portal"].Read; got > 3+1 {
		t.Errorf("the first feed read after the scan read %d records; want the 3 edits made during it", got)
	}
	if rep.Systems["portal"].Scan != nil {
		t.Errorf("a cycle after the scan reports scan progress %+v", rep.Systems["portal"].Scan)
	}
	for range 3 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r.requireSame()
	if got, _ := r.wh.Record("c0005"); got.Fields["name"] != "edited after its scan" {
		t.Errorf("c0005 in the warehouse: %v; want the edit made after its scan", got.Fields)
	}
}

func TestFirstSyncByFeedNeverScans(t *testing.T) {
	r := newScanRig(t, 30)
	r.firstSync = recsync.FirstSyncFeed
	e := r.engine()
	for range 3 {
		rep, err := e.RunCycle(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Systems["portal"].Scan != nil {
			t.Fatalf("FirstSyncFeed reported a scan: %+v", rep.Systems["portal"].Scan)
		}
	}
	if n := r.portal.Calls(fake.OpScan) + r.portal.Calls(fake.OpStartScan); n != 0 {
		t.Errorf("FirstSyncFeed made %d scan calls; want none", n)
	}
	r.requireSame()
}

func TestResetCursorToTheStartScansAgain(t *testing.T) {
	ctx := context.Background()
	r := newScanRig(t, 10)
	e := r.engine()
	for range 2 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	scans := r.portal.Calls(fake.OpStartScan)
	if err := e.ResetCursor(ctx, "portal", "", "ops@example.com", "the feed lost a day of changes"); err != nil {
		t.Fatal(err)
	}
	rep, err := e.RunCycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Systems["portal"].Scan; s == nil || !s.Done || s.Scanned != 10 {
		t.Fatalf("after ResetCursor to the start: scan %+v; want a new scan of 10 records", s)
	}
	if got := r.portal.Calls(fake.OpStartScan); got != scans+1 {
		t.Errorf("StartScan calls: %d; want one more than the %d before the reset", got, scans)
	}
	if rep.Systems["warehouse"].Writes != 0 {
		t.Errorf("the rescan wrote %d patches; want none (every record known)", rep.Systems["warehouse"].Writes)
	}
}

// stuckScanner answers every page with More and the same cursor.
type stuckScanner struct{ *fake.System }

func (s stuckScanner) Scan(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	b, err := s.System.Scan(ctx, "", limit)
	b.More, b.Next = true, cur
	return b, err
}

func TestAStuckScanIsAFailureNotALoop(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	portal := fake.New("portal", fake.WithClock(clk.now))
	portal.Edit("c1", map[string]concord.Value{"name": "Ada"})
	e, err := recsync.New(recsync.Config{
		Systems: []recsync.System{{ID: "portal", Connector: stuckScanner{portal}},
			{ID: "warehouse", Connector: fake.New("warehouse", fake.WithClock(clk.now))}},
		Store: store.NewMemory(), Now: clk.now, Retry: recsync.RetryPolicy{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.RunCycle(context.Background())
	if !errors.Is(err, recsync.ErrScanStuck) {
		t.Fatalf("cycle error %v; want ErrScanStuck", err)
	}
	if rep.Systems["portal"].Backlog {
		t.Errorf("a stuck scan reports a backlog: Run would loop without progress")
	}
}

func TestDamagedScanProgressIsAReadFailure(t *testing.T) {
	ctx := context.Background()
	r := newScanRig(t, 5)
	if err := r.store.Store.Commit(ctx, &store.Commit{Values: map[string][]byte{"scan/portal": []byte(`{"v":1,"scanned":-4}`)}}); err != nil {
		t.Fatal(err)
	}
	_, err := r.engine().RunCycle(ctx)
	var ce *recsync.CycleError
	if !errors.As(err, &ce) || !errors.Is(err, recsync.ErrDamaged) || ce.Failures[0].System != "portal" {
		t.Fatalf("cycle error %v; want a portal read failure wrapping ErrDamaged", err)
	}
}

func TestRunDoesNotWaitWhileABacklogRemains(t *testing.T) {
	r := newScanRig(t, 200)
	e := r.engine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, time.Hour) }()
	deadline := time.Now().Add(time.Minute)
	for r.wh.Len() < 200 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if r.wh.Len() < 200 {
		t.Fatalf("with an hour's interval, Run synced %d of 200 records; want every one, cycle after cycle, while a backlog remains", r.wh.Len())
	}
}

func TestProgressHookReportsAScanCycleByCycle(t *testing.T) {
	r := newScanRig(t, 130)
	var seen []recsync.ScanProgress
	r.progress = func(s concord.SystemID, p recsync.ScanProgress) {
		if s == "portal" {
			seen = append(seen, p)
		}
		if s == "warehouse" {
			panic("a hook that panics is logged, not fatal")
		}
	}
	e := r.engine()
	for range 3 {
		if _, err := e.RunCycle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for _, p := range seen {
		got = append(got, p.Scanned)
		if p.Estimate != 130 {
			t.Errorf("estimate %d; want 130", p.Estimate)
		}
	}
	if fmt.Sprint(got) != "[60 120 130]" || !seen[len(seen)-1].Done {
		t.Fatalf("progress %v; want 60, 120, 130 and done", got)
	}
}
