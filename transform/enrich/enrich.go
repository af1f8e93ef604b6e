// Package enrich fills in fields of a record from a host-provided lookup,
// such as a company's industry and size from its web domain.
//
// An [Enricher] is a [transform.Transformer]: it reads the lookup key from
// one field of the record, asks the host's [LookupFunc] (through a
// size-bounded cache with a time to live, and an optional rate [Limiter]),
// and fills only the fields that the record does not already hold and
// that no system of record owns. It never overwrites.
package enrich

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// LookupFunc returns the values known for key (a company domain, say), by
// field name. It returns an empty map or nil when nothing is known; that
// answer is cached like any other. An error is not cached: the record
// fails (see [Enricher.Transform]) and the next record with that key asks
// again. It may be called concurrently for different keys, never for one
// key twice at once (see [Enricher]); ctx is that of the Transform call
// that started the lookup. A panic in it is recovered and fails the
// records waiting for it with [ErrLookupPanicked].
type LookupFunc func(ctx context.Context, key string) (map[string]concord.Value, error)

// Limiter paces lookups: Wait blocks until one more lookup is allowed or
// ctx is done. *golang.org/x/time/rate.Limiter satisfies it, and so can the
// engine's rate budget for the service behind the lookup.
type Limiter interface {
	Wait(ctx context.Context) error
}

// LimiterFunc adapts a function to a [Limiter].
type LimiterFunc func(ctx context.Context) error

// Wait calls f.
func (f LimiterFunc) Wait(ctx context.Context) error { return f(ctx) }

// Config configures an [Enricher]. KeyField, Fields and Lookup are
// required.
type Config struct {
	// KeyField is the field whose value is the lookup key. A record in
	// which it is missing, nil, empty or not a string passes unchanged.
	KeyField string
	// Fields lists the fields the Enricher may fill; other fields in a
	// lookup's answer are ignored.
	Fields []string
	// Protected lists fields owned by a system of record: never filled,
	// even when listed in Fields and empty in the record.
	Protected []string
	// Lookup answers the lookups.
	Lookup LookupFunc
	// Limiter, if not nil, is waited on before every call of Lookup (not
	// on cache hits).
	Limiter Limiter
	// CacheSize bounds the number of keys cached; the least recently used
	// goes first. Default 1024; negative disables the cache.
	CacheSize int
	// TTL is how long an answer stays cached. Default 1 hour.
	TTL time.Duration
	// Now returns the current time, for the TTL; nil means time.Now.
	Now func() time.Time
}

// ErrInvalidConfig is wrapped by the errors of [New].
var ErrInvalidConfig = errors.New("invalid enrich config")

// Stats counts what an Enricher did.
type Stats struct {
	Hits    int64 // answers taken from the cache
	Lookups int64 // calls of Lookup
	Errors  int64 // failed lookups and limiter waits
	Shared  int64 // misses answered by a concurrent lookup of the same key
}

// ErrLookupPanicked is wrapped by the error of a Transform whose lookup
// panicked; the message carries the panic's value.
var ErrLookupPanicked = errors.New("enrich: lookup panicked")

// Enricher is the enrichment Transformer. It is safe for concurrent use.
//
// Concurrent misses for the same key call Lookup once (golang.org/x/sync's
// singleflight): the first starts the lookup, the others wait for its
// answer (or error), each for as long as its own ctx allows. The lookup
// runs under the ctx of the call that started it; a call that was waiting
// on a lookup ended by someone else's cancellation asks again.
type Enricher struct {
	cfg    Config
	fields []string // Fields minus Protected, sorted
	flight singleflight.Group

	mu    sync.Mutex
	lru   *list.List // of *entry, most recent first
	byKey map[string]*list.Element
	stats Stats
}

type entry struct {
	key     string
	values  map[string]concord.Value
	expires time.Time
}

var _ transform.Transformer = (*Enricher)(nil)

// New checks cfg and returns an Enricher. It starts no goroutines.
func New(cfg Config) (*Enricher, error) {
	var errs []error
	bad := func(what string) { errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidConfig, what)) }
	if cfg.KeyField == "" {
		bad("no KeyField")
	}
	if len(cfg.Fields) == 0 {
		bad("no Fields")
	}
	if slices.Contains(cfg.Fields, "") {
		bad("empty field name in Fields")
	}
	if cfg.Lookup == nil {
		bad("no Lookup")
	}
	if cfg.TTL < 0 {
		bad("negative TTL")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg.CacheSize = cmp.Or(cfg.CacheSize, 1024)
	cfg.TTL = cmp.Or(cfg.TTL, time.Hour)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var fields []string
	for _, f := range cfg.Fields {
		if !slices.Contains(cfg.Protected, f) && !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	slices.Sort(fields)
	cfg.Fields, cfg.Protected = slices.Clone(cfg.Fields), slices.Clone(cfg.Protected)
	return &Enricher{cfg: cfg, fields: fields, lru: list.New(), byKey: make(map[string]*list.Element)}, nil
}

// String names the step in a [transform.Chain] error.
func (e *Enricher) String() string { return "enrich by " + e.cfg.KeyField }

// Transform returns rec with the fields it lacks (absent or nil) filled
// from the lookup of its key field. Fields already holding a value, and
// protected fields, are never touched. When there is nothing to fill, or
// nothing to look up, rec is returned as it is without a lookup. rec is
// not modified; the result has its own Fields map.
//
// A failed lookup or limiter wait, or a looked-up value that is not a
// [concord.Value], fails with a [*transform.FieldError] naming the key
// field and wrapping the cause (errors.Is reaches context.Canceled, for
// instance): the engine quarantines the record, and a later run retries.
func (e *Enricher) Transform(ctx context.Context, rec concord.Record) (concord.Record, error) {
	if rec.Deleted {
		return rec, nil
	}
	key, _ := rec.Fields[e.cfg.KeyField].(string)
	if key == "" || !slices.ContainsFunc(e.fields, func(f string) bool { return rec.Fields[f] == nil }) {
		return rec, nil
	}
	fail := func(err error) (concord.Record, error) {
		e.mu.Lock()
		e.stats.Errors++
		e.mu.Unlock()
		return concord.Record{}, &transform.FieldError{Key: rec.Key, Field: e.cfg.KeyField, Value: key, Err: err}
	}
	values, ok := e.cached(key)
	if !ok {
		var err error
		if values, err = e.miss(ctx, key); err != nil {
			return fail(err)
		}
	}
	out := rec
	out.Fields = maps.Clone(rec.Fields)
	if out.Fields == nil {
		out.Fields = make(map[string]concord.Value, len(values))
	}
	for _, f := range e.fields {
		if v, ok := values[f]; ok && v != nil && out.Fields[f] == nil {
			out.Fields[f] = concord.CloneValue(v)
		}
	}
	return out, nil
}

// miss answers a cache miss for key: one lookup for all concurrent misses
// of key. The values returned are shared: read them, never modify them.
func (e *Enricher) miss(ctx context.Context, key string) (map[string]concord.Value, error) {
	for {
		started := false // read only after ch delivered: fn has returned
		ch := e.flight.DoChan(key, func() (any, error) { started = true; return e.fetch(ctx, key) })
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("enrich: waiting for the lookup of %q: %w", key, ctx.Err())
		case r := <-ch:
			if r.Err != nil && r.Shared && ctx.Err() == nil &&
				(errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded)) {
				continue // another call's ctx ended the lookup, not ours: ask again
			}
			if r.Err != nil {
				return nil, r.Err
			}
			if !started {
				e.mu.Lock()
				e.stats.Shared++
				e.mu.Unlock()
			}
			return r.Val.(map[string]concord.Value), nil
		}
	}
}

// fetch waits for the limiter, calls Lookup (recovering a panic), checks
// and copies the answer, and caches it. A call that arrives just after an
// answer was cached takes it from the cache instead.
func (e *Enricher) fetch(ctx context.Context, key string) (values map[string]concord.Value, err error) {
	if v, ok := e.cached(key); ok {
		return v, nil
	}
	if e.cfg.Limiter != nil {
		if err := e.cfg.Limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("enrich: waiting for the limiter: %w", err)
		}
	}
	e.mu.Lock()
	e.stats.Lookups++
	e.mu.Unlock()
	got, err := e.lookup(ctx, key)
	if err != nil {
		return nil, err
	}
	values = make(map[string]concord.Value, len(e.fields))
	for _, f := range e.fields {
		if v, ok := got[f]; ok {
			if err := concord.CheckValue(v); err != nil {
				return nil, fmt.Errorf("enrich: lookup field %q: %w", f, err)
			}
			values[f] = concord.CloneValue(v)
		}
	}
	e.store(key, values)
	return values, nil
}

// lookup calls the host's Lookup, turning a panic into an error: it runs on
// singleflight's goroutine, where no caller could recover it.
func (e *Enricher) lookup(ctx context.Context, key string) (got map[string]concord.Value, err error) {
	defer func() {
		if v := recover(); v != nil {
			got, err = nil, fmt.Errorf("%w: key %q: %v", ErrLookupPanicked, key, v)
		}
	}()
	got, err = e.cfg.Lookup(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("enrich: lookup: %w", err)
	}
	return got, nil
}

// Stats returns the counts so far.
func (e *Enricher) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// cached returns the live cached answer for key.
func (e *Enricher) cached(key string) (map[string]concord.Value, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	el, ok := e.byKey[key]
	if !ok {
		return nil, false
	}
	ent := el.Value.(*entry)
	if !e.cfg.Now().Before(ent.expires) {
		e.lru.Remove(el)
		delete(e.byKey, key)
		return nil, false
	}
	e.lru.MoveToFront(el)
	e.stats.Hits++
	return ent.values, true
}

// store caches an answer, evicting the least recently used beyond the size.
func (e *Enricher) store(key string, values map[string]concord.Value) {
	if e.cfg.CacheSize < 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ent := &entry{key: key, values: values, expires: e.cfg.Now().Add(e.cfg.TTL)}
	if el, ok := e.byKey[key]; ok {
		el.Value = ent
		e.lru.MoveToFront(el)
		return
	}
	e.byKey[key] = e.lru.PushFront(ent)
	for e.lru.Len() > e.cfg.CacheSize {
		old := e.lru.Remove(e.lru.Back()).(*entry)
		delete(e.byKey, old.key)
	}
}
