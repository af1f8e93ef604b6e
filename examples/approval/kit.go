package main

// What the story needs to be told the same way on every run: a clock that
// stands still until the story moves it, and a throwaway durable store.
// Nothing here is needed to use Concord; it is copied into each example so
// that each program builds on its own when copied out of this repository.

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/concordsync/concord/sync/store/boltstore"
)

// storyClock is the clock of the systems, the engine and whatever else the
// story runs. Safe for concurrent use: the engine calls systems in
// parallel.
type storyClock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the story's time.
func (c *storyClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to hh:mm on the day of the story (2 March 2026, UTC).
// It panics on a malformed time: a typo in the story.
func (c *storyClock) Set(hhmm string) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = time.Date(2026, 3, 2, t.Hour(), t.Minute(), 0, 0, time.UTC)
}

// tempStore opens the embedded durable store in a new temporary directory
// named after the example, at path. Calling done closes it and removes the
// directory.
func tempStore(name string) (store *boltstore.Store, path string, done func(), err error) {
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		return nil, "", nil, err
	}
	path = filepath.Join(dir, "concord.db")
	store, err = boltstore.Open(path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	return store, path, func() { store.Close(); os.RemoveAll(dir) }, nil
}
