package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/sync/seal"
	"github.com/concordsync/concord/sync/store"
)

// Redacted replaces the value of a sensitive field (Config.Sensitive) in
// everything the engine outputs: audit events, alerts, logs, error and
// violation messages, dead letters and holds as listed, reports.
const Redacted = "[redacted]"

// minRedacted is the shortest rendering of a sensitive value that is
// searched for in error texts: a shorter one ("1") would blank out the
// text around it rather than the value.
const minRedacted = 3

// sensitivity is what the engine knows of the sensitive fields: their
// names (canonical and each system's own) and the key ring that seals
// their values at rest and hashes them for equality.
type sensitivity struct {
	names map[string]bool
	keys  *seal.KeyRing
}

func newSensitivity(names []string, keys *seal.KeyRing) (*sensitivity, error) {
	if len(names) == 0 {
		if keys != nil {
			return nil, errors.New("a key ring (Keys) given without Sensitive fields")
		}
		return nil, nil
	}
	if keys == nil {
		return nil, errors.New("sensitive fields need a key ring (Keys) to encrypt them at rest")
	}
	s := &sensitivity{names: map[string]bool{}, keys: keys}
	for _, n := range names {
		if n == "" {
			return nil, errors.New("an empty name in Sensitive")
		}
		s.names[n] = true
	}
	return s, nil
}

// is reports whether field is sensitive; a nil sensitivity has none.
func (s *sensitivity) is(field string) bool { return s != nil && s.names[field] }

// hashValue is the hash by which the engine recognises a field's value
// (echoes, equality): keyed (HMAC) for a sensitive field, so that a store
// never holds an unkeyed hash of a guessable value.
func (s *sensitivity) hashValue(field string, v concord.Value) (uint64, error) {
	if !s.is(field) {
		return concord.HashValue(v)
	}
	b, err := concord.AppendCanonical(nil, v)
	if err != nil {
		return 0, err
	}
	return s.keys.Hash(field, b), nil
}

// hashUnit is the hash of the canonical encoding b of unit's fields.
func (s *sensitivity) hashUnit(fields []string, b []byte) uint64 {
	if len(b) == 0 || s == nil || !slices.ContainsFunc(fields, s.is) {
		return concord.HashBytes(b)
	}
	return s.keys.Hash(strings.Join(fields, "\x00"), b)
}

// redactValues returns m with the values of sensitive fields replaced by
// Redacted (m itself if it has none).
func (s *sensitivity) redactValues(m map[string]concord.Value) map[string]concord.Value {
	if s == nil || m == nil {
		return m
	}
	var out map[string]concord.Value
	for f, v := range m {
		if s.names[f] && v != nil {
			if out == nil {
				out = maps.Clone(m)
			}
			out[f] = Redacted
		}
	}
	if out == nil {
		return m
	}
	return out
}

// redactRecord returns r with its sensitive values redacted.
func (s *sensitivity) redactRecord(r concord.Record) concord.Record {
	r.Fields = s.redactValues(r.Fields)
	return r
}

// texts collects the renderings of the sensitive values in maps, longest
// first, to be searched for in error texts.
func (s *sensitivity) texts(ms ...map[string]concord.Value) []string {
	if s == nil {
		return nil
	}
	var out []string
	var add func(v concord.Value)
	add = func(v concord.Value) {
		switch x := v.(type) {
		case nil:
		case map[string]concord.Value:
			for _, y := range x {
				add(y)
			}
		case []concord.Value:
			for _, y := range x {
				add(y)
			}
		case []byte:
			out = append(out, string(x), fmt.Sprint(x))
		default:
			out = append(out, fmt.Sprint(x))
		}
	}
	for _, m := range ms {
		for f, v := range m {
			if s.names[f] {
				add(v)
			}
		}
	}
	out = slices.DeleteFunc(out, func(t string) bool { return len(t) < minRedacted })
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return slices.Compact(out)
}

// redactText replaces every rendering in texts found in t.
func redactText(t string, texts []string) string {
	for _, x := range texts {
		t = strings.ReplaceAll(t, x, Redacted)
	}
	return t
}

// redactedError is an error whose text has sensitive values redacted; it
// unwraps to the original, so that errors.Is and errors.As still see the
// causes.
type redactedError struct {
	err  error
	text string
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err with the sensitive values of the maps redacted
// from its text (err itself if there is nothing to redact).
func (s *sensitivity) redactErr(err error, ms ...map[string]concord.Value) error {
	if err == nil || s == nil {
		return err
	}
	texts := s.texts(ms...)
	if len(texts) == 0 {
		return err
	}
	t := redactText(err.Error(), texts)
	if t == err.Error() {
		return err
	}
	return &redactedError{err, t}
}

// redactEvent redacts the sensitive values of ev, in its value maps and
// in its texts.
func (s *sensitivity) redactEvent(ev *audit.Event) {
	if s == nil {
		return
	}
	ms := []map[string]concord.Value{ev.From, ev.To}
	for _, c := range ev.Candidates {
		ms = append(ms, c.Values)
	}
	if texts := s.texts(ms...); len(texts) > 0 {
		ev.Error, ev.Reason = redactText(ev.Error, texts), redactText(ev.Reason, texts)
	}
	ev.From, ev.To = s.redactValues(ev.From), s.redactValues(ev.To)
	if len(ev.Candidates) > 0 {
		cands := slices.Clone(ev.Candidates)
		for i := range cands {
			cands[i].Values = s.redactValues(cands[i].Values)
		}
		ev.Candidates = cands
	}
}

// redactHold returns h with the sensitive values of its candidates and
// base redacted.
func (s *sensitivity) redactHold(h HeldConflict) HeldConflict {
	if s == nil {
		return h
	}
	var ms []map[string]concord.Value
	cands := slices.Clone(h.Candidates)
	for i := range cands {
		ms = append(ms, cands[i].Values)
		cands[i].Values = s.redactValues(cands[i].Values)
	}
	h.Reason = redactText(h.Reason, s.texts(append(ms, h.Base)...))
	h.Candidates, h.Base = cands, s.redactValues(h.Base)
	return h
}

// redactDeadLetter returns d with its sensitive values redacted, in its
// payloads and its reason.
func (s *sensitivity) redactDeadLetter(d DeadLetter) DeadLetter {
	if s == nil {
		return d
	}
	d.Reason = redactText(d.Reason, s.texts(d.Record.Fields, d.Transformed.Fields))
	d.Record, d.Transformed = s.redactRecord(d.Record), s.redactRecord(d.Transformed)
	return d
}

// Reseal re-encrypts, under the current key of Config.Keys, every stored
// value sealed under an older key (after a rotation: a ring with the new
// key current and the old ones kept, or seal.KeyRing.Rotate), and seals
// the values of fields newly declared sensitive that were stored in the
// clear. Once it returns without error, the old keys may be retired. It
// takes the pipeline's lease, works in pages, and returns how many record
// states and dead letters it rewrote. A rewritten dead letter gets a new
// ID. Without sensitive fields it does nothing.
func (e *Engine) Reseal(ctx context.Context) (states, deadLetters int, err error) {
	if e.sens == nil {
		return 0, 0, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, release, err := e.begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	codec, raw := e.store.codec, e.store.Store
	for after := ""; ; {
		keys, err := raw.Keys(ctx, after, 200)
		if err != nil || len(keys) == 0 {
			if err != nil {
				return states, deadLetters, fmt.Errorf("concord: Reseal: listing records after %q: %w", after, err)
			}
			break
		}
		after = keys[len(keys)-1]
		stored, err := raw.Load(ctx, keys)
		if err != nil {
			return states, deadLetters, fmt.Errorf("concord: Reseal: %w", err)
		}
		commit := &store.Commit{Lease: c.lease}
		for _, k := range keys {
			ss, ok := stored[k]
			if !ok {
				continue
			}
			ns, changed, err := codec.ResealState(k, ss)
			if err != nil {
				return states, deadLetters, fmt.Errorf("concord: Reseal: record %q: %w", k, err)
			}
			if changed {
				commit.States = append(commit.States, ns)
			}
		}
		if len(commit.States) > 0 {
			if err := raw.Commit(ctx, commit); err != nil {
				return states, deadLetters, fmt.Errorf("concord: Reseal: %w", err)
			}
			states += len(commit.States)
		}
	}
	dead, err := raw.DeadLetters(ctx)
	if err != nil {
		return states, deadLetters, fmt.Errorf("concord: Reseal: listing dead letters: %w", err)
	}
	for _, sd := range dead {
		nd, changed, err := codec.ResealLetter(sd)
		if err != nil {
			return states, deadLetters, fmt.Errorf("concord: Reseal: %w", err)
		}
		if !changed {
			continue
		}
		if err := raw.Commit(ctx, &store.Commit{Lease: c.lease, DeadLetters: []store.DeadLetter{nd}, RemoveDeadLetters: []uint64{sd.ID}}); err != nil {
			return states, deadLetters, fmt.Errorf("concord: Reseal: dead letter %d: %w", sd.ID, err)
		}
		deadLetters++
	}
	return states, deadLetters, nil
}
