package sync_test

import (
	"context"
	"testing"

	"github.com/concordsync/concord/internal/state"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// storedDeadLetters decodes the dead letters in s, as the engine would.
func storedDeadLetters(t testing.TB, s store.Store) []recsync.DeadLetter {
	t.Helper()
	stored, err := s.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]recsync.DeadLetter, len(stored))
	for i, sd := range stored {
		d, err := state.DecodeDeadLetter(sd.Data)
		if err != nil {
			t.Fatalf("dead letter %d: %v", sd.ID, err)
		}
		d.ID = sd.ID
		out[i] = recsync.DeadLetter(d)
	}
	return out
}

// fataler is what storedStates needs of a *testing.T or *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// storedStates decodes the states of keys in s, as the engine would.
func storedStates(t fataler, s store.Store, keys ...string) map[string]*state.Record {
	t.Helper()
	stored, err := s.Load(context.Background(), keys)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	out := make(map[string]*state.Record, len(stored))
	for k, ss := range stored {
		st, err := state.DecodeState(ss.Data)
		if err != nil {
			t.Fatalf("record %q: %v", k, err)
		}
		out[k] = st
	}
	return out
}
