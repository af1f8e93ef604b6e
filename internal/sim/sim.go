package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// Options configures one simulated run.
type Options struct {
	// Seed determines everything the harness does.
	Seed uint64
	// Skip switches off fault kinds (Kind values) and features (Features)
	// by name: the list of known-failing behaviours.
	Skip map[string]bool
	// Backend, when set, puts the engine's state in a durable store
	// (Bolt, or a PostgreSQL schema in the tests) instead of store.Memory:
	// a crash closes it and the next instance opens it again, a snapshot
	// is a backup of it and a restore puts an older backup back.
	Backend Backend
	// sabotage, when set (by the oracle's own tests), runs after the quiet
	// phase and before the final checks.
	sabotage func(w *world)
}

// Failure classes, the first word of every failure line.
const (
	ClassPanic        = "panic-escaped"          // a panic in user code escaped RunCycle (issue 8 item 9)
	ClassCommit       = "commit-failing"         // commits still fail after the faults stopped
	ClassLost         = "lost-edit"              // an edit neither in the final state nor superseded
	ClassUnexpected   = "unexpected-value"       // a value no edit produced
	ClassDivergent    = "divergent"              // systems disagree after the quiet cycles
	ClassSettle       = "settle-mismatch"        // Settle applied a value the person did not choose
	ClassSteady       = "steady-state-writes"    // quiet cycles still write
	ClassDeadLetter   = "unexplained-dead"       // a dead letter no injected fault explains
	ClassHold         = "unexplained-hold"       // a hold no rule explains
	ClassLeft         = "not-settled"            // holds or dead letters left after the person settled them
	ClassEngineError  = "engine-error"           // an engine call failed in a way no fault explains
	ClassNoQuiescence = "no-quiescence"          // the quiet phase did not reach a cycle without writes
	ClassRestore      = "restore-undetected"     // a durable store did not detect a restored copy
	ClassAudit        = "audit-broken"           // the stored audit log does not verify
	classMax          = "too-many-failures"      // output truncated
	maxFailures       = 40                       // per seed, to keep reports readable
	personName        = "sim-person@example.com" // who settles and replays
)

// Result is what one run found.
type Result struct {
	Seed uint64
	// Trace is a hash of every step and of every system's records after
	// every engine step: the same seed gives the same Trace.
	Trace  uint64
	Steps  int
	Cycles int
	Edits  int
	// Faults counts the faults injected (or, for crashes and panics, that
	// fired), by kind.
	Faults map[Kind]int
	// Settles and Replays count the person's settlements and replays.
	Settles, Replays            int
	Lost, Unexpected, Divergent int
	// Excused counts, by rule ("restore", "undo-after-unknown-write",
	// "set-back-after-unknown-write", ...), the edits that an ambiguity
	// rule of the oracle let pass (see doc.go): what no engine could tell
	// apart. An upper bound: another rule may have accounted for some of
	// them too.
	Excused map[string]int
	// Failures are one line each, starting with a class (ClassLost, ...).
	Failures []string
	// Log is the run's trace, for a failing seed.
	Log []string
}

// Failed reports whether the run found anything wrong.
func (r *Result) Failed() bool { return len(r.Failures) > 0 }

// Classes returns the distinct failure classes of the run, sorted.
func (r *Result) Classes() []string {
	var out []string
	for _, f := range r.Failures {
		c, _, _ := strings.Cut(f, ":")
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// clock is the simulated wall clock of the systems and the engine's
// Config.Now. The harness moves it; bulk edits share one reading.
type clock struct {
	mu gosync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type sysKey struct {
	s   concord.SystemID
	key string
}

// world is one run: the systems, the engine instance, the store, the
// fault schedule's state, and the oracle.
type world struct {
	opt   Options
	rng   *rand.Rand
	gen   *valueGen
	res   *Result
	step  int
	clock *clock
	names []concord.SystemID
	fakes map[concord.SystemID]*fake.System
	keys  []string
	audit *audittest.Recorder
	o     *oracle
	trace []byte // the trace being hashed

	holdMode bool // conflicts held for a person instead of last-writer-wins
	gate     bool // the big-change gate is configured

	base     store.Store // the store's current contents
	mem      *store.Memory
	durable  Backend // Options.Backend
	snaps    []any   // older copies (*store.Memory, or the backend's), for KindRestore
	engine   *recsync.Engine
	instance int
	cr       *crasher // armed crash of the current instance, if any
	curStore *simStore
	// pendingPhantoms are creates a step noted and never sent, whose
	// commit reply was lost: the oracle's if a crash comes before the
	// next clean cycle (see phantomCreates).
	pendingPhantoms []unconfirmedCreate
	// pendingUnknown lists the writes whose outcome the process learned
	// and a store failure kept from its store, until a cycle commits
	// them: a crash before then makes them unknown (unconfirmed).
	pendingUnknown []pendingWrite
	// storeFault is armed for the next cycle (KindStoreError), drawn from
	// frng, a stream of its own.
	storeFault *storeFault
	frng       *rand.Rand
	// cancelFault is armed for the next cycle (KindCancel), drawn from
	// crng, a stream of its own.
	cancelFault *cancelFault
	crng        *rand.Rand
	// removed is the system out of the configuration (KindRemove), ""
	// if none; it comes back at step readdAt. Drawn from srng.
	removed concord.SystemID
	readdAt int
	srng    *rand.Rand
	// damaged counts, per key, the cycles its state still reads
	// damaged (KindDamage); damagedEver explains its merge dead letters.
	// Drawn from drng.
	damaged     map[string]int
	damagedEver map[string]bool
	drng        *rand.Rand
	curConns    []*conn
	// other is the second engine process (KindInstances), parked while
	// the current one (the fields above: engine, instance, cr, curStore,
	// curConns) runs; nil with one process. procName is the current
	// one's Config.Instance. Which runs a cycle is drawn from irng.
	other    *proc
	procName string
	irng     *rand.Rand
	// cfgRemoved is the system the current process was configured
	// without ("" for none): removed, unless a rolling deploy has not
	// reached the process yet. deployGen counts the deploys; procGen is
	// the one the current process runs, and stale the cycles it still
	// runs with an older one before it is deployed again (KindInstances:
	// a rolling deploy reaches the two processes at different times).
	cfgRemoved concord.SystemID
	deployGen  int
	procGen    int
	stale      int
	// pauseFault is armed for the next cycle (KindPause), drawn from
	// prng, a stream of its own.
	pauseFault *pauseFault
	prng       *rand.Rand
	// wrng draws which fields a webhook leaves out (featPartial), a
	// stream of its own.
	wrng *rand.Rand
	// successor is the store of the process that ran a whole cycle while
	// the step's own process was paused (KindPause), or nil: the step's
	// outcome is that cycle's.
	successor *simStore
	commits   atomic.Int64 // see simStore.commits

	pmu      gosync.Mutex    // guards armed, read from the engine's goroutines
	armed    map[string]bool // where a panic is armed
	fired    []string        // panics that fired, read after the call
	latency  map[concord.SystemID]int
	timeouts map[concord.SystemID]bool
	failKeys map[sysKey]int // record faults and how many cycles they last
	perm     map[sysKey]bool
	everPerm map[sysKey]bool           // explains outbound dead letters
	panicIn  map[concord.SystemID]bool // inbound panics explain inbound dead letters
	// mergePanicked: a resolver or gate panicked, which explains the dead
	// letters of failed merges (recsync.ClassMerge).
	mergePanicked bool
	deadSeen      map[string]bool
	// fieldTimes: systems that report per-field modification times.
	fieldTimes  map[concord.SystemID]bool
	plain       map[concord.SystemID]bool // systems without transforms (featPlain)
	tagless     []int                     // the systems without version tags (featNoTags), by index
	mapped      map[concord.SystemID]bool // systems whose transforms are a Mapping (featMapping)
	sparse      map[concord.SystemID]bool // systems that store a null as no field (featSparse)
	coarse      map[concord.SystemID]bool // systems whose times are whole seconds (featCoarse)
	bareReplies map[concord.SystemID]bool // systems whose write replies carry no tag nor time (featBareReplies)
	// ahead is the system whose clock runs 80 years ahead for the person
	// edit being made (featAhead), "" for none; drawn from arng.
	ahead concord.SystemID
	arng  *rand.Rand
	// writes are the patches sent to systems during the current engine
	// call, whether each was applied, and whether its reply reached the
	// engine.
	wmu    gosync.Mutex
	writes []appliedWrite
	// reads are the records systems returned to the engine during the
	// current engine call (guarded by wmu too).
	reads []sysKey
	// readFailed: systems whose latest read in the current cycle (a page
	// of the feed, or a read by key) failed; learned: the records the
	// current cycle received from each system, or wrote there
	// successfully. Both are nil outside cycles (see readFailed of the
	// oracle).
	rmu        gosync.Mutex
	readFailed map[concord.SystemID]bool
	learned    map[concord.SystemID]map[string]bool
}

// appliedWrite is a patch sent to a system, with what the system held of
// the patched fields before, whether it applied it, whether the call
// replied, and whether it was a create (connector.Patch.Create).
type appliedWrite struct {
	sys     concord.SystemID
	key     string
	before  map[string]concord.Value
	set     map[string]concord.Value
	fields  []string
	applied bool
	replied bool
	create  bool
}

// Run runs one seed and returns what it found. It must run inside a
// testing/synctest bubble: the engine's retry waits, the systems' latency
// and the per-call deadlines then cost no real time and do not depend on
// the machine's speed.
func Run(opt Options) *Result {
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
	w := &world{opt: opt, rng: rng, res: &Result{Seed: opt.Seed, Faults: map[Kind]int{}, Excused: map[string]int{}},
		clock: &clock{t: time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)}, fakes: map[concord.SystemID]*fake.System{},
		audit: audittest.New(), armed: map[string]bool{}, latency: map[concord.SystemID]int{},
		timeouts: map[concord.SystemID]bool{}, failKeys: map[sysKey]int{}, perm: map[sysKey]bool{},
		everPerm: map[sysKey]bool{}, panicIn: map[concord.SystemID]bool{}, deadSeen: map[string]bool{}}
	if opt.Skip == nil {
		w.opt.Skip = map[string]bool{}
	}
	w.gen = &valueGen{rng: rng, skip: w.opt.Skip}
	n := 2 + rng.IntN(4)
	// Drawn from a second generator, so that adding a feature does not
	// change what the seeds of the main one do.
	aux := rand.New(rand.NewPCG(opt.Seed, 7))
	w.fieldTimes = map[concord.SystemID]bool{}
	for i := range n {
		id := concord.SystemID(fmt.Sprintf("s%d", i))
		w.names = append(w.names, id)
		opts := []fake.Option{fake.WithClock(w.systemClock(id))}
		if aux.IntN(2) == 0 && !w.opt.Skip[featFieldTimes] {
			w.fieldTimes[id] = true
			opts = append(opts, fake.WithFieldTimes())
		}
		w.fakes[id] = fake.New(string(id), opts...)
	}
	w.plain = map[concord.SystemID]bool{}
	for _, id := range w.names { // after the field times: their draws stay as they were
		if aux.IntN(2) == 0 && !w.opt.Skip[featPlain] {
			w.plain[id] = true
		}
	}
	for i, id := range w.names { // after the plain systems, for the same reason
		if aux.IntN(2) == 0 && !w.opt.Skip[featNoTags] {
			opts := []fake.Option{fake.WithClock(w.systemClock(id)), fake.WithoutTags()}
			if w.fieldTimes[id] {
				opts = append(opts, fake.WithFieldTimes())
			}
			w.fakes[id] = fake.New(string(id), opts...)
			w.tagless = append(w.tagless, i)
		}
	}
	w.mapped = map[concord.SystemID]bool{}
	for _, id := range w.names { // after the tags, for the same reason
		if aux.IntN(2) == 0 && !w.opt.Skip[featMapping] && !w.plain[id] {
			w.mapped[id] = true
		}
	}
	w.sparse = map[concord.SystemID]bool{}
	for _, id := range w.names { // after the mappings, for the same reason
		if aux.IntN(2) == 0 && !w.opt.Skip[featSparse] {
			w.sparse[id] = true
		}
	}
	w.coarse = map[concord.SystemID]bool{}
	for _, id := range w.names { // after the sparse systems, for the same reason
		if aux.IntN(2) == 0 && !w.opt.Skip[featCoarse] {
			w.coarse[id] = true
		}
	}
	w.bareReplies = map[concord.SystemID]bool{}
	for _, id := range w.names { // after the coarse systems, for the same reason
		if aux.IntN(2) == 0 && !w.opt.Skip[featBareReplies] {
			w.bareReplies[id] = true
		}
	}
	for i := range 2 + rng.IntN(4) {
		w.keys = append(w.keys, fmt.Sprintf("k%d", i))
	}
	w.holdMode = rng.IntN(10) < 3
	w.gate = rng.IntN(2) == 0
	if opt.Backend != nil {
		w.durable = opt.Backend
		w.openDurable()
		defer w.closeDurable()
	} else {
		w.mem = store.NewMemory()
		w.base = w.mem
	}
	w.o = newOracle(w)
	w.frng = rand.New(rand.NewPCG(opt.Seed, 11))
	w.crng = rand.New(rand.NewPCG(opt.Seed, 13))
	w.srng = rand.New(rand.NewPCG(opt.Seed, 17))
	w.drng = rand.New(rand.NewPCG(opt.Seed, 19))
	w.damaged, w.damagedEver = map[string]int{}, map[string]bool{}
	w.logf("seed %d: %d systems, %d keys, hold mode %v, gate %v, field times in %v", opt.Seed, n, len(w.keys), w.holdMode, w.gate, slices.Sorted(maps.Keys(w.fieldTimes)))
	if len(w.sparse) > 0 {
		w.logf("  nulls left out of the records of %v", slices.Sorted(maps.Keys(w.sparse)))
	}
	if len(w.coarse) > 0 {
		w.logf("  times to the second in %v", slices.Sorted(maps.Keys(w.coarse)))
	}
	if len(w.bareReplies) > 0 {
		w.logf("  write replies without tag or time from %v", slices.Sorted(maps.Keys(w.bareReplies)))
	}
	if w.on(KindRemove) && n >= 3 && w.srng.IntN(4) == 0 {
		// A system that joins the pipeline later, holding records of
		// its own by then (its person edits from the first step).
		w.removed = w.names[1+w.srng.IntN(n-1)]
		w.readdAt = 2 + w.srng.IntN(20)
		w.res.Faults[KindRemove]++
		w.logf("  %s joins the configuration at step %d", w.removed, w.readdAt)
	}
	w.procName = "sim"
	w.restart("start")
	w.irng = rand.New(rand.NewPCG(opt.Seed, 23))
	w.prng = rand.New(rand.NewPCG(opt.Seed, 29))
	w.wrng = rand.New(rand.NewPCG(opt.Seed, 31))
	w.arng = rand.New(rand.NewPCG(opt.Seed, 37))
	if w.on(KindInstances) && w.irng.IntN(4) == 0 {
		w.res.Faults[KindInstances]++
		w.switchProc()
		w.procName = "sim-2"
		w.restart("start, a second process")
		w.switchProc()
	}

	steps := 30 + rng.IntN(40)
	for w.step = 1; w.step <= steps; w.step++ {
		w.doStep()
	}
	w.quiet()
	w.res.Steps = steps
	h := fnv.New64a()
	h.Write(w.trace)
	w.res.Trace = h.Sum64()
	return w.res
}

func (w *world) on(k Kind) bool { return !w.opt.Skip[string(k)] }

func (w *world) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	w.res.Log = append(w.res.Log, line)
	w.trace = append(w.trace, line...)
	w.trace = append(w.trace, '\n')
}

// untraced adds a line to the log that is not part of the trace: a detail
// that may differ between two runs of one seed.
func (w *world) untraced(format string, args ...any) {
	w.res.Log = append(w.res.Log, fmt.Sprintf(format, args...))
}

func (w *world) failf(class, format string, args ...any) {
	line := class + ": " + fmt.Sprintf(format, args...)
	w.logf("  FAIL %s", line)
	switch {
	case len(w.res.Failures) < maxFailures:
		w.res.Failures = append(w.res.Failures, fmt.Sprintf("%s: step %d: %s", class, w.step, fmt.Sprintf(format, args...)))
	case len(w.res.Failures) == maxFailures:
		w.res.Failures = append(w.res.Failures, classMax+": further failures not listed")
	}
}

// restart drops the engine instance and builds a new one on the current
// store, as a restarted process would.
func (w *world) restart(why string) {
	if w.durable != nil && why != "start" && why != "restore" {
		w.closeDurable() // the process ended: the next one opens the store again
		w.openDurable()
	}
	w.instance++
	w.cr = nil
	w.cfgRemoved, w.procGen, w.stale = w.removed, w.deployGen, 0
	w.logf("  engine instance %d (%s)", w.instance, why)
	batches := w.rng
	if w.procName != "sim" {
		batches = w.irng // the draws of the seed's other runs stay as they were
	}
	w.curStore = &simStore{Store: w.base, damaged: w.damaged, commits: &w.commits}
	w.curConns = nil
	resolver := resolve.Chain(resolve.SystemOfRecord(map[string]concord.SystemID{fieldOwned: w.names[0]}), resolve.LastWriterWins())
	if w.holdMode {
		resolver = resolve.Chain(resolve.SystemOfRecord(map[string]concord.SystemID{fieldOwned: w.names[0]}), resolve.Hold("sim: a person decides"))
	}
	cfg := recsync.Config{
		Groups:   map[string][]string{groupAddr: fieldsOf(groupAddr)},
		Resolver: panickyResolver{w: w, r: resolver},
		Audit:    w.audit,
		Store:    w.curStore,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      w.clock.Now,
		Retry: recsync.RetryPolicy{MaxAttempts: 3, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
			MaxElapsed: 30 * time.Second, MaxRetryAfter: 10 * time.Second, MaxRecordAttempts: 1000},
		Instance: w.procName, // a restarted process keeps its name and renews its own lease
		LeaseTTL: leaseTTL,
	}
	if w.gate {
		cfg.Gates = []resolve.Gate{w.bigChangeGate()}
	}
	for _, s := range w.names {
		batch := 2 + batches.IntN(4) // drawn for every system, configured or not
		if s == w.cfgRemoved {
			continue
		}
		c := &conn{w: w, id: s, f: w.fakes[s]}
		w.curConns = append(w.curConns, c)
		sys := recsync.System{ID: s, Connector: c, BatchSize: batch}
		switch {
		case w.mapped[s]:
			sys.Inbound, sys.Outbound = w.mapping(s)
		case !w.plain[s]:
			sys.Inbound, sys.Outbound = w.inbound(s), w.outbound(s)
		}
		cfg.Systems = append(cfg.Systems, sys)
	}
	e, err := recsync.New(cfg)
	if err != nil {
		panic("sim: invalid engine config: " + err.Error())
	}
	w.engine = e
}

// arm installs a crash on the current instance: its wrappers read w.cr.
func (w *world) armCrash(target string, n int) {
	w.cr = newCrasher(target, n)
	w.curStore.cr = w.cr
	for _, c := range w.curConns {
		c.cr = w.cr
	}
}

// ---- steps ----

func (w *world) doStep() {
	if w.removed != "" && w.step >= w.readdAt {
		w.addBack()
	}
	r := w.rng.IntN(100)
	if r < 70 || w.rng.IntN(3) == 0 {
		// Bulk edits share one timestamp; otherwise time moves on.
		w.clock.advance(time.Duration(w.rng.IntN(3000)) * time.Millisecond)
	}
	switch {
	case r < 40:
		w.personEdits()
	case r < 45:
		w.personDeletes()
	case r < 55:
		w.injectFaults()
	case r < 58:
		w.snapshot()
	case r < 62:
		w.lateWebhook()
	case r < 67:
		w.settleHolds(true)
	case r < 69:
		w.replayDeadLetters()
	default:
		w.cycle()
	}
}

func (w *world) personEdits() {
	n := 1 + w.rng.IntN(3)
	w.logf("step %d: %d person edit(s) at %s", w.step, n, w.clock.Now().Format(time.StampMilli))
	for range n {
		s := w.names[w.rng.IntN(len(w.names))]
		key := w.keys[w.rng.IntN(len(w.keys))]
		fields := map[string]concord.Value{}
		for range 1 + w.rng.IntN(2) {
			u := units[w.rng.IntN(len(units))]
			id := w.o.nextID() + len(fields) // distinct per edit of this call
			for _, f := range fieldsOf(u) {
				if u != groupAddr || w.rng.IntN(3) > 0 || f == fieldZip {
					fields[f] = w.gen.value(f, id)
				}
			}
		}
		if w.sparse[s] {
			// Its person empties a field by removing it, which no
			// report can tell (a report never deletes by omission):
			// such a system's connector must report the null itself.
			// Here the person sets values only.
			maps.DeleteFunc(fields, func(_ string, v concord.Value) bool { return v == nil })
			if len(fields) == 0 {
				continue
			}
		}
		if !w.opt.Skip[featAhead] && w.arng.IntN(40) == 0 {
			w.ahead = s
			w.logf("  %s's clock runs 80 years ahead for this edit", s)
		}
		w.o.personEdit(s, w.fakes[s], key, fields)
		w.ahead = ""
	}
}

// systemClock is system id's clock: the simulated clock, 80 years ahead
// while w.ahead names id (featAhead).
func (w *world) systemClock(id concord.SystemID) func() time.Time {
	return func() time.Time {
		t := w.clock.Now()
		if w.ahead == id {
			t = t.AddDate(80, 0, 0)
		}
		if w.coarse[id] {
			t = t.Truncate(time.Second)
		}
		return t
	}
}

func (w *world) personDeletes() {
	s := w.names[w.rng.IntN(len(w.names))]
	key := w.keys[w.rng.IntN(len(w.keys))]
	w.logf("step %d: person deletes %s in %s", w.step, key, s)
	w.o.personDelete(s, w.fakes[s], key)
}

func (w *world) snapshot() {
	if !w.on(KindRestore) {
		return
	}
	w.logf("step %d: snapshot of the store", w.step)
	if w.durable != nil {
		snap, reopened, err := w.durable.Snapshot()
		if err != nil {
			panic(fmt.Sprintf("sim: snapshot of the %s store: %v", w.durable.Name(), err))
		}
		w.snaps = append(w.snaps, snap)
		if reopened != nil {
			w.useStore(reopened)
		}
	} else {
		w.snaps = append(w.snaps, w.mem.Snapshot())
	}
	w.o.snapshot()
}

// openDurable opens the durable store, as a (re)started process does.
func (w *world) openDurable() {
	st, err := w.durable.Open(w.clock.Now)
	if err != nil {
		panic(fmt.Sprintf("sim: opening the %s store: %v", w.durable.Name(), err))
	}
	w.useStore(st)
}

// useStore puts st in service, also under the running instance (a snapshot
// may have closed the one it used).
func (w *world) useStore(st store.Store) {
	w.base = st
	if w.curStore != nil {
		w.curStore.Store = st
	}
	if w.other != nil {
		w.other.curStore.Store = st // one store, whichever process opened it
	}
}

// closeDurable closes it, as a process ending does (a kill -9 is the kill
// tests' business: here the store is closed cleanly).
func (w *world) closeDurable() {
	if err := w.durable.Close(); err != nil {
		panic(fmt.Sprintf("sim: closing the %s store: %v", w.durable.Name(), err))
	}
}

// restoreStore puts snapshot i back in service, moved to a new epoch.
func (w *world) restoreStore(i int) {
	if w.durable == nil {
		w.mem = w.snaps[i].(*store.Memory).Snapshot()
		w.base = w.mem
		if _, err := w.mem.NewEpoch(context.Background()); err != nil {
			panic(err)
		}
		return
	}
	st, err := w.durable.Restore(w.snaps[i])
	switch {
	case errors.Is(err, ErrUndetected):
		w.failf(ClassRestore, "the %s store: %v", w.durable.Name(), err)
	case err != nil:
		panic(fmt.Sprintf("sim: restoring the %s store: %v", w.durable.Name(), err))
	}
	w.useStore(st)
}

// injectFaults arms one or two faults from the seeded schedule.
func (w *world) injectFaults() {
	if w.on(KindStoreError) && w.frng.IntN(3) == 0 {
		w.armStoreError()
	}
	if w.on(KindCancel) && w.crng.IntN(3) == 0 {
		w.armCancel()
	}
	if w.on(KindRemove) && w.removed == "" && len(w.names) >= 3 && w.srng.IntN(4) == 0 {
		w.removeSystem()
	}
	if w.on(KindPause) && w.other != nil && w.prng.IntN(4) == 0 {
		targets := []string{"Pending", "Load", "Commit", "DeadLettersOf", "DeadLettersOfClass", "Commit"}
		w.pauseFault = newPauseFault(targets[w.prng.IntN(len(targets))], 1+w.prng.IntN(2))
		w.logf("step %d: fault pause armed: the next cycle's process pauses past its lease before call %d of store.%s",
			w.step, w.pauseFault.n, w.pauseFault.target)
	}
	if w.on(KindDamage) && w.drng.IntN(4) == 0 {
		key := w.keys[w.drng.IntN(len(w.keys))]
		w.damaged[key] = 1 + w.drng.IntN(3)
		w.damagedEver[key] = true
		w.res.Faults[KindDamage]++
		w.logf("step %d: fault the state of %s reads damaged for %d cycle(s)", w.step, key, w.damaged[key])
	}
	var kinds []Kind
	for _, k := range Kinds {
		if w.on(k) && !slices.Contains(ownStreams, k) { // drawn above
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return
	}
	for range 1 + w.rng.IntN(2) {
		k := kinds[w.rng.IntN(len(kinds))]
		s := w.names[w.rng.IntN(len(w.names))]
		f := w.fakes[s]
		key := w.keys[w.rng.IntN(len(w.keys))]
		switch k {
		case KindLatency:
			d := time.Duration(1+w.rng.IntN(500)) * time.Millisecond
			f.SetLatency(d)
			w.latency[s] = 1 + w.rng.IntN(4)
			w.logf("step %d: fault latency %s on %s", w.step, d, s)
		case KindTimeout:
			f.SetLatency(callTimeout + time.Second)
			w.timeouts[s] = true
			w.latency[s] = 1
			w.logf("step %d: fault timeout on %s for a cycle", w.step, s)
		case KindRateLimit:
			ra := time.Duration(w.rng.IntN(20)) * time.Second // beyond MaxRetryAfter sometimes
			f.RateLimitNext(1+w.rng.IntN(3), ra)
			w.logf("step %d: fault 429 x? Retry-After %s on %s", w.step, ra, s)
		case KindTransient:
			switch w.rng.IntN(3) {
			case 0:
				n := 1 + w.rng.IntN(3)
				for _, op := range []fake.Op{fake.OpChanges, fake.OpScan, fake.OpStartScan} {
					f.FailNext(op, n, nil) // a first sync reads by scan
				}
				w.logf("step %d: fault transient reads on %s", w.step, s)
			case 1:
				f.FailNext(fake.OpApply, 1+w.rng.IntN(3), nil)
				w.logf("step %d: fault transient writes on %s", w.step, s)
			default:
				f.FailKey(key, connector.Transient(errors.New("sim: 503 for this record")))
				w.failKeys[sysKey{s, key}] = 1 + w.rng.IntN(2)
				w.logf("step %d: fault transient writes of %s on %s", w.step, key, s)
			}
		case KindPermanent:
			f.FailKey(key, connector.Permanent(errors.New("sim: 422 for this record")))
			w.failKeys[sysKey{s, key}] = 1 + w.rng.IntN(3)
			w.perm[sysKey{s, key}] = true
			w.everPerm[sysKey{s, key}] = true
			w.logf("step %d: fault permanent writes of %s on %s", w.step, key, s)
		case KindReplyLost:
			f.LoseRepliesNext(1)
			w.logf("step %d: fault lost reply on %s", w.step, s)
		case KindRepeatFeed:
			f.RepeatNext(1+w.rng.IntN(2), 1+w.rng.IntN(10))
			w.logf("step %d: fault repeated feed on %s", w.step, s)
		case KindReorderFeed:
			f.ReorderNext(1 + w.rng.IntN(2))
			w.logf("step %d: fault reordered feed on %s", w.step, s)
		case KindLateWebhook:
			w.lateWebhook()
			continue // counted there
		case KindPanic:
			where := []string{"inbound:" + string(s), "outbound:" + string(s), "resolver", "gate"}[w.rng.IntN(4)]
			if w.plain[s] && (strings.HasPrefix(where, "inbound:") || strings.HasPrefix(where, "outbound:")) {
				w.logf("step %d: fault panic in %s not armed: %s has no transforms", w.step, where, s)
				continue
			}
			w.arm(where)
			w.logf("step %d: fault panic armed in %s", w.step, where)
			continue // counted when it fires
		case KindPanicConn:
			where := "conn:" + string(s) + "." + []string{"Changes", "Apply"}[w.rng.IntN(2)]
			w.arm(where)
			w.logf("step %d: fault panic armed in %s", w.step, where)
			continue
		case KindCrash:
			targets := []string{"store.Epoch", "store.AcquireLease", "store.Pending", "store.Load", "store.Commit", "store.DeadLetters",
				"store.DeadLettersOf", "store.DeadLettersOfClass"}
			for _, n := range w.names {
				targets = append(targets, string(n)+".Changes", string(n)+".Apply")
			}
			t, n := targets[w.rng.IntN(len(targets))], 1+w.rng.IntN(4)
			w.armCrash(t, n)
			w.logf("step %d: fault crash armed at point %d of %s", w.step, n, t)
			continue // counted when it fires
		case KindRestore:
			if len(w.snaps) == 0 {
				continue
			}
			i := w.rng.IntN(len(w.snaps))
			w.o.restored(i)
			w.restoreStore(i)
			w.logf("step %d: fault store restored from an older snapshot (new epoch)", w.step)
			w.restart("restore")
			if w.other != nil {
				w.switchProc()
				w.restart("restore")
				w.switchProc()
			}
		}
		w.res.Faults[k]++
	}
}

// ownStreams are the fault kinds drawn from generators of their own
// (frng, crng, srng, drng), not from injectFaults' list: added after the
// others, they leave every seed's other draws as they were.
var ownStreams = []Kind{KindStoreError, KindCancel, KindRemove, KindDamage, KindInstances, KindPause}

// armStoreError arms a store error for the next cycle (KindStoreError).
func (w *world) armStoreError() {
	// Commit is listed twice: drawn twice as often, for a cycle commits
	// twice (before and after its writes).
	targets := []string{"AcquireLease", "Pending", "Load", "Commit", "DeadLettersOf", "DeadLettersOfClass", "Commit"}
	f := &storeFault{target: targets[w.frng.IntN(len(targets))], n: 1 + w.frng.IntN(2)}
	f.late = f.target == "Commit" && w.frng.IntN(2) == 0
	w.storeFault = f
	how := "fails"
	if f.late {
		how = "is stored and its reply lost"
	}
	w.logf("step %d: fault store error armed: call %d of store.%s in the next cycle %s", w.step, f.n, f.target, how)
}

// removeSystem deploys the engine without one system (KindRemove) until
// step readdAt.
func (w *world) removeSystem() {
	w.removed = w.names[1+w.srng.IntN(len(w.names)-1)]
	w.readdAt = w.step + 2 + w.srng.IntN(10)
	w.res.Faults[KindRemove]++
	w.logf("step %d: fault %s removed from the configuration until step %d", w.step, w.removed, w.readdAt)
	w.redeploy("without " + string(w.removed))
}

// addBack deploys the engine with every system again.
func (w *world) addBack() {
	w.logf("step %d: %s added back to the configuration", w.step, w.removed)
	w.removed = ""
	w.redeploy("with every system")
}

// redeploy ends the engine process cleanly between steps and starts a new
// one with the current configuration (both, with two processes).
//
// With two processes the deploy rolls: the other process runs zero to two
// more of its cycles with the configuration it has, and is deployed before
// the next (catchUp).
func (w *world) redeploy(why string) {
	w.deployGen++
	w.processEnds()
	w.restart(why)
	if w.other != nil {
		w.other.stale = w.irng.IntN(3)
	}
}

// catchUp deploys the current process again if a deploy has not reached it
// and it has run its last cycle with the older configuration.
func (w *world) catchUp(now bool) {
	if w.procGen == w.deployGen {
		return
	}
	if w.stale > 0 && !now {
		w.stale--
		w.logf("  %s still runs the configuration of before the deploy", w.procName)
		return
	}
	w.processEnds()
	w.restart("the deploy reaches " + w.procName)
}

// leaseTTL is the engines' Config.LeaseTTL (the default).
const leaseTTL = time.Minute

// waitLease lets a lease's TTL pass, by the clock the store decides leases
// by: the bubble's for the memory store, the world's for the durable ones.
func (w *world) waitLease() {
	time.Sleep(leaseTTL + time.Second)
	if w.durable != nil {
		w.clock.advance(leaseTTL + time.Second)
	}
}

// proc is a parked engine process (KindInstances): what the world holds of
// the current one, in its fields of the same names.
type proc struct {
	engine   *recsync.Engine
	name     string
	removed  concord.SystemID // its cfgRemoved
	gen      int              // its procGen
	stale    int
	cr       *crasher
	curStore *simStore
	curConns []*conn
}

// switchProc parks the current engine process and makes the other one
// current (with one process, it parks the only one: the caller starts a
// second). What the parked process alone knows (creates it never sent,
// outcomes its store lacks) is handed to the oracle as a process's end
// hands it: the other process does not know it, and the parked one
// applies it later only to states nothing changed since.
func (w *world) switchProc() {
	w.processEnds()
	cur := &proc{engine: w.engine, name: w.procName, cr: w.cr, curStore: w.curStore, curConns: w.curConns,
		removed: w.cfgRemoved, gen: w.procGen, stale: w.stale}
	if o := w.other; o != nil {
		w.engine, w.procName, w.cr, w.curStore, w.curConns = o.engine, o.name, o.cr, o.curStore, o.curConns
		w.cfgRemoved, w.procGen, w.stale = o.removed, o.gen, o.stale
	}
	w.other = cur
}

// pausedCycle runs a cycle of the current process that pauses at p: while
// it waits, its lease lapses and the other process runs a whole cycle; then
// it resumes and ends. It returns the paused cycle's error. For the oracle
// the step is one cycle: what the paused process did before the pause
// (reads, and a write-ahead commit and its writes if it paused at the
// final commit) and the successor's cycle, which read every system after
// it; what the paused process does after it takes no effect.
//
// A store error armed for the step is the successor's. The successor stays
// the current process; what the paused one wrote before the pause it
// alone knows the outcome of, so it goes to the oracle as unknown.
func (w *world) pausedCycle(ctx context.Context, p *pauseFault, f *storeFault) error {
	type ended struct {
		err  error
		perr any
	}
	done := make(chan ended, 1)
	go func() {
		var e ended
		defer func() {
			e.perr = recover()
			done <- e
		}()
		_, e.err = w.engine.RunCycle(ctx)
	}()
	var e ended
	select {
	case e = <-done: // ended before the point
	case <-p.paused:
		w.res.Faults[KindPause]++
		w.waitLease() // its lease lapses
		paused := w.procName
		w.switchProc()
		w.logf("  %s paused before call %d of store.%s; %s runs a cycle meanwhile", paused, p.n, p.target, w.procName)
		w.wmu.Lock()
		before := w.writes
		w.writes = nil
		w.wmu.Unlock()
		for _, aw := range before {
			w.o.noteWrite(aw, true)
		}
		if f != nil {
			w.curStore.fail = f.again()
		}
		w.successor = w.curStore
		_, err := w.engine.RunCycle(ctx)
		close(p.release)
		e = <-done
		w.untraced("  %s resumed; its cycle ended with: %v", paused, e.err)
		if e.perr != nil {
			panic(e.perr) // for engineStep, as if on this goroutine
		}
		return err
	}
	if e.perr != nil {
		panic(e.perr)
	}
	return e.err
}

// pickProc lets a cycle run on either process, with two (KindInstances).
func (w *world) pickProc() {
	if w.other == nil || w.irng.IntN(2) == 0 {
		return
	}
	w.switchProc()
	w.logf("  the cycle runs in process %s", w.procName)
}

// processEnds hands the oracle what the ending engine process alone knew:
// the creates it noted and never sent, and the outcomes of writes its
// store does not hold (see engineStep).
func (w *world) processEnds() {
	w.o.creates = append(w.o.creates, w.pendingPhantoms...)
	w.pendingPhantoms = nil
	for _, pw := range w.pendingUnknown {
		w.o.writeUnknown(pw.aw, pw.step)
	}
	w.pendingUnknown = nil
}

// armCancel arms a cancellation of the next cycle's context (KindCancel).
func (w *world) armCancel() {
	targets := []string{"AcquireLease", "Pending", "Load", "Commit", "DeadLettersOf", "DeadLettersOfClass", "Commit"}
	f := &cancelFault{target: targets[w.crng.IntN(len(targets))], n: 1 + w.crng.IntN(2), after: w.crng.IntN(2) == 0}
	w.cancelFault = f
	when := "before"
	if f.after {
		when = "after"
	}
	w.logf("step %d: fault cancel armed: the next cycle's context is cancelled %s call %d of store.%s", w.step, when, f.n, f.target)
}

func (w *world) arm(where string) {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	w.armed[where] = true
}

// fire disarms a panic armed at where and reports whether there was one
// (noting it as fired, for the fault counts).
func (w *world) fire(where string) bool {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	armed := w.armed[where]
	delete(w.armed, where)
	if armed {
		w.fired = append(w.fired, where)
	}
	return armed
}

// maybePanic panics if a panic is armed at where (once).
func (w *world) maybePanic(where string) {
	if w.fire(where) {
		panic(userPanic{where: where})
	}
}

// maybePanicConn panics in s's connector call op if one is armed there
// (once), with a message a host's panic would have: not a userPanic.
func (w *world) maybePanicConn(s concord.SystemID, op string) {
	if w.fire("conn:" + string(s) + "." + op) {
		panic(fmt.Sprintf("sim: injected panic in connector %s %s (seed %d: re-run with  %s)",
			s, op, w.opt.Seed, Command(w.opt)))
	}
}

// lateWebhook pushes earlier states of a record from one system through
// Engine.Ingest: a webhook delivered late, twice, or out of order.
func (w *world) lateWebhook() {
	if !w.on(KindLateWebhook) {
		return
	}
	s := w.names[w.rng.IntN(len(w.names))]
	key := w.keys[w.rng.IntN(len(w.keys))]
	h := w.fakes[s].History(key)
	if len(h) == 0 || s == w.cfgRemoved { // no webhook reaches the engine from a system it does not know
		return
	}
	var recs []concord.Record
	for range 1 + w.rng.IntN(3) {
		recs = append(recs, h[w.rng.IntN(len(h))])
	}
	w.res.Faults[KindLateWebhook]++
	w.logf("step %d: fault late webhook from %s: %d state(s) of %s", w.step, s, len(recs), key)
	for _, r := range recs { // one Ingest per message, in the (shuffled) order they arrive
		if w.sparse[s] {
			r = withoutNulls(r)
		}
		r = w.partial(s, r)
		w.engineStep("ingest", func(ctx context.Context) error {
			_, err := w.engine.Ingest(ctx, s, []concord.Record{r})
			return err
		})
	}
}

// withoutNulls returns r without its null fields, as a system that stores a
// null as no field reports it (featSparse).
func withoutNulls(r concord.Record) concord.Record {
	r.Fields = nonNull(r.Fields)
	return r
}

// nonNull returns vals without its nulls: vals itself if it has none, else
// a copy.
func nonNull(vals map[string]concord.Value) map[string]concord.Value {
	for _, v := range vals {
		if v == nil {
			out := maps.Clone(vals)
			maps.DeleteFunc(out, func(_ string, v concord.Value) bool { return v == nil })
			return out
		}
	}
	return vals
}

// partial returns r or, in half the webhooks (featPartial), a copy of it
// that leaves out some of its fields: a webhook that carries only the
// fields that changed, or a message cut to what its subscriber asked for.
// A report never deletes by omission, so nothing the webhook leaves out
// may be lost.
func (w *world) partial(s concord.SystemID, r concord.Record) concord.Record {
	if w.opt.Skip[featPartial] || r.Deleted || len(r.Fields) == 0 || w.wrng.IntN(2) == 0 {
		return r
	}
	fields := make(map[string]concord.Value, len(r.Fields))
	var left []string
	for _, name := range slices.Sorted(maps.Keys(r.Fields)) {
		if w.wrng.IntN(2) == 0 {
			fields[name] = r.Fields[name]
		} else {
			left = append(left, name)
		}
	}
	r.Fields = fields
	if r.FieldModified != nil {
		fm := make(map[string]time.Time, len(fields))
		for name := range fields {
			if t, ok := r.FieldModified[name]; ok {
				fm[name] = t
			}
		}
		r.FieldModified = fm
	}
	w.logf("step %d: webhook from %s leaves out %v of %s", w.step, s, left, r.Key)
	return r
}

// cycle runs one engine cycle, then lets the step-bound faults expire.
func (w *world) cycle() {
	w.logf("step %d: cycle", w.step)
	w.res.Cycles++
	w.pickProc()
	w.catchUp(false)
	f, h, p := w.storeFault, w.cancelFault, w.pauseFault
	w.storeFault, w.cancelFault, w.pauseFault = nil, nil, nil
	if h != nil || w.cr != nil || w.other == nil || w.other.cr != nil {
		// Not with a cancellation or a crash of either process in the
		// same cycle: which of the two processes' work they void would
		// be the oracle's guess.
		p = nil
	}
	if p == nil {
		w.curStore.fail = f
	} // else a store error armed is the successor's (pausedCycle)
	w.curStore.halt, w.curStore.pause = h, p
	for k := range w.damaged {
		w.o.unmerged[k] = append(w.o.unmerged[k], w.step)
	}
	w.engineStep("cycle", func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if h != nil {
			h.mu.Lock()
			h.cancel = cancel
			h.mu.Unlock()
		}
		if p != nil {
			return w.pausedCycle(ctx, p, f)
		}
		_, err := w.engine.RunCycle(ctx)
		return err
	})
	if w.curStore.pause == p {
		w.curStore.pause = nil
	}
	if w.successor != nil {
		f, w.successor.fail, w.successor = w.successor.fail, nil, nil
	}
	if w.curStore.fail == f { // not replaced by a restart
		w.curStore.fail = nil
	}
	if w.curStore.halt == h {
		w.curStore.halt = nil
	}
	if f != nil && f.fired {
		w.res.Faults[KindStoreError]++
		w.logf("  store error fired at call %d of store.%s", f.n, f.target)
	}
	if h != nil && h.fired {
		w.res.Faults[KindCancel]++
		w.logf("  cycle cancelled at call %d of store.%s", h.n, h.target)
	}
	for s, n := range w.latency {
		if n <= 1 {
			delete(w.latency, s)
			delete(w.timeouts, s)
			w.fakes[s].SetLatency(0)
		} else {
			w.latency[s] = n - 1
		}
	}
	for k, n := range w.failKeys {
		if n <= 1 {
			delete(w.failKeys, k)
			delete(w.perm, k)
			w.fakes[k.s].ClearFailKey(k.key)
		} else {
			w.failKeys[k] = n - 1
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w.damaged)) { // in order: the log is traced
		n := w.damaged[k]
		if n <= 1 {
			delete(w.damaged, k)
			w.logf("  the state of %s reads again", k)
		} else {
			w.damaged[k] = n - 1
		}
	}
}

// engineStep runs one call into the engine (a cycle, an ingest, a
// settlement, a replay), turns an escaped panic into a failure, restarts
// the engine after a crash or a panic, and lets the oracle look.
func (w *world) engineStep(what string, f func(ctx context.Context) error) (err error) {
	if what == "cycle" {
		w.o.boundary() // a cycle reads every system
		defer w.o.afterCycle()
		w.rmu.Lock()
		w.readFailed, w.learned = map[concord.SystemID]bool{}, map[concord.SystemID]map[string]bool{}
		w.rmu.Unlock()
	}
	st, commits := w.curStore, w.commits.Load()
	restore := make([]func(), 0, len(w.names))
	for _, s := range w.names {
		restore = append(restore, w.fakes[s].Injected())
	}
	var perr any
	func() {
		defer func() { perr = recover() }()
		err = f(context.Background())
	}()
	if w.successor != nil {
		st = w.successor // the cycle of the step is the successor's (pausedCycle)
	}
	crashed := perr != nil || w.cr != nil && w.cr.isDead()
	if crashed && w.cr != nil && w.cr.isDead() {
		// Which of the dead process's concurrent connector calls ran
		// before it died (a system not the crash's target still
		// answers), and so consumed an injected fault, is the
		// scheduler's choice: the faults stay as they were, for the
		// next instance, as an armed panic does. One seed, one run.
		for _, r := range restore {
			r()
		}
	}
	w.pmu.Lock()
	fired := w.fired
	w.fired = nil
	if crashed {
		// The engine reads its systems concurrently (connector calls and
		// inbound transforms): whether a call that fired a panic ran
		// before another reached its crash point is the scheduler's
		// choice. The crashed process's work is void either way, so a
		// panic fired in a step that crashed stays armed for the next
		// instance, as if its call had come after the crash: one seed,
		// one run. (It is still counted below as having fired: a dead
		// letter it caused may have been committed before the crash.)
		for _, where := range fired {
			w.armed[where] = true
		}
	}
	w.pmu.Unlock()
	for _, where := range fired {
		if strings.HasPrefix(where, "conn:") {
			if !crashed {
				w.res.Faults[KindPanicConn]++
			}
			continue
		}
		w.res.Faults[KindPanic]++
		if strings.HasPrefix(where, "inbound:") {
			w.panicIn[concord.SystemID(strings.TrimPrefix(where, "inbound:"))] = true
		}
		if where == "resolver" || where == "gate" {
			w.mergePanicked = true
		}
	}
	// A store call that failed before it took effect (KindStoreError)
	// voids what the engine read since its last commit, as a crash does,
	// though the process lives on: the next cycle starts from the stored
	// state and the same cursors. The write outcomes it learned, and did
	// not commit, it keeps in memory and applies to the states it loads
	// next (sync's learned writes): they are unknown again only if the
	// process crashes first (world.pendingUnknown; see the README's "A
	// lost reply never loses an edit"). A commit stored whose reply was
	// lost voids nothing.
	voided := crashed || st.fail != nil && st.fail.fired && !st.fail.late
	// A cycle the host cancelled before it committed anything ends as one
	// whose store failed: what it read is read again next time. Once it
	// committed, it finishes what it started (sync's detached finish).
	cancelled := st.halt != nil && st.halt.fired
	if cancelled && st.commits.Load() == commits {
		voided = true
	}
	if errors.Is(err, store.ErrLeaseHeld) && st.commits.Load() == commits {
		// The other process holds the lease (KindInstances; one that
		// crashed holds it until it expires): this one read nothing. A
		// host tries again later; the lease has expired by then.
		voided = true
		w.waitLease()
	}
	if what == "cycle" && voided && st.commits.Load() == commits {
		// The engine crashed, or its store failed, before it committed
		// anything of what the cycle read (nor sent any write: writes
		// follow the commit before them): the next cycle reads those
		// systems again from the same cursors, and sees only their
		// states by then.
		w.o.forgetReads()
	}
	if what == "cycle" {
		w.rmu.Lock()
		if w.cfgRemoved != "" {
			// Not configured: the cycle read nothing of it.
			w.readFailed[w.cfgRemoved] = true
		}
		for _, s := range w.names {
			if w.readFailed[s] {
				w.o.readFailed(s, w.learned[s])
			}
		}
		w.readFailed, w.learned = nil, nil
		w.rmu.Unlock()
	}
	switch {
	case crashed:
		// The process died: what it knew of its unsent writes (a step
		// of its own, or an earlier one whose commit reply was lost) is
		// gone; the store's word stands.
		if st.commits.Load() != commits {
			w.pendingPhantoms = append(w.pendingPhantoms, w.phantomCreates()...)
		}
		w.processEnds()
	case (st.fail != nil && st.fail.fired || cancelled && err != nil) && st.commits.Load() != commits:
		// A commit stored, its reply lost (or the cycle cancelled after
		// it): the process knows which of the writes it noted it never
		// sent, and its next cycle forgets them (sync's unsent writes),
		// unless it crashes first.
		w.pendingPhantoms = append(w.pendingPhantoms, w.phantomCreates()...)
	case what == "cycle" && err == nil:
		w.pendingPhantoms = nil // forgotten by this cycle's load
		w.pendingUnknown = nil  // applied by this cycle's load, and committed
	}
	w.unconfirmed(crashed, voided, what != "cycle")
	reads := w.takeReads(what == "cycle" && !voided)
	if what == "cycle" && !voided {
		w.o.cleanCycles = append(w.o.cleanCycles, w.step)
	}
	switch {
	case perr != nil:
		if _, ok := perr.(userPanic); !ok {
			panic(perr) // not ours: a bug in the engine or the harness
		}
		w.failf(ClassPanic, "%s: %v escaped %s (the engine does not recover panics in user code)", what, perr, what)
		w.restart("after a panic")
	case w.cr != nil && w.cr.isDead():
		w.res.Faults[KindCrash]++
		w.logf("  crashed at point %d of %s", w.cr.n, w.cr.target)
		// Which of the engine's concurrent calls failed first on the dead
		// process is the scheduler's choice: shown, not traced.
		w.untraced("    the engine's error: %v", err)
		w.restart("after a crash")
	case err != nil:
		var ce *recsync.CycleError
		if !errors.As(err, &ce) {
			w.logf("  %s failed: %v", what, err)
		}
	}
	w.observe()
	w.o.remerged(what, reads)
	if what != "cycle" {
		clear(w.o.unlearned) // only a cycle's own reads are judged by afterCycle
	}
	return err
}

// phantomCreates hands the oracle, after an engine step that committed and
// then failed (a crash, or a store error), the creates it noted in the
// stored states as attempted and never sent: the write-ahead commit stored
// them, and the step ended before (or without) sending them. Read from the
// store, they are creates whose outcome is unknown, applied or not, as a
// sent create whose reply was lost is: a record the system's person
// creates meanwhile may be taken for one (create-taken-for-write). The
// engine process that noted them forgets them at its next cycle if it
// lives on (sync's unsent writes): engineStep hands them to the oracle
// only if the process crashes first (world.pendingPhantoms).
func (w *world) phantomCreates() []unconfirmedCreate {
	w.wmu.Lock()
	sent := map[sysKey]bool{}
	for _, aw := range w.writes {
		sent[sysKey{aw.sys, aw.key}] = true
	}
	w.wmu.Unlock()
	states, err := state.Load(context.Background(), w.base, w.keys)
	if err != nil {
		return nil // a store the step left unreadable: the next steps report it
	}
	var out []unconfirmedCreate
	for _, key := range w.keys {
		rec := states[key]
		if rec == nil {
			continue
		}
		for _, s := range w.names {
			v := rec.Systems[s]
			if v == nil || sent[sysKey{s, key}] || len(v.Sent.Value(recordUnit)) == 0 {
				continue
			}
			if r, ok := w.fakes[s].Record(key); ok && !r.Deleted {
				continue // s holds the record: not a create there
			}
			out = append(out, unconfirmedCreate{sys: s, key: key, step: w.step})
		}
	}
	return out
}

// unconfirmed hands the oracle the writes of the engine call that just ended,
// noting those whose outcome the engine never learned: the call got no
// reply (the reply was lost, the call failed or outlasted its deadline, the
// connector panicked), or the engine crashed before it committed what it
// learned; applied or not. The outcomes of a call whose store failed
// (voided) the process keeps, until it crashes (pendingUnknown).
//
// After a step that is not a cycle (whose end notes what every system
// holds: afterCycle), the engine believes a system holds what a write it
// saw applied left there (learned).
func (w *world) unconfirmed(crashed, voided, learned bool) {
	w.wmu.Lock()
	writes := w.writes
	w.writes = nil
	w.wmu.Unlock()
	for _, aw := range writes {
		unknown := !aw.replied || crashed
		if !unknown && voided {
			w.pendingUnknown = append(w.pendingUnknown, pendingWrite{aw, w.step})
		}
		w.o.noteWrite(aw, unknown)
		if learned && !unknown && !voided && aw.applied {
			w.o.wroteAt(aw)
		}
	}
}

// pendingWrite is a write, attempted at step, whose outcome the engine
// process knows and its store does not.
type pendingWrite struct {
	aw   appliedWrite
	step int
}

// takeReads hands the oracle the records the engine call that just ended
// read from the systems, when it was a cycle that ended without a crash
// (clean; oracle.readIn), and returns them either way.
func (w *world) takeReads(clean bool) []sysKey {
	w.wmu.Lock()
	reads := w.reads
	w.reads = nil
	w.wmu.Unlock()
	if !clean {
		return reads
	}
	for _, sk := range reads {
		if n := len(w.o.readIn[sk]); n == 0 || w.o.readIn[sk][n-1] != w.step {
			w.o.readIn[sk] = append(w.o.readIn[sk], w.step)
		}
	}
	return reads
}

// observe records the systems' states in the trace and lets the oracle and
// the accounting look.
func (w *world) observe() {
	for _, s := range w.names {
		for _, r := range w.fakes[s].Records() {
			w.trace = append(w.trace, s...)
			w.trace = append(w.trace, r.Key...)
			w.trace = append(w.trace, r.Tag...)
			for _, f := range slices.Sorted(mapsKeys(r.Fields)) {
				w.trace = append(w.trace, f...)
				w.trace, _ = concord.AppendCanonical(w.trace, r.Fields[f])
			}
		}
	}
	w.o.observe()
	w.account()
}

// account checks that every dead letter and every hold is explained.
func (w *world) account() {
	ctx := context.Background()
	stored, err := w.base.DeadLetters(ctx)
	if err != nil {
		panic(err)
	}
	for _, sd := range stored {
		d, err := state.DecodeDeadLetter(sd.Data)
		if err != nil {
			panic(fmt.Sprintf("dead letter %d: %v", sd.ID, err))
		}
		d.ID = sd.ID
		id := fmt.Sprintf("%d/%s/%s/%v/%s", d.ID, d.System, d.Key, d.Inbound, d.When)
		if w.deadSeen[id] {
			continue
		}
		w.deadSeen[id] = true
		explained := (!d.Inbound && w.everPerm[sysKey{d.System, d.Key}]) || (d.Inbound && w.panicIn[d.System]) ||
			(d.Class == recsync.ClassMerge.String() && (w.mergePanicked || w.damagedEver[d.Key]))
		w.logf("  dead letter %d: %s %s inbound=%v class=%s", d.ID, d.System, d.Key, d.Inbound, d.Class)
		if d.Inbound {
			w.o.unlearned[sysKey{d.System, d.Key}] = true
		}
		if !explained {
			w.failf(ClassDeadLetter, "dead letter %d (%s %s, inbound=%v, %s): %s", d.ID, d.System, d.Key, d.Inbound, d.Class, d.Reason)
		}
	}
	holds, err := w.holds()
	if err != nil {
		return
	}
	for _, h := range holds {
		switch resolve.Rule(h.Rule) {
		case ruleBigChange, resolve.RuleSystemOfRecord:
			continue
		case resolve.RuleHold, recsync.RuleUnresolved:
			if w.holdMode {
				continue
			}
			if resolve.Rule(h.Rule) == recsync.RuleUnresolved && slices.ContainsFunc(h.Candidates, func(c resolve.Candidate) bool { return c.Modified.IsZero() }) {
				// A candidate without a time (a record a system
				// answered "not found" for): last-writer-wins cannot
				// decide, and the engine never invents a time.
				continue
			}
		}
		w.failf(ClassHold, "hold on %s/%s (rule %q: %s) explained by no rule", h.Key, h.Unit, h.Rule, h.Reason)
	}
}

// holds lists the holds as Engine.Holds does, but straight from the store,
// so that the harness's own look never reaches a crash point.
func (w *world) holds() ([]recsync.HeldConflict, error) {
	ctx := context.Background()
	keys, err := w.base.Held(ctx)
	if err != nil {
		return nil, err
	}
	states, err := w.base.Load(ctx, keys)
	if err != nil {
		return nil, err
	}
	var out []recsync.HeldConflict
	for _, k := range keys {
		stored, ok := states[k]
		if !ok {
			continue
		}
		st, err := state.DecodeState(stored.Data)
		if err != nil {
			return nil, fmt.Errorf("record %q: %w", k, err)
		}
		for _, x := range st.Units { // sorted by name
			if name, u := x.Name, x.Value; u.Hold != nil {
				out = append(out, recsync.HeldConflict{Key: k, Unit: name, Revision: u.Hold.Revision(), Candidates: u.Hold.Candidates,
					Base: u.Hold.Base, BaseKnown: u.Hold.BaseKnown, Rule: resolve.Rule(u.Hold.Rule), Reason: u.Hold.Reason, Since: u.Hold.Since})
			}
		}
	}
	return out, nil
}

// settleHolds has the person settle one hold (or, at the end, all of them).
// With stale, a cycle may run between listing and settling, as when a
// person decides from a page loaded earlier.
func (w *world) settleHolds(stale bool) {
	holds, err := w.holds()
	if err != nil || len(holds) == 0 {
		return
	}
	if stale {
		holds = holds[w.rng.IntN(len(holds)):][:1]
	}
	if stale && w.rng.IntN(3) == 0 {
		w.logf("step %d: the person reads the holds, and a cycle runs before they decide", w.step)
		w.cycle()
	}
	for _, h := range holds {
		i := w.rng.IntN(len(h.Candidates))
		chosen := h.Candidates[i]
		w.logf("step %d: person settles %s/%s with candidate %d of %d (%s %s deleted=%v)", w.step, h.Key, h.Unit, i,
			len(h.Candidates), chosen.System, show(chosen.Values), chosen.Deleted)
		before := w.audit.Len()
		err := w.engineStep("settle", func(ctx context.Context) error {
			return w.engine.Settle(ctx, recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision, Candidate: i, Person: personName})
		})
		if err != nil {
			w.logf("  settle refused: %v", err)
			continue
		}
		w.res.Settles++
		for _, ev := range w.audit.Events()[before:] {
			if ev.Kind != audit.MergeDecided || ev.Key != h.Key || ev.Unit != h.Unit || ev.Rule != recsync.RulePerson {
				continue
			}
			if ev.Deleted != chosen.Deleted || (h.Unit != resolve.RecordUnit && !sameVals(h.Unit, ev.To, chosen.Values)) {
				w.failf(ClassSettle, "the person chose %s deleted=%v for %s/%s; Settle returned nil and applied %s deleted=%v",
					show(chosen.Values), chosen.Deleted, h.Key, h.Unit, show(ev.To), ev.Deleted)
			}
		}
	}
}

// mergeDeadLetter reports whether the store holds a merge dead letter of
// the record sk read from its system: a failed merge the engine will merge
// again.
func (w *world) mergeDeadLetter(sk sysKey) bool {
	return w.inboundDeadLetter(sk, recsync.ClassMerge.String())
}

// inboundDeadLetter reports whether the store holds a dead letter of the
// record sk read from its system, of class (any class if "").
func (w *world) inboundDeadLetter(sk sysKey, class string) bool {
	dead, err := w.base.DeadLettersOf(context.Background(), []string{sk.key})
	if err != nil {
		panic(err)
	}
	for _, sd := range dead {
		d, err := state.DecodeDeadLetter(sd.Data)
		if err != nil {
			panic(fmt.Sprintf("dead letter %d: %v", sd.ID, err))
		}
		if d.Inbound && d.System == sk.s && d.Key == sk.key && (class == "" || d.Class == class) {
			return true
		}
	}
	return false
}

// deadLetterStored reports whether the store still holds dead letter id.
func (w *world) deadLetterStored(id uint64) bool {
	_, err := w.base.DeadLetter(context.Background(), id)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		panic(err)
	}
	return true
}

// replayDeadLetters has the person replay the dead letters whose cause is
// gone.
func (w *world) replayDeadLetters() {
	dead, err := w.base.DeadLetters(context.Background())
	if err != nil {
		panic(err)
	}
	for _, d := range dead {
		// Read from Data: a store may leave System and Key out of what
		// it lists (bbolt's does).
		dl, err := state.DecodeDeadLetter(d.Data)
		if err != nil {
			panic(fmt.Sprintf("dead letter %d: %v", d.ID, err))
		}
		if w.perm[sysKey{dl.System, dl.Key}] {
			continue // still failing: replaying now would only fail again
		}
		if w.cfgRemoved != "" && dl.System == w.cfgRemoved {
			continue // not configured: the engine would refuse (ErrUnknownSystem)
		}
		w.logf("step %d: person replays dead letter %d (%s %s)", w.step, d.ID, dl.System, dl.Key)
		inbound := dl.Inbound && dl.Key != ""
		var judged []*edit
		if inbound {
			// The replay reads the record from its system again.
			judged = w.o.beforeReplay(dl.System, dl.Key)
		}
		err = w.engineStep("replay", func(ctx context.Context) error {
			return w.engine.Replay(ctx, recsync.DeadLetterAction{ID: d.ID, Person: personName})
		})
		if inbound {
			// The engine learned what it read if it committed it: the
			// dead letter goes in the same commit. A replay that failed
			// again replaces the letter with a new one (another ID), and
			// learned nothing.
			learned := !w.deadLetterStored(d.ID) && !w.inboundDeadLetter(sysKey{dl.System, dl.Key}, "")
			w.o.afterReplay(dl.System, dl.Key, judged, learned)
		}
		if err == nil {
			w.res.Replays++
		}
	}
}

// quiet stops every fault, has the person settle and replay everything,
// runs cycles until one writes nothing, checks that two more write
// nothing either, and runs the oracle's final checks.
func (w *world) quiet() {
	w.step++
	w.logf("step %d: faults stop", w.step)
	if w.removed != "" {
		w.addBack()
	}
	w.catchUp(true) // every deploy complete: both processes run the one configuration
	if w.other != nil {
		w.switchProc()
		w.catchUp(true)
		w.switchProc()
	}
	for _, s := range w.names {
		f := w.fakes[s]
		f.SetLatency(0)
		for _, op := range []fake.Op{fake.OpChanges, fake.OpScan, fake.OpStartScan, fake.OpApply} {
			f.FailNext(op, 0, nil)
		}
		f.RateLimitNext(0, 0)
		f.LoseRepliesNext(0)
		f.RepeatNext(0, 0)
		f.ReorderNext(0)
		for _, k := range w.keys {
			f.ClearFailKey(k)
		}
	}
	clear(w.failKeys)
	clear(w.perm)
	clear(w.damaged)
	w.pmu.Lock()
	clear(w.armed)
	w.pmu.Unlock()
	if w.cr != nil {
		w.cr.target = "" // disarmed: no point matches
	}
	w.clock.advance(time.Minute)
	quiet := false
	var lastErr error
	for range 12 {
		w.settleHolds(false)
		w.replayDeadLetters()
		w.step++
		w.logf("step %d: quiet cycle", w.step)
		w.res.Cycles++
		apply := w.applyCalls()
		lastErr = w.engineStep("cycle", func(ctx context.Context) error { _, err := w.engine.RunCycle(ctx); return err })
		holds, _ := w.holds()
		dead, _ := w.base.DeadLetters(context.Background())
		if lastErr == nil && w.applyCalls() == apply && len(holds) == 0 && len(dead) == 0 {
			quiet = true
			break
		}
	}
	if lastErr != nil {
		var ce *recsync.CycleError
		if errors.As(lastErr, &ce) {
			w.failf(ClassEngineError, "the last quiet cycle failed: %v", lastErr)
		} else {
			w.failf(ClassCommit, "the last quiet cycle failed: %v", lastErr)
		}
	}
	if !quiet {
		w.failf(ClassNoQuiescence, "12 quiet cycles (with every hold settled and dead letter replayed) did not reach one without writes")
	}
	if holds, _ := w.holds(); len(holds) > 0 {
		w.failf(ClassLeft, "%d hold(s) left after the person settled them all, e.g. %s/%s", len(holds), holds[0].Key, holds[0].Unit)
	}
	if dead, _ := w.base.DeadLetters(context.Background()); len(dead) > 0 {
		first, err := state.DecodeDeadLetter(dead[0].Data)
		if err != nil {
			panic(fmt.Sprintf("dead letter %d: %v", dead[0].ID, err))
		}
		w.failf(ClassLeft, "%d dead letter(s) left after the person replayed them all, e.g. %s %s: %s", len(dead), first.System, first.Key, first.Reason)
	}
	// Steady state: two more cycles write nothing.
	if quiet {
		apply := w.applyCalls()
		for range 2 {
			w.step++
			w.res.Cycles++
			w.logf("step %d: steady-state cycle", w.step)
			w.engineStep("cycle", func(ctx context.Context) error { _, err := w.engine.RunCycle(ctx); return err })
		}
		if n := w.applyCalls() - apply; n > 0 {
			w.failf(ClassSteady, "%d Apply call(s) in steady-state cycles", n)
		}
	}
	// The tamper-evident audit log holds one unbroken chain, whatever
	// crashed, failed, was restored or ran in two processes.
	if res, err := w.engine.VerifyAudit(context.Background()); err != nil {
		w.failf(ClassAudit, "the audit log does not verify after %d entries: %v", res.Entries, err)
	}
	if w.opt.sabotage != nil {
		w.opt.sabotage(w)
		w.o.observe()
	}
	w.o.final()
}

func (w *world) applyCalls() int {
	n := 0
	for _, f := range w.fakes {
		n += f.Calls(fake.OpApply)
	}
	return n
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Command returns the command that re-runs exactly one seed with opt's
// skip list and store.
func Command(opt Options) string {
	cmd := fmt.Sprintf("go test ./internal/sim -run 'TestSimulation$' -sim.seed=%d -v", opt.Seed)
	if opt.Backend != nil {
		cmd += " -sim.store=" + opt.Backend.Name()
	}
	if len(opt.Skip) > 0 {
		var names []string
		for k, on := range opt.Skip {
			if on {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		cmd += " -sim.skip=" + strings.Join(names, ",")
	}
	return cmd
}
