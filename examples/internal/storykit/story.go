// Package storykit holds what the example programs share to tell their stories
// reproducibly: a clock that stands still until the story moves it, and a
// throwaway durable store. Nothing here is needed to use Concord.
package storykit

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/concordsync/concord/sync/store/boltstore"
)

// Clock is the clock of the systems, the engine and whatever else a story
// runs. It stands still until the story sets it, so every timestamp in the
// output is reproducible. Safe for concurrent use: the engine calls systems
// in parallel.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the story's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to hh:mm on the day of the story (2 March 2026, UTC).
// It panics on a malformed time: a typo in the story.
func (c *Clock) Set(hhmm string) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = time.Date(2026, 3, 2, t.Hour(), t.Minute(), 0, 0, time.UTC)
}

// TempStore opens the embedded durable store in a new temporary directory
// named after the example. Calling done closes it and removes the directory.
func TempStore(name string) (store *boltstore.Store, done func(), err error) {
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		return nil, nil, err
	}
	store, err = boltstore.Open(filepath.Join(dir, "concord.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return store, func() { store.Close(); os.RemoveAll(dir) }, nil
}
