package sync

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/seal"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/transform"
)

// System configures one system of a pipeline.
type System struct {
	// ID names the system; it must be unique and stable.
	ID concord.SystemID
	// Connector reads from and writes to the system. Required.
	Connector connector.Connector
	// Inbound maps the system's records to the canonical shape; nil
	// means they already have it.
	Inbound transform.Transformer
	// Outbound maps canonical records to the system's shape; nil means
	// the system uses the canonical shape.
	Outbound transform.Transformer
	// BatchSize is the most records asked for per read and sent per
	// write. Zero means 100.
	BatchSize int
	// Rate is the system's budget of calls per second, shared by every
	// call the engine makes to it; Burst how many may go at once. Zero
	// Rate means no budget. The budget adapts to rate limiting: a 429
	// halves it and honours Retry-After; successes restore it.
	Rate  rate.Limit
	Burst int
	// FirstSync says how the system is read when the engine has no
	// cursor for it; the zero value, [FirstSyncScan], reads every record
	// by scan when the connector is a [connector.Scanner].
	FirstSync FirstSync
	// Scope, when not nil, is what the pipeline may do to the system:
	// create, delete, and which of its fields it may set. A write outside
	// it is refused before the connector is called, audited
	// (audit.WriteRefused), counted ([SystemReport.OutOfScope]) and
	// alerted, and the record stays pending or is dead-lettered, as the
	// scope says. Nil allows everything; declare one for least privilege.
	Scope *Scope
}

// Config configures an [Engine]. The zero values of the optional fields are
// documented and usable.
type Config struct {
	// Systems to keep in agreement: at least two, at most [MaxSystems].
	Systems []System
	// Groups declares field groups: canonical fields that only make sense
	// together (an address). A group is versioned and merged as one unit,
	// so a merge never combines the street of one edit with the postal
	// code of another. Keys are group names, values their fields. A
	// group's name is its unit's: a record with a field of that name is
	// refused at the boundary (quarantined with the reason).
	Groups map[string][]string
	// Resolver settles conflicts. If it also implements resolve.Gate it
	// is consulted as a gate too (resolve.SystemOfRecord does, so that
	// non-owner edits are reverted). Nil holds every conflict for a
	// person.
	Resolver resolve.Resolver
	// Gates see every change before it becomes canonical.
	Gates []resolve.Gate
	// Anomalies hold, for a person (see [Engine.Holds]), a change of a
	// numeric field whose size is an outlier for that field: beyond the
	// rule's fixed limit, or far from the median of the field's recent
	// changes in scaled MADs (see resolve.AnomalyRule for the exact rule).
	// The hold's reason carries the evidence: "price 100 → 1: −99%, ...".
	// The statistics of each field's recent changes, across all records,
	// are kept in the Store and learned from every change that becomes
	// canonical. These rules are checked before the Gates.
	Anomalies []resolve.AnomalyRule
	// Sensitive lists the fields whose values are sensitive (passwords,
	// national IDs, bank accounts), by every name they have: canonical,
	// and each system's own where it differs. Their values are encrypted
	// at rest wherever the engine stores them (record state, dead letters,
	// held changes; AES-256-GCM under Keys, bound to the pipeline, the
	// record and the field), recognised by keyed hashes (HMAC) rather than
	// plain ones, and replaced by [Redacted] in everything the engine
	// outputs: audit events (and so the audit log, sinks and alerts),
	// error and violation messages, dead letters and holds as listed,
	// reports and logs. Requires Keys.
	Sensitive []string
	// Keys is the host's key ring for Sensitive fields (seal.NewKeyRing):
	// its current key encrypts, every key in it decrypts (rotation), and
	// its hash key makes the keyed hashes. Keep the same ring (the same
	// keys and hash key) for a store, or its sealed values cannot be read.
	Keys *seal.KeyRing
	// Progress, if not nil, is called with a system's progress during a
	// long sync: after each cycle of a first sync by scan (records scanned
	// of the estimate). It is called from the cycle's goroutine and must
	// return promptly; a panic is recovered and logged. The same figures
	// go to the metrics concord.scan.records and concord.scan.estimate.
	Progress func(system concord.SystemID, p ScanProgress)
	// Cleansing, by canonical field, suggests replacements for values the
	// Dictionary refuses and may apply one (see [Cleansing]).
	Cleansing map[string]Cleansing
	// Dictionary, when set, validates every record at the boundary, in
	// canonical shape: each record read, after the inbound transforms and
	// before the merge (an invalid one is dead-lettered with its raw and
	// transformed payloads and every violation; its batch goes on), and
	// each write, on what the target system will report back (so that a
	// transform bug cannot write garbage). A *dict.Dictionary is one; see
	// [Validator] for writing another.
	Dictionary Validator
	// Audit receives every event. Nil means audit.Discard.
	Audit audit.Sink
	// Store holds the engine's state: store.NewMemory() for tests and
	// hosts that rebuild their state on start, a durable store
	// (sync/store/boltstore, sync/store/pgstore) otherwise. Required: a
	// nil Store is an error, so that no host forgets its state on restart
	// by accident.
	Store store.Store
	// Logger for operational messages. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for audit timestamps and holds (never for
	// ordering edits). Nil means time.Now.
	Now func() time.Time
	// MaxBatches is the most batches read from one system in one cycle.
	// Zero means 10.
	MaxBatches int
	// Retry is the retry policy for calls and records; see RetryPolicy
	// for the defaults of its zero value.
	Retry RetryPolicy
	// Alerter is told about failures people must know of: systems that
	// cannot be read, writes that fail or are dead-lettered, Retry-After
	// answers that were capped; and, once per failure group, when the
	// system works again (Alert.Resolved). The engine calls it after each
	// cycle and never waits on it for long; wrap it in alert.NewGrouper
	// (one outage, one alert) and alert.NewAsync (retried delivery that
	// never blocks). Nil: no alerts (failures are still audited).
	Alerter alert.Alerter
	// MeterProvider receives the engine's metrics through OpenTelemetry's
	// metric API (the host owns the SDK and exporters). Nil: only
	// [Engine.Stats].
	MeterProvider metric.MeterProvider
	// Instance names this engine among the instances that share a Store
	// (a host name, a pod name). Cycles take the store's lease Pipeline
	// as Instance, so that two instances never run a cycle of the same
	// pipeline at once. Empty means a random name.
	Instance string
	// Pipeline names the lease; instances syncing the same systems share
	// it. Empty means "default". Pipeline and Instance are valid UTF-8 of
	// at most MaxSystemIDBytes, without NUL (stores keep them as text).
	Pipeline string
	// LeaseTTL bounds how long a cycle may hold the lease before another
	// instance may take it over (its commit is then refused). The lease is
	// renewed once at most half of it remains, so a cycle is sure of at
	// least LeaseTTL/2. Before each batch of writes, once a quarter of it
	// has passed since the store last confirmed the lease, the cycle asks
	// again (renewing it in its second half): a long push keeps the lease,
	// and a cycle that lost it sends nothing more ([ErrLeaseLost]). Keep
	// each connector call well under LeaseTTL/4. Under [Engine.Run] an
	// idle cycle may keep the lease for the next one (see Run). Zero means
	// one minute.
	LeaseTTL time.Duration
}

// Validator checks a canonical record; the error names every field at
// fault and why.
//
// The documented form of that error is a [*transform.Violations] (or a
// single [transform.Violation]), which package dict returns: the engine
// reads it field by field. When it validates a write, a violation whose
// Rule is [transform.ErrRequired] for a field the target system does not
// carry at all is ignored (the system is not at fault for lacking it); any
// other violation, and any error of another type, refuses the write. On the
// way in, any error quarantines the record with the error as the reason.
// Validate may be called concurrently for different records and must not
// modify rec (each call is given its own deep copy, so that one that does
// changes nothing of the engine's); a panic is recovered and counts as the
// record's failure.
type Validator interface {
	Validate(rec concord.Record) error
}

// MaxSystems is the most systems one pipeline may sync. A field's version
// names each system that ever edited it, and the engine (once per store
// epoch: a restore from a backup starts a new one), and never forgets one;
// it holds at most concord.MaxDots (64) names, so that a field every
// system edits would, past that, fail to merge for good. Half is kept for
// the engine's epochs.
const MaxSystems = concord.MaxDots / 2

// MaxSystemIDBytes is the longest System.ID New accepts: the engine names
// store values after systems ("scan/" + ID, "backfill/" + ID), whose names
// stores bound (store.MaxValueName).
const MaxSystemIDBytes = 128

// ErrConfig is wrapped by every error [New] returns.
var ErrConfig = errors.New("concord: invalid config")

// configErr wraps ErrConfig; an error among args that format wraps with %w
// stays inspectable with errors.Is and errors.As.
func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// New validates cfg and returns an Engine. It does no I/O and starts no
// goroutine.
func New(cfg Config) (*Engine, error) {
	if len(cfg.Systems) < 2 {
		return nil, configErr("need at least two systems, got %d", len(cfg.Systems))
	}
	if len(cfg.Systems) > MaxSystems {
		return nil, configErr("%d systems, more than %d (MaxSystems): a field's version names every system that ever edited it, and holds at most %d names (concord.MaxDots)", len(cfg.Systems), MaxSystems, concord.MaxDots)
	}
	e := &Engine{cfg: cfg, byID: map[concord.SystemID]*system{}}
	for i, s := range cfg.Systems {
		switch {
		case s.ID == "":
			return nil, configErr("system %d has no ID", i)
		case !utf8.ValidString(string(s.ID)) || strings.IndexByte(string(s.ID), 0) >= 0:
			return nil, configErr("system %d: ID %q is not valid UTF-8 without NUL bytes (every store keeps it as text)", i, s.ID)
		case len(s.ID) > MaxSystemIDBytes:
			return nil, configErr("system %d: ID %.40q... is %d bytes, more than %d (MaxSystemIDBytes)", i, s.ID, len(s.ID), MaxSystemIDBytes)
		case s.Connector == nil:
			return nil, configErr("system %q has a nil Connector", s.ID)
		case s.BatchSize < 0:
			return nil, configErr("system %q: negative BatchSize %d", s.ID, s.BatchSize)
		case s.Rate < 0 || s.Burst < 0:
			return nil, configErr("system %q: negative Rate or Burst", s.ID)
		case s.FirstSync != FirstSyncScan && s.FirstSync != FirstSyncFeed:
			return nil, configErr("system %q: unknown FirstSync %v", s.ID, s.FirstSync)
		}
		if _, dup := e.byID[s.ID]; dup {
			return nil, configErr("system %q is configured twice", s.ID)
		}
		identityIn := s.Inbound == nil
		if identityIn {
			s.Inbound = transform.Identity
		}
		identityOut := s.Outbound == nil
		if identityOut {
			s.Outbound = transform.Identity
		}
		if s.BatchSize == 0 {
			s.BatchSize = 100
		}
		scope, err := compileScope(s.Scope)
		if err != nil {
			return nil, configErr("system %q: %v", s.ID, err)
		}
		sys := &system{System: s, id: s.ID, budget: newBudget(s.Rate, s.Burst), scope: scope, identityIn: identityIn, identityOut: identityOut}
		e.systems = append(e.systems, sys)
		e.byID[s.ID] = sys
	}
	// A deterministic order: by ID.
	slices.SortFunc(e.systems, func(a, b *system) int { return strings.Compare(string(a.id), string(b.id)) })
	l, err := newLayout(cfg.Groups)
	if err != nil {
		return nil, configErr("%w", err)
	}
	e.layout = l
	if cfg.MaxBatches < 0 {
		return nil, configErr("negative MaxBatches %d", cfg.MaxBatches)
	}
	if cfg.MaxBatches == 0 {
		e.cfg.MaxBatches = 10
	}
	if err := cfg.Retry.validate(); err != nil {
		return nil, configErr("%w", err)
	}
	e.retry = cfg.Retry.withDefaults()
	m, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, configErr("creating metric instruments: %w", err)
	}
	e.metrics = m
	e.alerting = alerting{to: cfg.Alerter, failing: map[string]alert.Alert{}}
	for i, g := range cfg.Gates {
		if g == nil {
			return nil, configErr("gate %d is nil", i)
		}
	}
	if e.anomalies, err = newAnomalyGate(cfg.Anomalies); err != nil {
		return nil, configErr("%w", err)
	}
	e.gates = slices.Clone(cfg.Gates)
	if g, ok := cfg.Resolver.(resolve.Gate); ok {
		e.gates = append([]resolve.Gate{g}, e.gates...)
	}
	if cfg.Store == nil {
		return nil, configErr("Store is nil (use store.NewMemory() for a state kept in memory)")
	}
	e.store = stateStore{Store: cfg.Store, commits: new(atomic.Uint64)}
	e.audit = cfg.Audit
	if e.audit == nil {
		e.audit, e.sinkless = audit.Discard, true
	}
	e.log = cfg.Logger
	if e.log == nil {
		e.log = slog.Default()
	}
	e.now = cfg.Now
	if e.now == nil {
		e.now = time.Now
	}
	if cfg.LeaseTTL < 0 {
		return nil, configErr("negative LeaseTTL %v", cfg.LeaseTTL)
	}
	if e.cfg.LeaseTTL == 0 {
		e.cfg.LeaseTTL = time.Minute
	}
	for what, name := range map[string]string{"Pipeline": cfg.Pipeline, "Instance": cfg.Instance} {
		if !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 || len(name) > MaxSystemIDBytes {
			return nil, configErr("%s %.40q is not valid UTF-8 of at most %d bytes without NUL (stores keep it as text)", what, name, MaxSystemIDBytes)
		}
	}
	if e.cfg.Instance == "" {
		e.cfg.Instance = fmt.Sprintf("instance-%016x", rand.Uint64())
	}
	if e.cfg.Pipeline == "" {
		e.cfg.Pipeline = "default"
	}
	if e.sens, err = newSensitivity(cfg.Sensitive, cfg.Keys); err != nil {
		return nil, configErr("%w", err)
	}
	if e.sens != nil {
		e.store.codec = state.Codec{Sealer: cfg.Keys, Hasher: cfg.Keys, Sensitive: e.sens.is, Context: e.cfg.Pipeline}
	}
	for _, s := range e.systems {
		e.store.codec.Systems = append(e.store.codec.Systems, s.id)
	}
	e.guardComponents()
	e.audit = namingSink{next: e.audit, names: &e.names}
	return e, nil
}
