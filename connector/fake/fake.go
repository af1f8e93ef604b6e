// Package fake provides [System], a real in-memory system (a stand-in for
// "the warehouse" or "the CRM" in tests and examples) that implements
// [connector.Connector], [connector.Getter] and [connector.Scanner] and
// passes the connectortest conformance suite.
//
// A System has two sides. People edit it directly with [System.Edit] and
// [System.Delete]; the engine reads and writes it through the connector
// methods. Both kinds of change go to one change feed, in order, as a real
// system echoes the writes it receives.
//
// Fault knobs make it misbehave on purpose, to test retries and failure
// isolation: [System.FailNext], [System.FailKey], [System.RateLimitNext],
// [System.LoseRepliesNext] and [System.SetLatency]; and to test what a change
// feed may legally do: [System.RepeatNext] (deliver changes again) and
// [System.ReorderNext] (deliver a batch newest first). [System.History]
// returns the past states of a record, to replay a webhook that arrives
// late or twice. Counters
// ([System.Calls], [System.Effects], [System.Applied]) show what reached it.
//
// All methods are safe for concurrent use. A System never shares a map or
// slice with its callers: values are deep-copied on the way in and out.
package fake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// Compile-time checks of the abilities a System offers.
var (
	_ connector.Connector   = (*System)(nil)
	_ connector.Getter      = (*System)(nil)
	_ connector.Scanner     = (*System)(nil)
	_ connector.ScanStarter = (*System)(nil)
)

// Op names one kind of connector call, for [System.FailNext] and
// [System.Calls].
type Op int

// The connector calls a System counts and can fail.
const (
	OpChanges   Op = iota // Changes
	OpApply               // Apply
	OpGet                 // Get
	OpScan                // Scan
	OpStartScan           // StartScan
	numOps
)

// String returns the method name: "Changes", "Apply", "Get", "Scan" or
// "StartScan".
func (op Op) String() string {
	switch op {
	case OpChanges:
		return "Changes"
	case OpApply:
		return "Apply"
	case OpGet:
		return "Get"
	case OpScan:
		return "Scan"
	case OpStartScan:
		return "StartScan"
	}
	return "Op(" + strconv.Itoa(int(op)) + ")"
}

// ErrInjected is the cause of the failures that [System.FailNext] and
// [System.FailKey] inject when they are given a nil error. It is marked
// transient.
var ErrInjected = errors.New("injected failure")

// ErrReplyLost is the cause of the transient error an Apply call returns
// after [System.LoseRepliesNext]: the patches were applied, but the caller
// is not told.
var ErrReplyLost = errors.New("reply lost after the patches were applied")

// Option configures a System in [New].
type Option interface{ apply(*System) }

type optionFunc func(*System)

func (f optionFunc) apply(s *System) { f(s) }

// WithClock sets the clock that stamps Record.Modified (default time.Now).
func WithClock(now func() time.Time) Option {
	return optionFunc(func(s *System) { s.now = now })
}

// ConditionalWrites reports whether the system has version tags: with
// them it refuses a stale IfMatch and a create of a live record
// (connector.Conditional).
func (s *System) ConditionalWrites() bool { return s.tags }

// WithoutTags makes a system without version tags: records and results have
// an empty Tag and Patch.IfMatch is ignored.
func WithoutTags() Option {
	return optionFunc(func(s *System) { s.tags = false })
}

// WithFieldTimes makes a system that reports when each field last changed
// (Record.FieldModified), as systems with field history do: a field's time
// moves when an edit or a write changes its value, not when it is set to
// the value it had.
func WithFieldTimes() Option {
	return optionFunc(func(s *System) { s.fieldTimes = true })
}

// WithoutIdempotency makes a system that ignores Patch.IdempotencyKey: a
// repeated write has a second effect.
func WithoutIdempotency() Option {
	return optionFunc(func(s *System) { s.idempotent = false })
}

// System is an in-memory system of records. Create it with [New]; the zero
// value is not usable.
type System struct {
	name       string
	now        func() time.Time
	tags       bool
	idempotent bool
	fieldTimes bool

	mu      sync.Mutex
	records map[string]*entry // live records and tombstones
	feed    []change          // every change, by increasing seq
	seq     uint64            // the last seq given out
	nextBy  string            // the person of the next setLocked (EditBy)
	done    map[idemKey]connector.Result
	applied []connector.Patch
	effects map[string]int
	calls   [numOps]int

	failNext   [numOps]injected
	failKey    map[string]error
	rateLimit  int
	retryAfter time.Duration
	loseReply  int
	latency    time.Duration
	repeat     int       // Changes calls left that re-deliver
	repeatBack uint64    // how many changes before the cursor they start
	reorder    int       // Changes calls left that return newest first
	held       time.Time // during EditAll: the one time every change gets
}

// entry is one record's state: live, or a tombstone that keeps the version
// counter so that a re-created record never reuses an old tag.
type entry struct {
	fields   map[string]concord.Value
	deleted  bool
	version  uint64 // bumped by every change of this record
	seq      uint64 // seq of the latest change
	modified time.Time
	fieldMod map[string]time.Time // WithFieldTimes: when each field changed
	by       string               // who made the latest change (EditBy)
}

// change is one entry of the change feed; it is superseded when its record
// changes again (entry.seq moves on). Superseded entries are skipped, never
// removed: the feed grows with every change, which is fine for a test fake.
type change struct {
	seq uint64
	key string
	rec concord.Record // the record's state after this change, for History
}

type idemKey struct{ key, idem string }

type injected struct {
	n   int
	err error
}

// New returns an empty system called name. The name appears in its errors.
func New(name string, opts ...Option) *System {
	s := &System{
		name:       name,
		now:        time.Now,
		tags:       true,
		idempotent: true,
		records:    map[string]*entry{},
		done:       map[idemKey]connector.Result{},
		effects:    map[string]int{},
		failKey:    map[string]error{},
	}
	for _, o := range opts {
		o.apply(s)
	}
	return s
}

// Name returns the name given to [New].
func (s *System) Name() string { return s.name }

// ---- A person's side ----

// Edit merges fields into the record with key, creating it if it does not
// exist (or was deleted), as a person editing the system would. A nil value
// empties a field. It bumps the record's tag, stamps Modified, appends to the
// change feed and returns a copy of the new state. fields is copied, never
// retained.
//
// Edit panics if key is empty or a value is not a supported [concord.Value]:
// that is a mistake in the test, not a condition to handle.
func (s *System) Edit(key string, fields map[string]concord.Value) concord.Record {
	if key == "" {
		panic(fmt.Sprintf("fake %s: Edit: %v", s.name, concord.ErrNoKey))
	}
	if err := s.checkFields(key, fields); err != nil {
		panic("fake: Edit: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordLocked(key, s.setLocked(key, fields))
}

// EditBy is [System.Edit] by a named person: the record reports who made
// its latest change (concord.Record.By) until the next change.
func (s *System) EditBy(person, key string, fields map[string]concord.Value) concord.Record {
	if key == "" {
		panic(fmt.Sprintf("fake %s: EditBy: %v", s.name, concord.ErrNoKey))
	}
	if err := s.checkFields(key, fields); err != nil {
		panic("fake: EditBy: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextBy = person
	return s.recordLocked(key, s.setLocked(key, fields))
}

// EditAll makes the edits of [System.Edit] at one instant, as a bulk
// update or one transaction would: every record edited gets the same
// Modified time (one reading of the clock), and the changes enter the feed
// in key order. It returns copies of the new states in key order, and
// panics as Edit does.
func (s *System) EditAll(edits map[string]map[string]concord.Value) []concord.Record {
	keys := make([]string, 0, len(edits))
	for k, f := range edits {
		if k == "" {
			panic(fmt.Sprintf("fake %s: EditAll: %v", s.name, concord.ErrNoKey))
		}
		if err := s.checkFields(k, f); err != nil {
			panic("fake: EditAll: " + err.Error())
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = s.now()
	defer func() { s.held = time.Time{} }()
	out := make([]concord.Record, len(keys))
	for i, k := range keys {
		out[i] = s.recordLocked(k, s.setLocked(k, edits[k]))
	}
	return out
}

// Delete deletes the record with key, as a person would, and reports whether
// it existed. Deleting a live record appends a deletion to the change feed;
// deleting a missing one changes nothing.
func (s *System) Delete(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.records[key]
	if e == nil || e.deleted {
		return false
	}
	s.deleteLocked(key, e)
	return true
}

// Record returns a copy of the live record with key, or false if there is
// none.
func (s *System) Record(key string) (concord.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.records[key]
	if e == nil || e.deleted {
		return concord.Record{}, false
	}
	return s.recordLocked(key, e), true
}

// Records returns copies of all live records, sorted by key.
func (s *System) Records() []concord.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := s.liveKeysLocked()
	out := make([]concord.Record, len(keys))
	for i, k := range keys {
		out[i] = s.recordLocked(k, s.records[k])
	}
	return out
}

// Len returns the number of live records.
func (s *System) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.records {
		if !e.deleted {
			n++
		}
	}
	return n
}

// ---- Counters ----

// Calls returns how many calls of op the system received, including those
// that failed (injected faults, cancelled contexts).
func (s *System) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op < 0 || op >= numOps {
		return 0
	}
	return s.calls[op]
}

// Effects returns how many patches for key took effect through Apply.
// Failed patches and idempotent replays do not count.
func (s *System) Effects(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.effects[key]
}

// Applied returns copies of the patches that took effect through Apply, in
// the order they were applied.
func (s *System) Applied() []connector.Patch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]connector.Patch, len(s.applied))
	for i, p := range s.applied {
		out[i] = clonePatch(p)
	}
	return out
}

// ---- Fault knobs ----

// FailNext makes the next n calls of op fail with err, without effect. A nil
// err means a transient error wrapping [ErrInjected]. It replaces an earlier
// FailNext for the same op; n <= 0 clears it. It panics if op is not one of
// the Op constants.
func (s *System) FailNext(op Op, n int, err error) {
	if op < 0 || op >= numOps {
		panic(fmt.Sprintf("fake %s: FailNext: unknown %v", s.name, op))
	}
	if err == nil {
		err = connector.Transient(ErrInjected)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[op] = injected{n: max(n, 0), err: err}
}

// Injected returns a function that puts back, as they are now, the faults
// that the next calls consume (FailNext, RateLimitNext, LoseRepliesNext,
// RepeatNext, ReorderNext). A test that treats what a crashed process did
// as void calls it: which of that process's concurrent calls ran before it
// died, and consumed a fault, is the scheduler's choice.
func (s *System) Injected() (restore func()) {
	s.mu.Lock()
	fail, rate, after, lose := s.failNext, s.rateLimit, s.retryAfter, s.loseReply
	repeat, back, reorder := s.repeat, s.repeatBack, s.reorder
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.failNext, s.rateLimit, s.retryAfter, s.loseReply = fail, rate, after, lose
		s.repeat, s.repeatBack, s.reorder = repeat, back, reorder
	}
}

// FailKey makes every patch for key fail with err (in its Result), without
// effect, until [System.ClearFailKey]; the other patches of a batch are
// unaffected. A nil err means a transient error wrapping [ErrInjected].
func (s *System) FailKey(key string, err error) {
	if err == nil {
		err = connector.Transient(ErrInjected)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failKey[key] = err
}

// ClearFailKey undoes [System.FailKey] for key.
func (s *System) ClearFailKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failKey, key)
}

// RateLimitNext makes the next n calls, of any op, fail without effect with
// an error classified [connector.ErrRateLimited] that asks to wait
// retryAfter (see [connector.RetryAfter]).
func (s *System) RateLimitNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit, s.retryAfter = max(n, 0), retryAfter
}

// LoseRepliesNext makes the next n Apply calls apply their patches and then
// return a transient error wrapping [ErrReplyLost] instead of the results.
func (s *System) LoseRepliesNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseReply = max(n, 0)
}

// SetLatency makes every later call wait d before doing anything. A call
// whose context is cancelled while it waits returns ctx.Err().
func (s *System) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// RepeatNext makes the next n Changes calls start back changes before the
// cursor they are given, so that changes already delivered are delivered
// again (each record in its current state, at most once per batch), as a
// feed that re-sends after a lost acknowledgement does. The cursor they
// return is the same as without the knob. n <= 0 clears it.
func (s *System) RepeatNext(n, back int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repeat, s.repeatBack = max(n, 0), uint64(max(back, 0))
}

// ReorderNext makes the next n Changes calls return their records newest
// first instead of oldest first (the cursor returned is unchanged). n <= 0
// clears it.
func (s *System) ReorderNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reorder = max(n, 0)
}

// History returns copies of the states the record with key had after each
// of its changes, oldest first: a deletion appears as a Record with Deleted
// set. It is what a late or repeated webhook would carry, for
// Engine.Ingest in tests.
func (s *System) History(key string) []concord.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []concord.Record
	for _, c := range s.feed {
		if c.key == key {
			out = append(out, c.rec.Clone())
		}
	}
	return out
}

// enter is the common start of every connector call: it counts the call,
// waits out the latency, and returns the error of an injected fault, if any.
// On success the caller holds s.mu and must release it.
func (s *System) enter(ctx context.Context, op Op) error {
	if err := ctx.Err(); err != nil {
		s.mu.Lock()
		s.calls[op]++
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.calls[op]++
	d := s.latency
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	s.mu.Lock()
	if s.rateLimit > 0 {
		s.rateLimit--
		err := connector.RateLimited(fmt.Errorf("fake %s: %v: too many requests", s.name, op), s.retryAfter)
		s.mu.Unlock()
		return err
	}
	if f := &s.failNext[op]; f.n > 0 {
		f.n--
		err := fmt.Errorf("fake %s: %v: %w", s.name, op, f.err)
		s.mu.Unlock()
		return err
	}
	return nil
}

// ---- Connector ----

// Changes returns the current state of up to limit records whose latest
// change comes after cursor, in the order of those changes, each record at
// most once; deleted records have Deleted set. The cursor is the sequence
// number of the last change returned. A malformed cursor or a limit below 1
// is a permanent error.
func (s *System) Changes(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	if err := s.enter(ctx, OpChanges); err != nil {
		return connector.Batch{}, err
	}
	defer s.mu.Unlock()
	after, err := s.parseCursor(cursor)
	if err != nil {
		return connector.Batch{}, err
	}
	if limit < 1 {
		return connector.Batch{}, connector.Permanent(fmt.Errorf("fake %s: Changes: limit %d is below 1", s.name, limit))
	}

	b := connector.Batch{Next: cursor}
	from := after + 1
	if s.repeat > 0 {
		s.repeat--
		from -= min(s.repeatBack, after)
	}
	reorder := s.reorder > 0
	if reorder {
		s.reorder--
	}
	i, _ := slices.BinarySearchFunc(s.feed, from, func(c change, seq uint64) int {
		return cmp.Compare(c.seq, seq)
	})
	for ; i < len(s.feed); i++ {
		c := s.feed[i]
		e := s.records[c.key]
		if e.seq != c.seq {
			continue // superseded by a later change of the same record
		}
		if len(b.Records) == limit {
			b.More = true
			break
		}
		b.Records = append(b.Records, s.recordLocked(c.key, e))
		if c.seq > after {
			b.Next = connector.Cursor(strconv.FormatUint(c.seq, 10))
		}
	}
	if reorder {
		slices.Reverse(b.Records)
	}
	return b, nil
}

func (s *System) parseCursor(c connector.Cursor) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(string(c), 10, 64)
	if err != nil {
		return 0, connector.Permanent(fmt.Errorf("fake %s: malformed cursor %q", s.name, c))
	}
	return n, nil
}

// Apply applies each patch independently and returns one Result per patch,
// in order. See [connector.Patch] for the meaning of its fields; in addition:
//
//   - a patch for a key set with [System.FailKey] fails with that error;
//   - an unsupported value is a permanent error (a [*concord.RecordError]
//     naming the field);
//   - a stale IfMatch fails with [connector.ErrConflict], naming the key and
//     both tags; IfMatch on a missing record with Create is a conflict too;
//   - a successful patch whose (Key, IdempotencyKey) was applied before
//     returns the earlier Result and has no second effect.
//
// Every successful patch, deletes of missing records excepted, bumps the
// record's tag and appears in the change feed.
func (s *System) Apply(ctx context.Context, patches []connector.Patch) ([]connector.Result, error) {
	if err := s.enter(ctx, OpApply); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()

	results := make([]connector.Result, len(patches))
	for i, p := range patches {
		results[i] = s.applyLocked(p)
	}
	if s.loseReply > 0 {
		s.loseReply--
		return nil, connector.Transient(fmt.Errorf("fake %s: Apply: %w", s.name, ErrReplyLost))
	}
	return results, nil
}

func (s *System) applyLocked(p connector.Patch) connector.Result {
	res := connector.Result{Key: p.Key}
	if p.Key == "" {
		res.Err = connector.Permanent(&concord.RecordError{System: concord.SystemID(s.name), Err: concord.ErrNoKey})
		return res
	}
	ik := idemKey{p.Key, p.IdempotencyKey}
	if s.idempotent && p.IdempotencyKey != "" {
		if r, ok := s.done[ik]; ok {
			return r
		}
	}
	if err, ok := s.failKey[p.Key]; ok {
		res.Err = fmt.Errorf("fake %s: record %q: %w", s.name, p.Key, err)
		return res
	}
	if !p.Delete {
		if err := s.checkFields(p.Key, p.Set); err != nil {
			res.Err = connector.Permanent(err)
			return res
		}
	}

	e := s.records[p.Key]
	live := e != nil && !e.deleted
	switch {
	case p.Delete && !live:
		return res // deleting a missing record succeeds, and changes nothing
	case !live && !p.Create:
		res.Err = &connector.Error{Class: connector.ErrNotFound, Key: p.Key,
			Err: fmt.Errorf("fake %s: no such record", s.name)}
		return res
	case s.tags && live && p.Create:
		res.Err = &connector.Error{Class: connector.ErrConflict, Key: p.Key,
			Err: fmt.Errorf("fake %s: Create, but the record exists with tag %q", s.name, s.tag(e))}
		return res
	case s.tags && p.IfMatch != "" && (!live || s.tag(e) != p.IfMatch):
		actual := "none, the record does not exist"
		if live {
			actual = strconv.Quote(s.tag(e))
		}
		res.Err = &connector.Error{Class: connector.ErrConflict, Key: p.Key,
			Err: fmt.Errorf("fake %s: IfMatch is %q but the tag is %s", s.name, p.IfMatch, actual)}
		return res
	}

	if p.Delete {
		s.deleteLocked(p.Key, e)
	} else {
		e = s.setLocked(p.Key, p.Set)
	}
	res.Tag, res.Modified = s.tag(e), e.modified
	s.applied = append(s.applied, clonePatch(p))
	s.effects[p.Key]++
	if s.idempotent && p.IdempotencyKey != "" {
		s.done[ik] = res
	}
	return res
}

// Get returns copies of the live records with the given keys, in the order
// of keys; missing keys and repeated keys are skipped.
func (s *System) Get(ctx context.Context, keys []string) ([]concord.Record, error) {
	if err := s.enter(ctx, OpGet); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []concord.Record
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if e := s.records[k]; e != nil && !e.deleted && !seen[k] {
			seen[k] = true
			out = append(out, s.recordLocked(k, e))
		}
	}
	return out, nil
}

// Scan returns up to limit live records in key order, after the key that
// cursor names (the cursor is the last key returned). A limit below 1 is a
// permanent error.
func (s *System) Scan(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	if err := s.enter(ctx, OpScan); err != nil {
		return connector.Batch{}, err
	}
	defer s.mu.Unlock()
	if limit < 1 {
		return connector.Batch{}, connector.Permanent(fmt.Errorf("fake %s: Scan: limit %d is below 1", s.name, limit))
	}
	keys := s.liveKeysLocked()
	i, found := slices.BinarySearch(keys, string(cursor))
	if found {
		i++
	}
	b := connector.Batch{Next: cursor}
	for ; i < len(keys) && len(b.Records) < limit; i++ {
		b.Records = append(b.Records, s.recordLocked(keys[i], s.records[keys[i]]))
		b.Next = connector.Cursor(keys[i])
	}
	b.More = i < len(keys)
	return b, nil
}

// StartScan returns the cursor of the latest change (every later change
// comes after it) and the number of live records.
func (s *System) StartScan(ctx context.Context) (connector.ScanStart, error) {
	if err := s.enter(ctx, OpStartScan); err != nil {
		return connector.ScanStart{}, err
	}
	defer s.mu.Unlock()
	st := connector.ScanStart{Estimate: int64(len(s.liveKeysLocked()))}
	if s.seq > 0 {
		st.Feed = connector.Cursor(strconv.FormatUint(s.seq, 10))
	}
	return st, nil
}

// ---- internals; callers hold s.mu unless noted ----

// checkFields validates values; it needs no lock.
func (s *System) checkFields(key string, fields map[string]concord.Value) error {
	for name, v := range fields {
		if err := concord.CheckValue(v); err != nil {
			return &concord.RecordError{System: concord.SystemID(s.name), Key: key, Field: name, Err: err}
		}
	}
	return nil
}

// setLocked merges copies of fields into the record, creating or reviving
// it, and records the change.
func (s *System) setLocked(key string, fields map[string]concord.Value) *entry {
	e := s.records[key]
	if e == nil {
		e = &entry{}
		s.records[key] = e
	}
	if e.deleted || e.fields == nil {
		e.fields = make(map[string]concord.Value, len(fields))
		e.deleted, e.fieldMod = false, nil
	}
	e.by, s.nextBy = s.nextBy, ""
	var changed []string
	for k, v := range fields {
		if old, ok := e.fields[k]; !ok || !concord.EqualValues(old, v) {
			changed = append(changed, k)
		}
		e.fields[k] = concord.CloneValue(v)
	}
	s.touchLocked(key, e, changed)
	return e
}

func (s *System) deleteLocked(key string, e *entry) {
	e.deleted, e.fields, e.fieldMod, e.by = true, nil, nil, ""
	s.touchLocked(key, e, nil)
}

// touchLocked bumps the record's version, stamps the changed fields (with
// WithFieldTimes) and appends the record to the change feed.
func (s *System) touchLocked(key string, e *entry, changed []string) {
	s.seq++
	e.version++
	e.seq = s.seq
	e.modified = s.held
	if e.modified.IsZero() {
		e.modified = s.now()
	}
	if s.fieldTimes {
		if e.fieldMod == nil {
			e.fieldMod = map[string]time.Time{}
		}
		for _, f := range changed {
			e.fieldMod[f] = e.modified
		}
	}
	s.feed = append(s.feed, change{seq: s.seq, key: key, rec: s.recordLocked(key, e)})
}

func (s *System) tag(e *entry) string {
	if !s.tags {
		return ""
	}
	return strconv.FormatUint(e.version, 10)
}

// recordLocked returns a deep copy of the record's state.
func (s *System) recordLocked(key string, e *entry) concord.Record {
	r := concord.Record{Key: key, Fields: e.fields, Deleted: e.deleted, Modified: e.modified, Tag: s.tag(e), By: e.by}
	if s.fieldTimes && !e.deleted {
		r.FieldModified = e.fieldMod
	}
	return r.Clone()
}

func (s *System) liveKeysLocked() []string {
	keys := make([]string, 0, len(s.records))
	for k, e := range s.records {
		if !e.deleted {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func clonePatch(p connector.Patch) connector.Patch {
	p.Set = concord.CloneFields(p.Set)
	return p
}
