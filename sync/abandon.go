package sync

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"time"
)

// ErrAbandoned is the error of a call into a connector, audit sink or
// alerter that the engine stopped waiting for: the call's context ended
// (the host cancelled the cycle, or its deadline passed) and the call did
// not return within [AbandonAfter], against the contracts, which ask for
// ctx.Err() promptly. It is also the error of every later call to the same
// component until the abandoned one returns: the engine never calls a
// component again while a call of its own may still be running there.
var ErrAbandoned = errors.New("concord: call abandoned: it did not return after its context ended")

// AbandonAfter is how long the engine waits for a call into a connector,
// audit sink or alerter once the call's context has ended.
const AbandonAfter = 5 * time.Second

// callGate belongs to one component (a system's connector and its
// abilities, the audit sink, the alerter). It lets the engine give up on a
// call that ignores its context, so that a misbehaving component cannot
// hang a cycle (and a host's shutdown) forever, and it refuses the
// component's calls while that call still runs.
type callGate struct {
	mu    gosync.Mutex
	stuck *inflight // the abandoned call still running, if any
	call  string    // its name
	since time.Time // when it was abandoned
}

// inflight is one call; finished is set (under the gate's lock) when it
// returns.
type inflight struct{ finished bool }

// run runs f in a goroutine of its own, as isolate does (a panic or
// runtime.Goexit is a *PanicError for call), and waits for it; once ctx
// has ended it waits at most AbandonAfter more, then returns ErrAbandoned
// and leaves f to finish on its own. f must write only what the caller
// reads after a nil error: the results of an abandoned call are never
// read.
func (g *callGate) run(ctx context.Context, call string, f func()) error {
	g.mu.Lock()
	if g.stuck != nil {
		err := fmt.Errorf("%w: %s, abandoned %s ago, has not returned; %s refused", ErrAbandoned, g.call, time.Since(g.since).Round(time.Second), call)
		g.mu.Unlock()
		return err
	}
	g.mu.Unlock()
	c := &inflight{}
	done := make(chan error, 1)
	go func() {
		normal := false
		defer func() {
			var err error
			if !normal {
				v := recover()
				if v == nil {
					v = GoexitValue // recover returns nil only during Goexit
				}
				err = newPanicError(call, v)
			}
			g.mu.Lock()
			c.finished = true
			if g.stuck == c {
				g.stuck = nil // the component may be called again
			}
			g.mu.Unlock()
			done <- err
		}()
		f()
		normal = true
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(AbandonAfter)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.finished { // between the timer and the lock
		return <-done
	}
	g.stuck, g.call, g.since = c, call, time.Now()
	return fmt.Errorf("%w: %s did not return within %s of its context's end: %w", ErrAbandoned, call, AbandonAfter, context.Cause(ctx))
}
