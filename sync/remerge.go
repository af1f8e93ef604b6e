package sync

import (
	"context"
	"fmt"
	"slices"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

// remerge adds to the cycle's observations the records of the merge dead
// letters that are still retried, unless the cycle read a fresher one from
// the same system. It reads the merge dead letters alone, by the store's
// index by class: a cycle costs nothing per dead letter of another class.
func (c *cycle) remerge(ctx context.Context) error {
	dead, bad, err := c.e.store.DeadLettersOfClass(ctx, ClassMerge)
	if err != nil {
		return fmt.Errorf("concord: listing merge dead letters: %w", err)
	}
	c.unreadableLetters(bad)
	// Replaying one report of a failed merge replays the whole merge.
	replayed := map[string]bool{}
	for _, d := range dead {
		if d.Class == ClassMerge.String() && slices.Contains(c.removeDead, d.ID) {
			replayed[d.Key] = true
		}
	}
	for _, d := range dead {
		s := c.e.byID[d.System]
		if !d.Inbound || d.Class != ClassMerge.String() || s == nil || slices.Contains(c.removeDead, d.ID) ||
			(d.Attempts >= c.e.retry.MaxRecordAttempts && !replayed[d.Key]) {
			continue
		}
		if c.remerging == nil {
			c.remerging = map[string][]DeadLetter{}
		}
		if i := slices.IndexFunc(c.obs[d.Key], func(o *observation) bool { return o.sys == s }); i >= 0 {
			if !c.obs[d.Key][i].pushed {
				c.remerging[d.Key] = append(c.remerging[d.Key], d) // superseded by this cycle's read
				continue
			}
			// A pushed state (a webhook) does not supersede what the
			// system reported before and the engine could not merge
			// yet: it may be older (delivered late), and nothing tells
			// the two apart without the state the failed merge could not
			// use. The dead letter's record is merged; the pushed state
			// is left to the change feed, which reads the system's
			// current state (as for a pushed state no newer than the
			// engine knows). Taking it instead lost a delete the feed
			// had brought, under a late webhook of the record from
			// before the delete.
			c.obs[d.Key] = slices.Delete(c.obs[d.Key], i, i+1)
		}
		before := len(c.dead)
		if err := c.observe(ctx, s, []concord.Record{d.Record}, d.Whole); err != nil {
			return err
		}
		c.report.Systems[s.id].Read-- // not a read: a retry
		for _, o := range c.obs[d.Key] {
			// The system's one observation of the key: d's record, or
			// an earlier letter's that observe kept instead (already
			// marked). A read of this cycle would have superseded d.
			if o.sys == s && !o.letter {
				o.letter, o.letterID = true, d.ID
			}
		}
		if len(c.dead) > before {
			// No longer usable (a transform changed): the new dead
			// letter replaces this one.
			c.removeDead = append(c.removeDead, d.ID)
			continue
		}
		c.remerging[d.Key] = append(c.remerging[d.Key], d)
	}
	return nil
}

// unreadableLetters reports the dead letters the cycle met and could not
// decode (damaged, sealed under a retired key, of a newer format), once
// each per cycle: one such letter fails itself, never the cycle. It stays
// in the store until it reads again or a person discards it
// (Engine.Discard removes it unread).
func (c *cycle) unreadableLetters(bad []badLetter) {
	for _, b := range bad {
		if c.badLetters[b.id] {
			continue
		}
		if c.badLetters == nil {
			c.badLetters = map[uint64]bool{}
		}
		c.badLetters[b.id] = true
		f := Failure{System: b.system, Key: b.key, Op: OpMerge, Err: fmt.Errorf("concord: dead letter %d cannot be read: %w", b.id, b.err)}
		c.report.Failures = append(c.report.Failures, f)
		if r := c.report.Systems[b.system]; r != nil {
			r.Failed++
		}
	}
}

// keepForRemerge keeps the records of key that this cycle observed, whose
// merge failed with err, as merge dead letters, replacing those it merged
// again. It runs within finish's merge loop, where the cycle's audit events
// are the merger's.
func (c *cycle) keepForRemerge(key string, err error) {
	m := c.e.merger
	attempts, first := 0, c.e.now()
	for _, d := range c.remerging[key] {
		if !slices.Contains(c.removeDead, d.ID) {
			c.removeDead = append(c.removeDead, d.ID)
		}
		if d.Attempts > attempts {
			attempts = d.Attempts
		}
		if !d.FirstFailed.IsZero() && d.FirstFailed.Before(first) {
			first = d.FirstFailed
		}
	}
	attempts++
	reason := fmt.Sprintf("merge failed (attempt %d of %d); merged again next cycle", attempts, c.e.retry.MaxRecordAttempts)
	if attempts >= c.e.retry.MaxRecordAttempts {
		reason = fmt.Sprintf("merge failed %d times; kept until replayed", attempts)
	}
	for _, o := range c.obs[key] {
		c.dead = append(c.dead, DeadLetter{System: o.sys.id, Key: key, Inbound: true, Record: o.raw.Clone(), Transformed: o.rec.Clone(), Whole: o.full,
			Reason: deadReason(err), Class: ClassMerge.String(), Attempts: attempts, FirstFailed: first, When: c.e.now()})
		m.events = append(m.events, audit.Event{Time: c.e.now(), Kind: audit.RecordQuarantined, Cycle: c.report.Cycle,
			System: o.sys.id, Key: key, Error: err.Error(), ErrorClass: classOf(err).String(), Reason: reason})
	}
}
