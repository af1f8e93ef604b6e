package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/transform"
)

// Kind names a kind of injected fault. Every kind can be switched off with
// the skip list (Options.Skip) to list a known-failing behaviour.
type Kind string

// The fault kinds, in the order of the report.
const (
	// KindLatency slows every call to a system for a few steps.
	KindLatency Kind = "latency"
	// KindTimeout makes a system's calls outlast their deadline (every call
	// runs under a per-call context deadline) for one cycle.
	KindTimeout Kind = "timeout"
	// KindRateLimit answers calls with 429 and a Retry-After, sometimes
	// longer than the policy's cap.
	KindRateLimit Kind = "ratelimit"
	// KindTransient fails reads, whole writes or one record's writes with a
	// 5xx-like transient error.
	KindTransient Kind = "transient"
	// KindPermanent fails one record's writes to one system permanently for
	// a while: the write is dead-lettered, and replayed by a person later.
	KindPermanent Kind = "permanent"
	// KindReplyLost applies a write and loses its reply.
	KindReplyLost Kind = "reply-lost"
	// KindRepeatFeed makes a change feed deliver already-delivered changes
	// again.
	KindRepeatFeed Kind = "repeat-feed"
	// KindReorderFeed makes a change feed deliver a batch newest first.
	KindReorderFeed Kind = "reorder-feed"
	// KindLateWebhook pushes (Engine.Ingest) states of a record that a
	// system already delivered: repeated, late, or several out of order.
	KindLateWebhook Kind = "late-webhook"
	// KindPanic makes user code called on the cycle's goroutine panic once:
	// an inbound or outbound transform, the resolver or the gate.
	KindPanic Kind = "panic"
	// KindPanicConn makes a connector panic once. The engine calls
	// connectors from its own goroutines: an engine that does not recover
	// panics there kills the test binary (the panic message names the seed
	// and the command that re-runs it).
	KindPanicConn Kind = "panic-conn"
	// KindCrash kills the engine at its n-th call of one store method or
	// one system's connector (before or after the call takes effect), then
	// builds a new Engine on the same store.
	KindCrash Kind = "crash"
	// KindRestore replaces the store with an older snapshot, moves it to a
	// new epoch (Store.NewEpoch) and builds a new Engine on it.
	KindRestore Kind = "restore"
	// KindStoreError fails one call of a store method during a cycle, and
	// the process lives on: before the call takes effect (the store could
	// not be reached), or, for a Commit, after it (the commit stored, its
	// reply lost: the engine believes it failed). Armed from a stream of
	// its own (world.frng), so that the seeds' other draws are those of
	// the runs before it existed.
	KindStoreError Kind = "store-error"
	// KindCancel has the host cancel a cycle's context (a shutdown, a
	// request ended) at the n-th call of one store method during the
	// cycle: just before the call (which then sees the cancelled context)
	// or just after it took effect. The process lives on. Armed from a
	// stream of its own (world.crng), as KindStoreError; store calls come
	// from the cycle's goroutine, so the point is the same in every run.
	KindCancel Kind = "cancel"
	// KindRemove takes a system (not the first) out of the engine's
	// configuration for a few steps, as a deploy with a smaller
	// configuration would, then puts it back with another deploy. The
	// system's person goes on editing meanwhile: once back, the engine
	// must read those edits and bring the system every record that
	// changed without it (the backfill of an added system). Each deploy
	// ends the process cleanly. In a quarter of the runs of three systems
	// or more, one system joins only at a later step: its records, made
	// before, must reach the others and theirs it. Armed from a stream of
	// its own (world.srng), in runs of three systems or more.
	KindRemove Kind = "remove-system"
	// KindDamage makes one record's stored state read damaged (a byte
	// flipped on load) for one to three cycles, as a bad page or a state
	// sealed under a key retired too early would, then read again. The
	// engine must fail that record alone, keep its changes in merge dead
	// letters, and merge them once the state reads. Armed from a stream
	// of its own (world.drng).
	KindDamage Kind = "damaged-state"
	// KindInstances runs two engine processes of the pipeline, with
	// different Config.Instance names, over one store, each cycle run by
	// either: the lease passes between them, and neither may rely on
	// what it remembers of its own last cycle (its echoes, the outcomes
	// of writes its store lacks, creates it never sent) once the other
	// has run. A crashed process restarts under its own name, and the
	// other's cycles fail on the lease it left until it expires or its
	// owner runs again. Drawn from a stream of its own (world.irng), in a
	// quarter of the runs. On a durable store the two share its handle (a
	// bbolt file takes one process; PostgreSQL would take a pool each).
	KindInstances Kind = "two-instances"
	// KindPause, in runs with two processes (KindInstances), pauses the
	// process running a cycle just before the n-th call of a store method
	// in it (a GC pause, a stopped VM) past its lease's TTL; the other
	// process takes the lease and runs a whole cycle; then the paused one
	// resumes. What it does after the pause must take no effect (its
	// commits are refused, its writes not sent), and what it keeps in
	// memory must not spoil the successor's states. Drawn from a stream of
	// its own (world.prng).
	KindPause Kind = "pause"
)

// Kinds lists every fault kind.
var Kinds = []Kind{KindLatency, KindTimeout, KindRateLimit, KindTransient, KindPermanent, KindReplyLost,
	KindRepeatFeed, KindReorderFeed, KindLateWebhook, KindPanic, KindPanicConn, KindCrash, KindRestore, KindStoreError, KindCancel, KindRemove, KindDamage, KindInstances, KindPause}

// featFieldTimes gives about half the systems per-field modification times
// (fake.WithFieldTimes); switched off, no system has them.
const featFieldTimes = "fieldtimes"

// featPlain configures about half the systems without transforms, as most
// users would: the engine then takes its paths for untransformed records
// (edit detection walks the reported fields in name order, plans skip the
// outbound transform), which a system with transforms never reaches. The
// other systems get transforms that return the record unchanged and panic
// when a fault arms them (KindPanic); a plain system has nothing to panic
// in. Switched off, every system has transforms.
const featPlain = "plain"

// featNoTags gives about half the systems no version tags
// (fake.WithoutTags): their records carry no Tag and they ignore
// Patch.IfMatch, so nothing stops a write made from a stale read.
const featNoTags = "notags"

// featMapping gives about half the systems with transforms a
// transform.Mapping instead of Funcs: a rule per field, each an identity
// that panics when a fault arms the system's transform. The engine knows a
// Mapping's lineage (transform.Lineage) and takes the paths it allows
// (affected asks the lineage instead of transforming the part again; plan
// keeps the copies of the units a write cannot change), which a Func never
// reaches. Switched off, every system with transforms has Funcs.
const featMapping = "mapping"

// featPartial makes half the webhooks (KindLateWebhook) carry only some of
// the record's fields, as a webhook of the fields that changed does: a
// report never deletes by omission, so the fields left out must survive.
// Switched off, every webhook carries the whole record.
const featPartial = "partial"

// featSparse makes about half the systems store a null as no field, as a
// document store or a JSON API that leaves nulls out does: their change
// feeds, reads by key and webhooks never carry a null, and their people
// set values only (emptying a field by removing it is invisible to any
// report). Switched off, every system reports its nulls.
const featSparse = "sparse"

// featAhead makes one person edit in about 40 run on a clock 80 years
// ahead (a clock that ran ahead once): the record's time in that system
// is then one no clock has reached, and every later report of it is older.
// Switched off, every clock is the simulated one.
const featAhead = "ahead"

// featCoarse gives about half the systems times to the whole second, as
// many APIs and columns keep them: two changes in one second share a time,
// and a time says nothing of their order. Switched off, every system keeps
// the simulated clock's times.
const featCoarse = "coarse"

// featBareReplies makes about half the systems answer a write with no
// version tag and no time (a PATCH answered 204 No Content): the engine
// learns the state its write left only from the next read. Switched off,
// every reply carries the record's new tag and time.
const featBareReplies = "barereplies"

// Features lists the value and store features the skip list may name
// besides the fault kinds.
var Features = []string{featLMT, featFloat32, featBigNum, featFieldTimes, featPlain, featNoTags, featMapping, featPartial, featSparse, featAhead, featCoarse, featBareReplies}

// callTimeout is the deadline of every connector call; KindTimeout sets a
// latency beyond it. Time is synctest's fake time: waiting costs nothing.
const callTimeout = 2 * time.Second

// errCrash is what every I/O of a crashed engine instance returns.
var errCrash = errors.New("sim: the engine process crashed here (injected)")

// crasher kills one engine instance at the n-th call of target ("store.X"
// or "<system>.Changes" / "<system>.Apply"), counting a point before and
// one after each call: a crash "after" a call happens once it took effect
// (a write applied, a commit stored) but before the engine saw the reply.
//
// Counting per target keeps the crash point deterministic although systems
// are called in parallel. Once dead, every store call fails, and so do the
// target system's calls; other systems' calls in flight still complete
// (the process died just after them), which is one of the orders a real
// crash can produce.
type crasher struct {
	target string
	n      int
	at     int
	dead   bool
	mu     gosync.Mutex // systems are called in parallel
}

func newCrasher(target string, n int) *crasher { return &crasher{target: target, n: n} }

// point passes one crash point of target; it returns errCrash if the
// instance is dead for target.
func (c *crasher) point(target string, store bool) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead && (store || target == c.target) {
		return errCrash
	}
	if target == c.target && !c.dead {
		c.at++
		if c.at == c.n {
			c.dead = true
			return errCrash
		}
	}
	return nil
}

func (c *crasher) isDead() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// around runs op between two crash points.
func (c *crasher) around(target string, store bool, op func() error) error {
	if err := c.point(target, store); err != nil {
		return err
	}
	if err := op(); err != nil {
		return err
	}
	return c.point(target, store)
}

// conn is the connector the engine sees for one system: the fake, under a
// per-call deadline, with the crash points and the connector panics.
type conn struct {
	w  *world
	id concord.SystemID
	f  *fake.System
	cr *crasher
}

// Changes reads the fake's feed. An armed connector panic fires inside the
// crash points, as the call's first act: a process already dead (or dying
// at this call) runs no connector code, so that which of the engine's
// concurrent calls reaches its crash point first does not decide whether
// the panic fires in this cycle or the next.
func (k *conn) Changes(ctx context.Context, cur connector.Cursor, limit int) (b connector.Batch, err error) {
	returned := false
	defer func() {
		if !returned {
			k.w.noteRead(k.id, errPanicked, nil) // the connector panicked: the read failed
		}
	}()
	err = k.cr.around(string(k.id)+".Changes", false, func() error {
		k.w.maybePanicConn(k.id, "Changes")
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		b, err = k.f.Changes(cctx, cur, limit)
		return err
	})
	returned = true
	if err == nil && k.w.sparse[k.id] {
		for i, r := range b.Records {
			b.Records[i] = withoutNulls(r)
		}
	}
	if err == nil {
		k.w.noteReads(k.id, b.Records)
	}
	k.w.noteRead(k.id, err, func(learn func(string)) {
		for _, r := range b.Records {
			learn(r.Key)
		}
	})
	if err == nil && b.More && b.Next == cur {
		// A page answered with more to come and the very cursor it was
		// asked for (a repeated feed whose page holds only changes
		// delivered before, KindRepeatFeed) is a feed that made no
		// progress: the engine keeps the page's records and fails its
		// read of the system there (sync.ErrFeedStuck), or it would read
		// that page for ever. The call succeeded, the read did not: what
		// the feed holds beyond the cursor was not read, and the edits
		// made there since the engine last read it are judged at the
		// next read (oracle.readFailed). Counted as a whole read, it
		// made the oracle take a delete made before that cycle as seen,
		// and so the person's creation of the record after it as a
		// change the engine could see (seed 95,080), where the engine's
		// next read finds the record live, as it last knew it: no
		// engine can tell that from no change at all.
		k.w.noteStuck(k.id)
	}
	return b, err
}

// noteStuck notes that the current cycle's read of s ends failed although
// the connector's call succeeded: the engine found the feed stuck (see
// conn.Changes). The records of the page are learned already (noteRead).
func (w *world) noteStuck(s concord.SystemID) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	if w.readFailed != nil {
		w.readFailed[s] = true
	}
}

// Apply writes ps to the fake and notes every field patch for the oracle:
// those the fake applied, and those it did not (it failed them, the call
// outlasted its deadline, or the connector panicked first).
func (k *conn) Apply(ctx context.Context, ps []connector.Patch) (res []connector.Result, err error) {
	before := make([]concord.Record, len(ps))
	for i, p := range ps {
		before[i], _ = k.f.Record(p.Key)
	}
	returned := false
	defer func() {
		if !returned {
			// The connector panicked before it called the system: the
			// engine (which recovers that as a failed call) sent these
			// patches and never learns that none was applied. Noted
			// without recovering the panic, which stays the engine's
			// to handle.
			k.w.noteWrites(k.id, ps, before, false, false)
		}
	}()
	err = k.cr.around(string(k.id)+".Apply", false, func() error {
		k.w.maybePanicConn(k.id, "Apply") // inside the crash points: see Changes
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		res, err = k.f.Apply(cctx, ps)
		return err
	})
	returned = true
	if k.w.bareReplies[k.id] {
		for i := range res {
			res[i].Tag, res[i].Modified = "", time.Time{}
		}
	}
	k.w.noteWrites(k.id, ps, before, true, err == nil)
	if err == nil {
		k.w.rmu.Lock()
		for _, r := range res {
			if r.Err == nil && k.w.learned != nil {
				k.w.learn(k.id, r.Key)
			}
		}
		k.w.rmu.Unlock()
	}
	return res, err
}

// errPanicked stands for the failure of a connector call that panicked.
var errPanicked = errors.New("sim: the connector panicked")

// noteRead notes the outcome of a read of s (a page of the feed, or a read
// by key) for the oracle: whether it failed, and, if not, the records it
// delivered (each passed to learn by keys).
func (w *world) noteRead(s concord.SystemID, err error, keys func(learn func(string))) {
	w.rmu.Lock()
	defer w.rmu.Unlock()
	if w.readFailed == nil {
		return // not in a cycle
	}
	w.readFailed[s] = err != nil
	if err == nil {
		keys(func(key string) { w.learn(s, key) })
	}
}

// learn notes that the current cycle learned s's record key. w.rmu is held.
func (w *world) learn(s concord.SystemID, key string) {
	if w.learned[s] == nil {
		w.learned[s] = map[string]bool{}
	}
	w.learned[s][key] = true
}

// noteWrites notes the field patches of ps sent to s (and creates without
// fields), with what s held of those fields before, for the oracle: whether
// s applied each (never if the system was not called), and whether the
// call replied.
func (w *world) noteWrites(s concord.SystemID, ps []connector.Patch, before []concord.Record, called, replied bool) {
	for i, p := range ps {
		if p.Delete || (len(p.Set) == 0 && !p.Create) {
			continue
		}
		now, applied := w.fakes[s].Record(p.Key)
		applied = applied && called
		for f, v := range p.Set {
			if !concord.EqualValues(now.Fields[f], v) {
				applied = false
			}
		}
		w.wmu.Lock()
		w.writes = append(w.writes, appliedWrite{sys: s, key: p.Key, before: before[i].Fields, set: p.Set,
			fields: slices.Sorted(maps.Keys(p.Set)), applied: applied, replied: replied, create: p.Create})
		w.wmu.Unlock()
	}
}

// Get lets Engine.Replay read a quarantined record as the system holds it,
// and a cycle read again by key a record whose write was refused.
func (k *conn) Get(ctx context.Context, keys []string) ([]concord.Record, error) {
	recs, err := k.f.Get(ctx, keys)
	if err == nil && k.w.sparse[k.id] {
		for i, r := range recs {
			recs[i] = withoutNulls(r)
		}
	}
	if err == nil {
		k.w.noteReads(k.id, recs)
	}
	// A key Get omits is one the system does not have: the engine learns
	// that too (it reads it as the system's delete).
	k.w.noteRead(k.id, err, func(learn func(string)) {
		for _, key := range keys {
			learn(key)
		}
	})
	return recs, err
}

// noteReads notes that s returned recs to the engine in the current engine
// call: what the engine read there, for the oracle (oracle.readIn).
func (w *world) noteReads(s concord.SystemID, recs []concord.Record) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	for _, r := range recs {
		w.reads = append(w.reads, sysKey{s, r.Key})
	}
}

// simStore is the Store one engine instance sees: the world's current
// store, with crash points and store errors.
type simStore struct {
	store.Store
	// damaged: the keys whose states read damaged (KindDamage); changed
	// between engine steps only.
	damaged map[string]int
	cr      *crasher
	fail    *storeFault  // armed for the current cycle (KindStoreError), or nil
	halt    *cancelFault // armed for the current cycle (KindCancel), or nil
	pause   *pauseFault  // armed for the current cycle (KindPause), or nil
	// commits counts the commits the store made (the engine may still
	// crash after one, before it hears of it): the world's count, which
	// both processes' stores share (KindInstances).
	commits *atomic.Int64
}

func (s *simStore) at(name string, op func() error) error {
	return s.cr.around("store."+name, true, func() error {
		if s.fail.before(name) {
			return errStoreDown
		}
		s.halt.point(name, false)
		s.pause.point(name)
		if err := op(); err != nil {
			return err
		}
		s.halt.point(name, true)
		if s.fail.after(name) {
			return errStoreReplyLost
		}
		return nil
	})
}

// cancelFault cancels the cycle's context at the n-th call of one store
// method (KindCancel), once: before the call, or after it took effect.
type cancelFault struct {
	mu     gosync.Mutex
	target string
	n, at  int
	after  bool
	cancel context.CancelFunc // the cycle's, set when the cycle starts
	fired  bool
}

// point passes the point before (after false) or after a call of target.
func (f *cancelFault) point(target string, after bool) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired || target != f.target || f.cancel == nil {
		return
	}
	if !after {
		f.at++
	}
	if f.at == f.n && after == f.after {
		f.fired = true
		f.cancel()
	}
}

// again returns an unfired copy of f, for another process's cycle.
func (f *storeFault) again() *storeFault {
	return &storeFault{target: f.target, n: f.n, late: f.late}
}

// pauseFault pauses the cycle's goroutine just before the n-th call of one
// store method (KindPause), once, until released.
type pauseFault struct {
	mu      gosync.Mutex
	target  string
	n, at   int
	paused  chan struct{} // closed when the call starts waiting
	release chan struct{}
	fired   bool
}

func newPauseFault(target string, n int) *pauseFault {
	return &pauseFault{target: target, n: n, paused: make(chan struct{}), release: make(chan struct{})}
}

// point passes the point before a call of target.
func (f *pauseFault) point(target string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	if f.fired || target != f.target {
		f.mu.Unlock()
		return
	}
	f.at++
	if f.at != f.n {
		f.mu.Unlock()
		return
	}
	f.fired = true
	f.mu.Unlock()
	close(f.paused)
	<-f.release
}

// storeFault fails the n-th call of one store method (KindStoreError), once.
type storeFault struct {
	mu     gosync.Mutex
	target string
	n, at  int
	late   bool // after the call took effect (a Commit whose reply is lost)
	fired  bool
}

var (
	errStoreDown      = errors.New("sim: the store could not be reached (injected)")
	errStoreReplyLost = errors.New("sim: the store's reply was lost (injected; the call took effect)")
)

// before reports whether the call of target now starting fails before it
// takes effect. Store calls that count come from the cycle's goroutine
// (Cursor does not count), so the n-th is the same in every run.
func (f *storeFault) before(target string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired || target != f.target {
		return false
	}
	f.at++
	if f.at == f.n && !f.late {
		f.fired = true
	}
	return f.fired
}

// after reports whether the call of target that just took effect loses
// its reply.
func (f *storeFault) after(target string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired || target != f.target || f.at != f.n {
		return false
	}
	f.fired = true
	return true
}

func (s *simStore) Epoch(ctx context.Context) (e uint64, err error) {
	err = s.at("Epoch", func() error { e, err = s.Store.Epoch(ctx); return err })
	return e, err
}

func (s *simStore) Actor(ctx context.Context, name string) (a concord.Actor, err error) {
	err = s.at("Actor", func() error { a, err = s.Store.Actor(ctx, name); return err })
	return a, err
}

func (s *simStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (l store.Lease, err error) {
	err = s.at("AcquireLease", func() error { l, err = s.Store.AcquireLease(ctx, name, holder, ttl); return err })
	return l, err
}

// ReleaseLease: a dead process releases nothing.
func (s *simStore) ReleaseLease(ctx context.Context, l store.Lease) error {
	if s.cr.isDead() {
		return errCrash
	}
	return s.Store.ReleaseLease(ctx, l)
}

// Cursor is called from the systems' goroutines in parallel: it is not a
// crash target (its order is not deterministic), but it fails once dead.
func (s *simStore) Cursor(ctx context.Context, sys concord.SystemID) (connector.Cursor, error) {
	if s.cr.isDead() {
		return "", errCrash
	}
	return s.Store.Cursor(ctx, sys)
}

func (s *simStore) Load(ctx context.Context, keys []string) (m map[string]store.State, err error) {
	err = s.at("Load", func() error { m, err = s.Store.Load(ctx, keys); return err })
	for k, st := range m {
		if s.damaged[k] > 0 && len(st.Data) > 0 {
			st.Data = slices.Clone(st.Data) // the store's own stays whole
			st.Data[len(st.Data)/2] ^= 0x40
			m[k] = st
		}
	}
	return m, err
}

func (s *simStore) Pending(ctx context.Context, limit int) (k []string, err error) {
	err = s.at("Pending", func() error { k, err = s.Store.Pending(ctx, limit); return err })
	return k, err
}

func (s *simStore) Held(ctx context.Context) (k []string, err error) {
	err = s.at("Held", func() error { k, err = s.Store.Held(ctx); return err })
	return k, err
}

func (s *simStore) DeadLetters(ctx context.Context) (d []store.DeadLetter, err error) {
	err = s.at("DeadLetters", func() error { d, err = s.Store.DeadLetters(ctx); return err })
	return d, err
}

func (s *simStore) DeadLettersOf(ctx context.Context, keys []string) (d []store.DeadLetter, err error) {
	err = s.at("DeadLettersOf", func() error { d, err = s.Store.DeadLettersOf(ctx, keys); return err })
	return d, err
}

func (s *simStore) DeadLettersOfClass(ctx context.Context, class string) (d []store.DeadLetter, err error) {
	err = s.at("DeadLettersOfClass", func() error { d, err = s.Store.DeadLettersOfClass(ctx, class); return err })
	return d, err
}

func (s *simStore) DeadLetter(ctx context.Context, id uint64) (d store.DeadLetter, err error) {
	err = s.at("DeadLetter", func() error { d, err = s.Store.DeadLetter(ctx, id); return err })
	return d, err
}

func (s *simStore) Commit(ctx context.Context, c *store.Commit) error {
	return s.at("Commit", func() error {
		err := s.Store.Commit(ctx, c)
		if err == nil {
			s.commits.Add(1)
		}
		return err
	})
}

// userPanic is the value of an injected panic in user code.
type userPanic struct{ where string }

func (p userPanic) String() string { return "sim: injected panic in " + p.where }

// inbound and outbound are the systems' transforms: identities that panic
// when the world arms a panic for them.
func (w *world) inbound(id concord.SystemID) transform.Transformer {
	return transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		w.maybePanic("inbound:" + string(id))
		return r, nil
	})
}

func (w *world) outbound(id concord.SystemID) transform.Transformer {
	return transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) {
		w.maybePanic("outbound:" + string(id))
		return r, nil
	})
}

// mapping is the transforms of a system with featMapping: a Mapping of a
// rule per field, each an identity (the canonical shape, as for the Funcs)
// whose converter panics when the world arms a panic for the system's
// transform in that direction.
func (w *world) mapping(id concord.SystemID) (in, out transform.Transformer) {
	conv := transform.Converter{
		In: func(v concord.Value) (concord.Value, error) {
			w.maybePanic("inbound:" + string(id))
			return v, nil
		},
		Out: func(v concord.Value) (concord.Value, error) {
			w.maybePanic("outbound:" + string(id))
			return v, nil
		},
	}
	var rules []transform.Rule
	for _, u := range units {
		for _, f := range fieldsOf(u) {
			rules = append(rules, transform.RenameWith(f, f, conv))
		}
	}
	m := transform.MustMapping(rules...)
	return m.Inbound(), m.Outbound()
}

// panickyResolver wraps the resolver chain; it panics when armed.
type panickyResolver struct {
	w *world
	r resolve.Resolver
}

func (p panickyResolver) Resolve(ctx context.Context, c resolve.Conflict) (resolve.Decision, error) {
	p.w.maybePanic("resolver")
	return p.r.Resolve(ctx, c)
}

// Check keeps the chain's gate (resolve.SystemOfRecord) working: the engine
// consults a Resolver that is also a Gate as a gate.
func (p panickyResolver) Check(ctx context.Context, c resolve.Change) (resolve.Verdict, error) {
	return p.r.(resolve.Gate).Check(ctx, c)
}

// ruleBigChange is the Rule of the big-change gate's holds.
const ruleBigChange resolve.Rule = "sim-big-change"

// bigChangeGate holds a change of amount between two numbers that differ by
// a factor of 1000 or more (a price falling from 100 to 0.1): a person must
// approve it. It panics when armed.
func (w *world) bigChangeGate() resolve.Gate {
	return resolve.GateFunc(func(_ context.Context, c resolve.Change) (resolve.Verdict, error) {
		w.maybePanic("gate")
		if c.Unit != fieldAmount || c.Deleted {
			return resolve.Verdict{}, nil
		}
		from, ok1 := asFloat(c.From[fieldAmount])
		to, ok2 := asFloat(c.To[fieldAmount])
		if !ok1 || !ok2 || from == 0 || to == 0 {
			return resolve.Verdict{}, nil
		}
		r := to / from
		if r < 0 {
			r = -r
		}
		if r >= 1000 || r <= 1.0/1000 {
			return resolve.Verdict{Outcome: resolve.HoldChange, Rule: ruleBigChange,
				Reason: fmt.Sprintf("amount %v -> %v needs approval", c.From[fieldAmount], c.To[fieldAmount])}, nil
		}
		return resolve.Verdict{}, nil
	})
}

func asFloat(v concord.Value) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}
