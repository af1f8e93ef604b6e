package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/boltstore"
)

// errCrash is what every I/O returns once the simulated process has died.
var errCrash = errors.New("process died")

// crasher counts the I/O points of an engine instance (before and after
// every connector call and every store call) and kills the instance at
// point n: from then on every call fails, as if the process were gone.
// "after" points happen after the call took effect: a write applied, or a
// commit stored, whose reply the engine never sees.
type crasher struct {
	mu    gosync.Mutex // systems are called in parallel
	n, at int
	dead  bool
}

func (c *crasher) point() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return errCrash
	}
	c.at++
	if c.at == c.n {
		c.dead = true
		return errCrash
	}
	return nil
}

func (c *crasher) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

func (c *crasher) around(op func() error) error {
	if err := c.point(); err != nil {
		return err
	}
	if err := op(); err != nil {
		return err
	}
	return c.point()
}

type crashConn struct {
	c *crasher
	f *fake.System
}

func (k *crashConn) Changes(ctx context.Context, cur connector.Cursor, limit int) (b connector.Batch, err error) {
	err = k.c.around(func() error { b, err = k.f.Changes(ctx, cur, limit); return err })
	return b, err
}

func (k *crashConn) Apply(ctx context.Context, ps []connector.Patch) (res []connector.Result, err error) {
	err = k.c.around(func() error { res, err = k.f.Apply(ctx, ps); return err })
	return res, err
}

type crashStore struct {
	store.Store
	c *crasher
}

func (s *crashStore) Load(ctx context.Context, keys []string) (m map[string]store.State, err error) {
	err = s.c.around(func() error { m, err = s.Store.Load(ctx, keys); return err })
	return m, err
}

func (s *crashStore) Commit(ctx context.Context, cm *store.Commit) error {
	return s.c.around(func() error { return s.Store.Commit(ctx, cm) })
}

// ReleaseLease: a dead process releases nothing; its lease expires.
func (s *crashStore) ReleaseLease(ctx context.Context, l store.Lease) error {
	if s.c.isDead() {
		return errCrash
	}
	return s.Store.ReleaseLease(ctx, l)
}

func (s *crashStore) Cursor(ctx context.Context, sys concord.SystemID) (cur connector.Cursor, err error) {
	err = s.c.around(func() error { cur, err = s.Store.Cursor(ctx, sys); return err })
	return cur, err
}

// crashScript is a sequence of steps: person edits, then a cycle. Each field
// is edited at distinct times, so the expected final values are known.
var crashScript = []map[concord.SystemID]map[string]map[string]any{
	{"portal": {"c1": {"name": "A1", "city": "C1"}}, "crm": {"c2": {"name": "B1"}}},
	{"warehouse": {"c1": {"city": "C2"}}, "portal": {"c2": {"phone": "P1"}}},
	{"crm": {"c1": {"name": "A2"}}, "warehouse": {"c3": {"name": "D1"}}},
	{"portal": {"c3": {"name": "D2", "phone": "P9"}}},
}

var crashWant = map[string]map[string]any{
	"c1": {"name": "A2", "city": "C2"},
	"c2": {"name": "B1", "phone": "P1"},
	"c3": {"name": "D2", "phone": "P9"},
}

// crashRun plays the script with the engine killed at I/O point n (0: never)
// and restarted on the same store, then checks the outcome. It returns the
// number of I/O points the script passed through.
// durable is a store that a crashed process leaves behind and a restarted
// one opens again.
type durable interface {
	open(t *testing.T) store.Store // the store as a (re)started process sees it
	close(t *testing.T)            // the process dies: whatever it held is gone
}

type memoryDurable struct{ s *store.Memory }

func (m *memoryDurable) open(*testing.T) store.Store {
	if m.s == nil {
		m.s = store.NewMemory()
	}
	return m.s
}
func (m *memoryDurable) close(*testing.T) {}

type boltDurable struct {
	path string
	s    *boltstore.Store
}

func (b *boltDurable) open(t *testing.T) store.Store {
	s, err := boltstore.Open(b.path)
	if err != nil {
		t.Fatalf("reopening the store after the crash: %v", err)
	}
	b.s = s
	return s
}

func (b *boltDurable) close(t *testing.T) {
	if err := b.s.Close(); err != nil {
		t.Fatal(err)
	}
}

func crashRun(t *testing.T, d durable, n int) (points int, lost, unexpected, regressions int) {
	var tick atomic.Int64
	clock := func() time.Time { return time.Date(2026, 1, 1, 0, 0, int(tick.Add(1)), 0, time.UTC) }
	names := []concord.SystemID{"crm", "portal", "warehouse"}
	fakes := map[concord.SystemID]*fake.System{}
	for _, s := range names {
		// No idempotency: every re-write really happens, so a harmful
		// duplicate would show.
		fakes[s] = fake.New(string(s), fake.WithClock(clock), fake.WithoutIdempotency())
	}
	store := d.open(t) // the durable state that survives the crash
	defer func() { d.close(t) }()
	// The audit sink outlives the instances (a log shipper): it must get
	// every entry of the store's audit log, whatever the crash.
	var sinkMu gosync.Mutex
	delivered := map[uint64]bool{}
	sink := audit.SinkFunc(func(_ context.Context, evs []audit.Event) error {
		sinkMu.Lock()
		defer sinkMu.Unlock()
		for _, ev := range evs {
			delivered[ev.Seq] = true
		}
		return nil
	})
	instance := func(c *crasher) *recsync.Engine {
		cfg := recsync.Config{Store: &crashStore{Store: store, c: c}, Resolver: resolve.LastWriterWins(), Now: clock, Audit: sink,
			Retry: recsync.RetryPolicy{MaxAttempts: 1}, Logger: slog.New(slog.DiscardHandler),
			LeaseTTL: crashLease, Instance: fmt.Sprintf("run-%p", c)}
		for _, s := range names {
			cfg.Systems = append(cfg.Systems, recsync.System{ID: s, Connector: &crashConn{c: c, f: fakes[s]}})
		}
		e, err := recsync.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	c := &crasher{n: n}
	e := instance(c)
	crashed := false
	for _, step := range crashScript {
		for s, recs := range step {
			for key, f := range recs {
				fakes[s].Edit(key, f)
			}
		}
		_, _ = e.RunCycle(context.Background())
		if c.isDead() && !crashed {
			// Restart: a new instance on the same store. The dead one
			// held the lease; the new one waits for nothing because the
			// store is told the old holder is gone by expiry.
			crashed = true
			d.close(t)
			store = d.open(t)
			takeOver()
			e = instance(&crasher{})
		}
	}
	points = c.at
	if crashed {
		points = -1
	}
	for range 6 {
		rep, err := e.RunCycle(context.Background())
		if err != nil {
			t.Fatalf("crash point %d: recovery cycle: %v", n, err)
		}
		if w := rep.Systems["crm"].Writes + rep.Systems["portal"].Writes + rep.Systems["warehouse"].Writes; w == 0 {
			break
		}
	}
	// Every edit arrived everywhere; nothing else ever did.
	order := map[string]int{}
	i := 0
	for _, step := range crashScript {
		for _, recs := range step {
			for key, f := range recs {
				for field, v := range f {
					i++
					order[key+"/"+field+"="+v.(string)] = i
				}
			}
		}
	}
	for _, s := range names {
		for key, want := range crashWant {
			rec, _ := fakes[s].Record(key)
			for field, v := range want {
				if !concord.EqualValues(rec.Fields[field], v) {
					lost++
					t.Errorf("crash point %d: %s %s.%s = %v; want %v", n, s, key, field, rec.Fields[field], v)
				}
			}
		}
		// Every value the engine wrote was a person's, and a field never
		// went back to an older value after a newer one.
		latest := map[string]int{}
		for _, p := range fakes[s].Applied() {
			for field, v := range p.Set {
				sv, _ := v.(string)
				o, ok := order[p.Key+"/"+field+"="+sv]
				if !ok {
					unexpected++
					t.Errorf("crash point %d: %s got %s.%s = %v, which nobody entered", n, s, p.Key, field, v)
					continue
				}
				if o < latest[p.Key+"/"+field] {
					regressions++
					t.Errorf("crash point %d: %s %s.%s went back to %v", n, s, p.Key, field, v)
				}
				latest[p.Key+"/"+field] = o
			}
		}
	}
	if holds, _ := e.Holds(context.Background()); len(holds) != 0 {
		t.Errorf("crash point %d: holds left %+v", n, holds)
	}
	// No audit event lost: every committed entry reached the sink.
	head, err := store.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= head.Seq; seq++ {
		if !delivered[seq] {
			lost++
			t.Errorf("crash point %d: audit entry %d of %d never reached the sink", n, seq, head.Seq)
		}
	}
	if _, err := e.VerifyAudit(context.Background()); err != nil {
		t.Errorf("crash point %d: %v", n, err)
	}
	return points, lost, unexpected, regressions
}

// takeOver waits until the dead instance's lease has expired, as a
// restarted process does. crashRun runs in a synctest bubble, so the wait
// costs no real time: the bubble's clock (which the stores' lease expiry
// reads through time.Now) jumps ahead once every goroutine is blocked.
func takeOver() { time.Sleep(2 * crashLease) }

// inBubble runs one crash run in its own synctest bubble (see takeOver),
// returning what it returns.
func inBubble(t *testing.T, d durable, n int) (points, lost, unexpected, regressions int) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		points, lost, unexpected, regressions = crashRun(t, d, n)
	})
	return points, lost, unexpected, regressions
}

const crashLease = 20 * time.Millisecond

// memDir is a temporary directory in memory (/dev/shm) where there is one,
// else t.TempDir(). The crashes here are a process dying, not the machine:
// what a dead process wrote is in the page cache either way, so fsync has
// nothing to prove in this test (boltstore's TestKill kills a real process
// mid-commit), and on a disk it costs most of the run (about 0.2 s per
// crash point).
func memDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "concord-crash-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// TestCrashAtEveryPoint kills the engine before and after every read,
// write, load and commit of a scripted run, restarts it on the same store,
// and checks that no edit is lost, no value appears that nobody entered,
// and no field goes back to an older value.
func TestCrashAtEveryPoint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) durable
	}{
		{"memory", func(*testing.T) durable { return &memoryDurable{} }},
		{"bolt", func(t *testing.T) durable { return &boltDurable{path: filepath.Join(memDir(t), "concord.db")} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, _, _, _ := inBubble(t, tc.store(t), 0)
			if total < 20 {
				t.Fatalf("the script passes only %d I/O points", total)
			}
			var lost, unexpected, regressions int
			for n := 1; n <= total; n++ {
				_, l, u, r := inBubble(t, tc.store(t), n)
				lost, unexpected, regressions = lost+l, unexpected+u, regressions+r
			}
			t.Logf("crash points: %d; edits lost: %d; unexpected values: %d; duplicate effects that went backwards: %d", total, lost, unexpected, regressions)
		})
	}
}
