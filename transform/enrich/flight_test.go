package enrich_test

import (
	"context"

	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/enrich"
)

// gatedLookup is a Lookup that blocks every call until release is closed
// (or its ctx ends), counting calls per key.
type gatedLookup struct {
	release chan struct{}
	calls   sync.Map // key -> *atomic.Int32
	panicOn string
}

func newGated() *gatedLookup { return &gatedLookup{release: make(chan struct{})} }

func (g *gatedLookup) Lookup(ctx context.Context, key string) (map[string]concord.Value, error) {
	n, _ := g.calls.LoadOrStore(key, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if key == g.panicOn {
		panic("directory exploded on " + key)
	}
	return map[string]concord.Value{"industry": "Energy/" + key}, nil
}

func (g *gatedLookup) count(key string) int32 {
	n, ok := g.calls.Load(key)
	if !ok {
		return 0
	}
	return n.(*atomic.Int32).Load()
}

// N concurrent misses of one key call Lookup once and all get its answer;
// a different key still gets its own lookup. synctest.Wait makes sure every
// caller is waiting before the lookup answers, so the test cannot pass by
// luck of scheduling (without singleflight it sees N calls).
func TestConcurrentMissesLookUpOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 24
		g := newGated()
		e := newEnricher(t, enrich.Config{KeyField: "domain", Fields: []string{"industry"}, Lookup: g.Lookup})
		got := make([]concord.Record, n+1)
		errs := make([]error, n+1)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { got[i], errs[i] = e.Transform(t.Context(), rec("c", "domain", "acme.test")) })
		}
		wg.Go(func() { got[n], errs[n] = e.Transform(t.Context(), rec("c", "domain", "globex.test")) })
		synctest.Wait() // all n+1 callers are blocked: in the lookup or waiting for it
		close(g.release)
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i], "caller %d", i)
			assert.Equal(t, "Energy/acme.test", got[i].Fields["industry"], "caller %d", i)
		}
		require.NoError(t, errs[n])
		assert.Equal(t, "Energy/globex.test", got[n].Fields["industry"])
		assert.EqualValues(t, 1, g.count("acme.test"), "lookups of the shared key")
		assert.EqualValues(t, 1, g.count("globex.test"), "lookups of the other key")
		assert.Equal(t, enrich.Stats{Lookups: 2, Shared: n - 1}, e.Stats())

		// The answers are the callers' own: changing one changes no other.
		got[0].Fields["industry"] = "changed"
		assert.Equal(t, "Energy/acme.test", got[1].Fields["industry"])
	})
}

// A caller whose ctx ends stops waiting at once, with its own ctx's error,
// even though the lookup it waits for goes on; a caller that was waiting
// on a lookup that someone else's cancellation ended asks again and
// succeeds instead of inheriting a cancellation that was not its own.
func TestSharedLookupAndCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated()
		e := newEnricher(t, enrich.Config{KeyField: "domain", Fields: []string{"industry"}, Lookup: g.Lookup})
		leaderCtx, cancelLeader := context.WithCancel(t.Context())
		var leaderErr, followerErr error
		var follower concord.Record
		var wg sync.WaitGroup
		wg.Go(func() { _, leaderErr = e.Transform(leaderCtx, rec("c1", "domain", "acme.test")) })
		synctest.Wait() // the leader's lookup is running
		wg.Go(func() { follower, followerErr = e.Transform(t.Context(), rec("c2", "domain", "acme.test")) })
		synctest.Wait() // the follower waits for the leader's lookup
		cancelLeader()
		synctest.Wait() // the leader gave up; the follower asked again
		close(g.release)
		wg.Wait()

		require.ErrorIs(t, leaderErr, context.Canceled)
		var fe *transform.FieldError
		require.ErrorAs(t, leaderErr, &fe)
		assert.Equal(t, "c1", fe.Key)
		require.NoError(t, followerErr, "the follower inherited the leader's cancellation")
		assert.Equal(t, "Energy/acme.test", follower.Fields["industry"])
		assert.EqualValues(t, 2, g.count("acme.test"), "the leader's lookup, then the follower's")

		// A follower whose own ctx ends does not wait for the lookup.
		g2 := newGated()
		e2 := newEnricher(t, enrich.Config{KeyField: "domain", Fields: []string{"industry"}, Lookup: g2.Lookup})
		var wg2 sync.WaitGroup
		var leader2Err error
		wg2.Go(func() { _, leader2Err = e2.Transform(t.Context(), rec("c1", "domain", "initech.test")) })
		synctest.Wait()
		impatient, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := e2.Transform(impatient, rec("c2", "domain", "initech.test"))
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, "c2", fe.Key)
		close(g2.release)
		wg2.Wait()
		require.NoError(t, leader2Err)
	})
}

// A panicking Lookup fails every record waiting for it, naming the key,
// and crashes nothing (singleflight runs it on a goroutine of its own,
// where the engine's recover could not reach); the next miss asks again.
func TestLookupPanicFailsWaitersOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGated()
		g.panicOn = "acme.test"
		e := newEnricher(t, enrich.Config{KeyField: "domain", Fields: []string{"industry"}, Lookup: g.Lookup})
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() { _, errs[i] = e.Transform(t.Context(), rec("c", "domain", "acme.test")) })
		}
		synctest.Wait()
		close(g.release)
		wg.Wait()
		for i, err := range errs {
			require.ErrorIs(t, err, enrich.ErrLookupPanicked, "caller %d", i)
			assert.Contains(t, err.Error(), "directory exploded on acme.test")
			assert.Contains(t, err.Error(), `"acme.test"`)
		}
		assert.EqualValues(t, 1, g.count("acme.test"))
		assert.EqualValues(t, 4, e.Stats().Errors)

		g.panicOn = ""
		out, err := e.Transform(t.Context(), rec("c", "domain", "acme.test"))
		require.NoError(t, err, "a panic is not cached")
		assert.Equal(t, "Energy/acme.test", out.Fields["industry"])
		assert.EqualValues(t, 2, g.count("acme.test"))
	})
}
