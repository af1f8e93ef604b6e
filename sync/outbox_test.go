package sync_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	gosync "sync"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// flakySink fails while down; it keeps what it was given otherwise.
type flakySink struct {
	mu     gosync.Mutex
	down   bool
	events []audit.Event
}

func (s *flakySink) Emit(_ context.Context, evs []audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("sink: connection refused")
	}
	s.events = append(s.events, evs...)
	return nil
}

func (s *flakySink) setDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }

// requireEverySeq checks that the sink got entries 1..n, each at least
// once, in order once duplicates are dropped, and returns n.
func (s *flakySink) requireEverySeq(t *testing.T) uint64 {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var last uint64
	for _, ev := range s.events {
		switch {
		case ev.Seq == 0:
			t.Fatalf("event %s without a Seq", ev.Kind)
		case ev.Seq <= last: // a duplicate: at least once
		case ev.Seq == last+1:
			last = ev.Seq
		default:
			t.Fatalf("the sink got entry %d after %d: entries %d..%d lost", ev.Seq, last, last+1, ev.Seq-1)
		}
	}
	return last
}

func TestAuditEventsSurviveAFailingSinkAndARestart(t *testing.T) {
	ctx := context.Background()
	sink := &flakySink{}
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, func(c *recsync.Config) { c.Audit = sink })
	r.sys["portal"].Edit("c1", map[string]any{"name": "Ada"})
	r.cycle()

	// The sink is down: the cycle's changes are committed, its events
	// kept in the store's audit log, and the failure reported.
	sink.setDown(true)
	r.sys["portal"].Edit("c1", map[string]any{"name": "Ada L."})
	r.sys["portal"].Edit("c2", map[string]any{"name": "Grace"})
	r.cycle()
	var ae *recsync.AuditError
	if !errors.As(r.lastErr, &ae) {
		t.Fatalf("cycle error %v; want an *AuditError", r.lastErr)
	}
	if got, _ := r.sys["warehouse"].Record("c2"); got.Fields["name"] != "Grace" {
		t.Fatal("a failing sink stopped the cycle's writes")
	}
	delivered := sink.requireEverySeq(t)

	// The process dies before the sink comes back; a new one delivers
	// what the old one committed, first.
	sink.setDown(false)
	r.engine = r.newEngine()
	r.cycle()
	if r.lastErr != nil {
		t.Fatal(r.lastErr)
	}
	n := sink.requireEverySeq(t)
	if n <= delivered {
		t.Fatalf("after the restart the sink has entries up to %d; want more than the %d delivered before", n, delivered)
	}
	res, err := r.engine.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Head.Seq != n || uint64(res.Entries) != n {
		t.Fatalf("VerifyAudit: %+v; want %d entries, all delivered", res, n)
	}
}

// tamperingStore changes what AuditEntries returns.
type tamperingStore struct {
	store.Store
	edit func([]store.AuditEntry) []store.AuditEntry
}

func (s *tamperingStore) AuditEntries(ctx context.Context, after uint64, limit int) ([]store.AuditEntry, error) {
	got, err := s.Store.AuditEntries(ctx, after, limit)
	if err != nil || s.edit == nil {
		return got, err
	}
	return s.edit(got), nil
}

func TestVerifyAuditFindsTamperingAndChecksCheckpoints(t *testing.T) {
	ctx := context.Background()
	ts := &tamperingStore{Store: store.NewMemory()}
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, func(c *recsync.Config) { c.Store = ts; c.Pipeline = "customers" })
	for i := range 40 {
		r.sys["portal"].Edit(fmt.Sprintf("c%d", i%7), map[string]any{"n": i})
		r.cycle()
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := r.engine.AuditCheckpoint(ctx, priv)
	if err != nil {
		t.Fatal(err)
	}
	text, err := signed.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	// Offline: only the text and the public key.
	cp, err := audit.ParseCheckpoint(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Verify(pub); err != nil {
		t.Fatal(err)
	}
	if cp.Log != "customers" {
		t.Errorf("checkpoint log %q; want the pipeline", cp.Log)
	}
	res, err := r.engine.VerifyAudit(ctx, audit.WithCheckpoint(cp.Checkpoint))
	if err != nil || res.Checkpoints != 1 || res.Head.Seq != cp.Seq {
		t.Fatalf("VerifyAudit = %+v, %v; want the whole log verified against the checkpoint", res, err)
	}
	head := cp.Seq
	if head < 20 {
		t.Fatalf("only %d audit entries after 40 cycles", head)
	}

	flip := func(seq uint64) func([]store.AuditEntry) []store.AuditEntry {
		return func(es []store.AuditEntry) []store.AuditEntry {
			for i := range es {
				if es[i].Seq == seq {
					es[i].Data[len(es[i].Data)-3] ^= 0x01
				}
			}
			return es
		}
	}
	drop := func(seq uint64) func([]store.AuditEntry) []store.AuditEntry {
		return func(es []store.AuditEntry) []store.AuditEntry {
			var out []store.AuditEntry
			for _, e := range es {
				if e.Seq != seq {
					out = append(out, e)
				}
			}
			return out
		}
	}
	for _, tc := range []struct {
		name string
		edit func([]store.AuditEntry) []store.AuditEntry
		seq  uint64
		kind audit.TamperKind
	}{
		{"flipped", flip(7), 7, audit.TamperModified},
		{"deleted", drop(9), 9, audit.TamperDeleted},
		{"truncated", func(es []store.AuditEntry) []store.AuditEntry {
			var out []store.AuditEntry
			for _, e := range es {
				if e.Seq < head-2 {
					out = append(out, e)
				}
			}
			return out
		}, head - 2, audit.TamperTruncated}, // the first entry missing
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.edit = tc.edit
			defer func() { ts.edit = nil }()
			_, err := r.engine.VerifyAudit(ctx, audit.WithCheckpoint(cp.Checkpoint))
			var te *audit.TamperError
			if !errors.As(err, &te) || !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("VerifyAudit: %v; want a *TamperError", err)
			}
			if te.Kind != tc.kind || te.Seq != tc.seq {
				t.Fatalf("VerifyAudit: %v (kind %v, entry %d); want %v at entry %d", err, te.Kind, te.Seq, tc.kind, tc.seq)
			}
		})
	}
}

func TestAuditCheckpointOfAnEmptyLog(t *testing.T) {
	e, err := recsync.New(twoFakes())
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	if _, err := e.AuditCheckpoint(context.Background(), priv); !errors.Is(err, recsync.ErrAuditEmpty) {
		t.Fatalf("checkpoint of an empty log: %v; want ErrAuditEmpty", err)
	}
}
