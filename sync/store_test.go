package sync_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// damaging flips one byte of every state's Data it returns (or only key's,
// if set), under any checksum a store keeps: the engine's own finds it.
type damaging struct {
	store.Store
	on  bool
	key string
}

func (d *damaging) Load(ctx context.Context, keys []string) (map[string]store.State, error) {
	m, err := d.Store.Load(ctx, keys)
	for k, st := range m {
		if d.on && len(st.Data) > 10 && (d.key == "" || d.key == k) {
			st.Data[len(st.Data)/2] ^= 0x40
			m[k] = st
		}
	}
	return m, err
}

// noScan refuses to list dead letters once on: Replay and Discard must
// look one up.
type noScan struct {
	store.Store
	on bool
}

func (s *noScan) DeadLetters(ctx context.Context) ([]store.DeadLetter, error) {
	if s.on {
		return nil, errors.New("noScan: DeadLetters called")
	}
	return s.Store.DeadLetters(ctx)
}

func twoSystems(t *testing.T, s store.Store) (*recsync.Engine, *fake.System, *fake.System) {
	t.Helper()
	a, b := fake.New("a"), fake.New("b")
	e, err := recsync.New(recsync.Config{Store: s, Resolver: resolve.LastWriterWins(),
		Systems: []recsync.System{{ID: "a", Connector: a}, {ID: "b", Connector: b}}})
	if err != nil {
		t.Fatal(err)
	}
	return e, a, b
}

func TestDamagedStateIsAnErrorNamingTheKey(t *testing.T) {
	ctx := context.Background()
	d := &damaging{Store: store.NewMemory()}
	e, a, _ := twoSystems(t, d)
	a.Edit("c1", map[string]any{"name": "Ada"})
	if _, err := e.RunCycle(ctx); err != nil {
		t.Fatal(err)
	}
	d.on = true
	a.Edit("c1", map[string]any{"name": "Grace"})
	_, err := e.RunCycle(ctx)
	if !errors.Is(err, recsync.ErrDamaged) || !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), `"c1"`) {
		t.Fatalf("RunCycle over a damaged state = %v; want ErrDamaged naming c1", err)
	}
}

func TestReplayAndDiscardLookUpByID(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	ns := &noScan{Store: mem}
	e, a, b := twoSystems(t, ns)
	a.Edit("c1", map[string]any{"name": "Ada"})
	a.Edit("c2", map[string]any{"name": "Bob"})
	b.FailKey("c1", connector.Permanent(errors.New("422")))
	b.FailKey("c2", connector.Permanent(errors.New("422")))
	_, _ = e.RunCycle(ctx) // the permanent failures dead-letter both writes
	dead := storedDeadLetters(t, mem)
	if len(dead) != 2 {
		t.Fatalf("dead letters %+v; want the two writes", dead)
	}
	ns.on = true
	if err := e.Replay(ctx, recsync.DeadLetterAction{ID: 1 << 40, Person: "ops"}); !errors.Is(err, recsync.ErrNoDeadLetter) {
		t.Fatalf("Replay of an unknown ID = %v; want ErrNoDeadLetter", err)
	}
	if err := e.Discard(ctx, recsync.DeadLetterAction{ID: dead[0].ID, Reason: "tested", Person: "ops"}); err != nil {
		t.Fatalf("Discard by ID (without listing): %v", err)
	}
	if err := e.Discard(ctx, recsync.DeadLetterAction{ID: dead[0].ID, Reason: "again", Person: "ops"}); !errors.Is(err, recsync.ErrNoDeadLetter) {
		t.Fatalf("second Discard = %v; want ErrNoDeadLetter", err)
	}
	b.ClearFailKey("c2")
	if err := e.Replay(ctx, recsync.DeadLetterAction{ID: dead[1].ID, Person: "ops"}); err != nil {
		t.Fatalf("Replay by ID (without listing): %v", err)
	}
	ns.on = false
	if left := storedDeadLetters(t, mem); len(left) != 0 {
		t.Fatalf("dead letters left: %+v", left)
	}
}
