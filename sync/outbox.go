package sync

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/sync/store"
)

// The audit trail is an outbox in the store: every audit event is
// committed, as an entry of a hash chain (package audit: Seq, the SHA-256
// of the previous entry, the event), in the same atomic commit as the
// state it describes; then it is delivered to Config.Audit. A crash or a
// failing sink between the commit and the delivery loses nothing: the
// next cycle (or call) delivers every committed entry after the last one
// delivered, at least once, in order, each event carrying its Seq so that
// a sink can drop one it already has. [Engine.VerifyAudit] checks the
// chain in the store; [Engine.AuditCheckpoint] signs its head.

// deliveredValue is the engine value holding the Seq of the last entry
// delivered to the sink (8 bytes, big-endian).
const deliveredValue = "audit/delivered"

// deliverPage is how many stored entries one delivery reads at a time;
// maxDeliverPages bounds one call's catching up.
const (
	deliverPage     = 500
	maxDeliverPages = 20
)

// outbox is what the engine knows of its audit log.
type outbox struct {
	head      audit.Head // the store's last entry, as of the last load or commit
	delivered uint64     // the last Seq delivered to the sink
	stored    uint64     // the delivered mark as committed
}

// ErrAuditEncoding is wrapped by the error for an audit event that cannot
// be committed to the store's audit log even with its values left out;
// it never happens with events the engine builds from valid records.
var ErrAuditEncoding = errors.New("concord: audit event cannot be encoded")

// loadAudit reads the head of the store's audit log and the delivered
// mark.
func (e *Engine) loadAudit(ctx context.Context) error {
	ae, err := e.store.AuditHead(ctx)
	if err != nil {
		return fmt.Errorf("concord: reading the audit log's head: %w", err)
	}
	head := audit.Head{}
	if ae.Seq > 0 {
		entry, err := audit.DecodeEntry(ae.Data)
		if err != nil || entry.Seq != ae.Seq {
			return fmt.Errorf("%w: audit log entry %d: %v", ErrDamaged, ae.Seq, err)
		}
		head = entry.Head()
	}
	b, err := e.store.Value(ctx, deliveredValue)
	if err != nil {
		return fmt.Errorf("concord: reading the audit delivery mark: %w", err)
	}
	var stored uint64
	if b != nil {
		if len(b) != 8 {
			return fmt.Errorf("%w: the audit delivery mark has %d bytes", ErrDamaged, len(b))
		}
		stored = binary.BigEndian.Uint64(b)
	}
	e.out.head, e.out.stored = head, stored
	e.out.delivered = min(max(e.out.delivered, stored), head.Seq)
	return nil
}

// stage adds events to b as audit log entries following the known head
// (after any entries b has already), and the delivered mark if it moved.
// Nothing changes in e until the commit succeeds ([Engine.committed]).
func (e *Engine) stage(b *batch, events []audit.Event) error {
	for i := range events {
		e.sens.redactEvent(&events[i]) // the one point every event passes
	}
	if b.chain == nil {
		b.chain = audit.NewChain(e.out.head)
	}
	ch := b.chain // one per batch: its head follows b's entries, its scratch space serves every part
	first := ch.Head().Seq + 1
	out, stored, err := e.appendTo(ch, events...)
	if err != nil {
		// A value JSON cannot carry: keep that event, without its
		// values, rather than stall the commit.
		out, stored = nil, make([][]byte, 0, len(events))
		for _, ev := range events {
			entries, data, err := e.appendTo(ch, ev)
			if err != nil && len(ev.Units) > 0 {
				// An event about several units: leave out only the
				// values that cannot be carried.
				if kept, left := encodableValues(ev); len(left) > 0 {
					kept.Reason += fmt.Sprintf(" (values of %s left out of the audit log: %v)", strings.Join(left, ", "), err)
					entries, data, err = e.appendTo(ch, kept)
				}
			}
			if err != nil {
				ev.From, ev.To, ev.Candidates = nil, nil, nil
				ev.Reason += fmt.Sprintf(" (values left out of the audit log: %v)", err)
				if entries, data, err = e.appendTo(ch, ev); err != nil {
					return fmt.Errorf("%w: %v", ErrAuditEncoding, err)
				}
			}
			out, stored = append(out, entries...), append(stored, data...)
		}
	}
	if len(stored) > 0 {
		b.Audit = slices.Grow(b.Audit, len(stored))
		for i, data := range stored {
			b.Audit = append(b.Audit, store.AuditEntry{Seq: first + uint64(i), Data: data})
		}
		if !e.sinkless {
			b.entries = append(b.entries, out)
		}
	}
	if e.out.delivered > e.out.stored {
		if b.Values == nil {
			b.Values = map[string][]byte{}
		}
		b.Values[deliveredValue] = binary.BigEndian.AppendUint64(nil, e.out.delivered)
	}
	return nil
}

// encodableValues returns ev with only the values of From and To that an
// audit event can carry, and the fields whose values it left out, sorted.
func encodableValues(ev audit.Event) (audit.Event, []string) {
	var left []string
	keep := func(m map[string]concord.Value) map[string]concord.Value {
		if m == nil {
			return nil
		}
		out := make(map[string]concord.Value, len(m))
		for f, v := range m {
			if _, err := audit.NewChain(audit.Head{}).AppendStored(audit.Event{To: map[string]concord.Value{f: v}}); err != nil {
				if !slices.Contains(left, f) {
					left = append(left, f)
				}
				continue
			}
			out[f] = v
		}
		return out
	}
	ev.From, ev.To = keep(ev.From), keep(ev.To)
	slices.Sort(left)
	return ev, left
}

// appendTo appends events to ch and returns their stored forms, and the
// entries to deliver unless the engine has no sink (then none are built).
func (e *Engine) appendTo(ch *audit.Chain, events ...audit.Event) ([]audit.Entry, [][]byte, error) {
	if e.sinkless {
		stored, err := ch.AppendStored(events...)
		return nil, stored, err
	}
	return ch.AppendEncoded(events...)
}

// stageLog stages the events of l from the i-th on (see [Engine.stage]).
func (e *Engine) stageLog(b *batch, l *eventLog, i int) error {
	b.Audit = slices.Grow(b.Audit, l.len()-i) // once, not part by part
	for _, part := range l.parts(i) {
		if err := e.stage(b, part); err != nil {
			return err
		}
	}
	if b.chain == nil || e.out.delivered > e.out.stored {
		return e.stage(b, nil) // the delivered mark
	}
	return nil
}

// committed records that b was committed.
func (e *Engine) committed(b *batch) {
	if b.chain != nil {
		e.out.head = b.chain.Head()
	}
	if v, ok := b.Values[deliveredValue]; ok {
		e.out.stored = binary.BigEndian.Uint64(v)
	}
}

// commitAudited commits b with events in the audit log, then delivers
// them. An error from the delivery is returned (wrapped in an
// [*AuditError]) after a successful commit: the events are in the log and
// the next call or cycle delivers them.
func (e *Engine) commitAudited(ctx context.Context, b *batch, events []audit.Event) error {
	if err := e.loadAudit(ctx); err != nil {
		return err
	}
	if err := e.stage(b, events); err != nil {
		return err
	}
	if err := e.store.Commit(ctx, b); err != nil {
		return err
	}
	e.committed(b)
	return e.deliver(ctx, b.entries)
}

// AuditError is returned when changes were committed, with their audit
// events in the store's audit log, but the audit sink failed to take them:
// they are delivered again, at least once and in order, by the next cycle
// or call.
type AuditError struct{ Err error }

// Error says that the sink failed and that the events wait in the log.
func (e *AuditError) Error() string {
	return "concord: audit sink failed (the events are kept in the store's audit log and delivered later): " + e.Err.Error()
}

// Unwrap returns the sink's error.
func (e *AuditError) Unwrap() error { return e.Err }

// deliver hands the sink every committed entry after the last delivered,
// in order: from fresh (just committed, in parts, if they follow it) or
// else from the store. Without a sink there is nothing to hand over: the
// mark moves to the head.
func (e *Engine) deliver(ctx context.Context, fresh [][]audit.Entry) error {
	if e.sinkless {
		e.out.delivered = max(e.out.delivered, e.out.head.Seq)
		return nil
	}
	for pages := 0; pages < maxDeliverPages; {
		if e.out.delivered >= e.out.head.Seq {
			return nil
		}
		for len(fresh) > 0 && (len(fresh[0]) == 0 || fresh[0][len(fresh[0])-1].Seq <= e.out.delivered) {
			fresh = fresh[1:] // delivered already
		}
		var page []audit.Entry
		if len(fresh) > 0 && fresh[0][0].Seq <= e.out.delivered+1 {
			// Every fresh entry not delivered yet, in one page: they
			// follow each other.
			n := 0
			for _, p := range fresh {
				n += len(p)
			}
			page = make([]audit.Entry, 0, n)
			page = append(page, fresh[0][e.out.delivered+1-fresh[0][0].Seq:]...)
			for _, p := range fresh[1:] {
				page = append(page, p...)
			}
			fresh = nil
		} else {
			pages++
			limit := deliverPage
			if len(fresh) > 0 && fresh[0][0].Seq > e.out.delivered+1 {
				// Up to the fresh entries, which keep their values' Go
				// types (entries read back from the log decode numbers
				// as json.Number, times as text).
				limit = int(min(uint64(limit), fresh[0][0].Seq-1-e.out.delivered))
			}
			stored, err := e.store.AuditEntries(ctx, e.out.delivered, limit)
			if err != nil {
				return &AuditError{fmt.Errorf("reading the audit log after entry %d: %w", e.out.delivered, err)}
			}
			if len(stored) == 0 {
				return nil
			}
			for _, se := range stored {
				en, err := audit.DecodeEntry(se.Data)
				if err != nil || en.Seq != se.Seq {
					return &AuditError{fmt.Errorf("%w: audit log entry %d: %v", ErrDamaged, se.Seq, err)}
				}
				page = append(page, en)
			}
		}
		events := make([]audit.Event, len(page))
		for i, en := range page {
			events[i] = en.Event
		}
		if err := e.audit.Emit(ctx, events); err != nil {
			return &AuditError{err}
		}
		e.out.delivered = page[len(page)-1].Seq
	}
	return nil
}

// auditEntries iterates over the store's audit log from the first entry.
func (e *Engine) auditEntries(ctx context.Context) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		var after uint64
		for {
			page, err := e.store.AuditEntries(ctx, after, deliverPage)
			if err != nil {
				yield(audit.Entry{}, err)
				return
			}
			if len(page) == 0 {
				return
			}
			for _, se := range page {
				en, err := audit.DecodeEntry(se.Data)
				if err == nil && en.Seq != se.Seq {
					err = fmt.Errorf("%w: stored as entry %d, decodes as entry %d", audit.ErrMalformed, se.Seq, en.Seq)
				}
				if err != nil {
					en.Seq = se.Seq
				}
				if !yield(en, err) {
					return
				}
				after = se.Seq
			}
		}
	}
}

// VerifyAudit checks the audit log in the store: every entry's hash
// matches its bytes, the entries follow each other from the first without
// gap or reordering, and every checkpoint given (audit.WithCheckpoint,
// after checking its signature) matches. A fault is an [*audit.TamperError]
// naming the entry (errors.Is audit.ErrTampered).
func (e *Engine) VerifyAudit(ctx context.Context, opts ...audit.VerifyOption) (audit.Result, error) {
	return audit.VerifyEntries(e.auditEntries(ctx), opts...)
}

// ErrAuditEmpty is returned by [Engine.AuditCheckpoint] when the store's
// audit log has no entry yet: there is no head to sign.
var ErrAuditEmpty = errors.New("concord: the audit log is empty")

// AuditCheckpoint signs the head of the store's audit log with priv, the
// host's key, for the log named by Config.Pipeline: keep the text form
// (MarshalText) apart from the store; anyone with the public key can then
// check offline that the log still holds that entry and every one before
// it unchanged (audit.ParseCheckpoint, SignedCheckpoint.Verify,
// Engine.VerifyAudit or audit.VerifyJSONLines with audit.WithCheckpoint,
// or the concord-audit command).
func (e *Engine) AuditCheckpoint(ctx context.Context, priv ed25519.PrivateKey) (audit.SignedCheckpoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.loadAudit(ctx); err != nil {
		return audit.SignedCheckpoint{}, err
	}
	if e.out.head.Seq == 0 {
		return audit.SignedCheckpoint{}, fmt.Errorf("concord: AuditCheckpoint: %w", ErrAuditEmpty)
	}
	return audit.SignCheckpoint(priv, audit.Checkpoint{Log: e.cfg.Pipeline, Seq: e.out.head.Seq, Hash: e.out.head.Hash, Time: e.now()})
}
