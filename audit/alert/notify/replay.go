package notify

import (
	"container/heap"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/concordsync/concord/audit/alert"
)

// DefaultReplayCapacity is how many delivery IDs a [ReplayGuard] remembers at
// most unless [WithReplayCapacity] says otherwise. At about 130 bytes an ID
// (see BenchmarkReplayGuardMemory) that is about 8 MiB when full, and it
// admits 65,536 deliveries per tolerance window: over 200 a second with the
// default tolerance, far beyond what a grouped alert stream sends.
const DefaultReplayCapacity = 1 << 16

// ReplayGuard is the receiving side of a [Webhook]: it verifies the
// signature and timestamp of each request as [VerifySignatureAt] does and
// also refuses a delivery ID it has already accepted, so that a request
// captured and sent again within the tolerance is dropped. Make one with
// [NewReplayGuard] and share it between all requests of one endpoint. It is
// safe for concurrent use: of several concurrent requests with the same
// delivery ID, exactly one is accepted.
//
// Memory is bounded. An accepted ID is remembered until its signed
// timestamp plus the tolerance, after which the timestamp check refuses a
// replay anyway; expired IDs are dropped by the next call to Verify. At most
// the capacity ([DefaultReplayCapacity], or [WithReplayCapacity]) IDs are
// remembered: when that many unexpired IDs are held, Verify refuses new
// deliveries with [ErrReplayGuardFull] rather than forget an ID early (which
// would let its replay in). Only requests with a valid signature are
// remembered, so only a holder of the secret can fill the guard.
//
// The memory lives in one process: receivers behind a load balancer need a
// shared store of IDs (or sticky routing) for the same guarantee. The now
// passed to Verify should be the wall clock; if it is stepped back by more
// than the tolerance, an ID dropped before the step could be accepted again.
type ReplayGuard struct {
	tolerance time.Duration
	capacity  int

	mu      sync.Mutex
	seen    map[string]struct{}
	expires expiryHeap // the IDs of seen, soonest expiry first
}

// ReplayOption configures [NewReplayGuard].
type ReplayOption interface{ applyReplay(*ReplayGuard) }

type capacityOption int

func (o capacityOption) applyReplay(g *ReplayGuard) { g.capacity = int(o) }

// WithReplayCapacity sets how many delivery IDs a [ReplayGuard] remembers at
// most; n must be positive.
func WithReplayCapacity(n int) ReplayOption { return capacityOption(n) }

// NewReplayGuard returns a ReplayGuard that accepts timestamps within
// tolerance of the receiver's clock; zero means [DefaultSignatureTolerance].
// A negative tolerance or a capacity below 1 is reported as an error
// matching [alert.ErrInvalidConfig].
func NewReplayGuard(tolerance time.Duration, opts ...ReplayOption) (*ReplayGuard, error) {
	if tolerance < 0 {
		return nil, fmt.Errorf("alert: replay guard: negative tolerance %s: %w", tolerance, alert.ErrInvalidConfig)
	}
	if tolerance == 0 {
		tolerance = DefaultSignatureTolerance
	}
	g := &ReplayGuard{tolerance: tolerance, capacity: DefaultReplayCapacity, seen: make(map[string]struct{})}
	for _, o := range opts {
		o.applyReplay(g)
	}
	if g.capacity < 1 {
		return nil, fmt.Errorf("alert: replay guard: capacity %d is not positive: %w", g.capacity, alert.ErrInvalidConfig)
	}
	return g, nil
}

// Verify checks one [Webhook] request received at now: header, timestamp and
// deliveryID are the values of [SignatureHeader], [TimestampHeader] and
// [DeliveryHeader], body the raw request body. It returns nil, and
// remembers deliveryID, if the signature is valid, the timestamp within the
// tolerance and the ID not accepted before; otherwise an error matching
// [ErrSignatureMalformed], [ErrSignatureMismatch], [ErrSignatureExpired]
// (as [VerifySignatureAt]), [ErrReplayed] (the ID was accepted before: drop
// the request) or [ErrReplayGuardFull] (too many IDs within the tolerance:
// answer 503 so that the sender retries later). A refused request is not
// remembered.
func (g *ReplayGuard) Verify(secret []byte, header, timestamp, deliveryID string, body []byte, now time.Time) error {
	sent, err := verify(secret, header, timestamp, deliveryID, body, now, g.tolerance)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.evict(now)
	if _, ok := g.seen[deliveryID]; ok {
		return fmt.Errorf("alert: webhook delivery %s: %w", deliveryID, ErrReplayed)
	}
	if len(g.seen) >= g.capacity {
		return fmt.Errorf("alert: webhook delivery %s: %d delivery IDs within %s: %w",
			deliveryID, len(g.seen), g.tolerance, ErrReplayGuardFull)
	}
	id := strings.Clone(deliveryID) // keep no larger string alive
	g.seen[id] = struct{}{}
	heap.Push(&g.expires, seenID{id: id, expires: sent.Add(g.tolerance)})
	return nil
}

// Len returns how many delivery IDs the guard remembers, including any that
// expired since the last call to Verify.
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

// evict forgets the IDs whose timestamp is more than the tolerance before
// now: the timestamp check refuses them already.
func (g *ReplayGuard) evict(now time.Time) {
	for len(g.expires) > 0 && now.After(g.expires[0].expires) {
		delete(g.seen, heap.Pop(&g.expires).(seenID).id)
	}
}

// seenID is an accepted delivery ID and the time after which it can be
// forgotten.
type seenID struct {
	id      string
	expires time.Time
}

// expiryHeap is a min-heap of seenID by expires.
type expiryHeap []seenID

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(seenID)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = seenID{}
	*h = old[:len(old)-1]
	return x
}
