package notify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/alert/notify"
)

// signed returns a request signed as Webhook signs it, sent at sent, with a
// fresh random delivery ID.
func signed(sent time.Time, body string) request {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	ts := strconv.FormatInt(sent.Unix(), 10)
	return request{sig: "sha256=" + sign(secret, ts, id, []byte(body)), ts: ts, id: id, body: []byte(body)}
}

func (r request) verify(g *notify.ReplayGuard, now time.Time) error {
	return g.Verify(secret, r.sig, r.ts, r.id, r.body, now)
}

func newGuard(t testing.TB, tolerance time.Duration, opts ...notify.ReplayOption) *notify.ReplayGuard {
	t.Helper()
	g, err := notify.NewReplayGuard(tolerance, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestReplayGuardRealDelivery: a request as a WebhookAlerter sent it is
// accepted once and refused as a replay after that, until the tolerance
// expires and it is refused as expired.
func TestReplayGuardRealDelivery(t *testing.T) {
	c, srv := newCapture(t, 0, "")
	w, err := notify.Webhook(srv.URL, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Alert(context.Background(), outage); err != nil {
		t.Fatal(err)
	}
	r := receivedRequest(c)
	g := newGuard(t, 0) // DefaultSignatureTolerance
	sec, _ := strconv.ParseInt(r.ts, 10, 64)
	sent := time.Unix(sec, 0)
	for _, step := range []struct {
		at   time.Duration
		want error
	}{
		{0, nil},
		{time.Second, notify.ErrReplayed},
		{notify.DefaultSignatureTolerance, notify.ErrReplayed}, // the last instant the timestamp passes
		{notify.DefaultSignatureTolerance + time.Second, notify.ErrSignatureExpired},
		{-time.Minute, notify.ErrReplayed}, // the receiver's clock stepped back, within the window
	} {
		err := r.verify(g, sent.Add(step.at))
		if !errors.Is(err, step.want) || (step.want == nil && err != nil) {
			t.Errorf("at sent%+v: %v; want %v", step.at, err, step.want)
		}
	}
	// A refused request is not remembered: the changed copy is refused,
	// then the original still counts once.
	g2 := newGuard(t, 0)
	forged := r
	forged.body = append([]byte(`{"x":1}`), r.body...)
	if err := forged.verify(g2, sent); !errors.Is(err, notify.ErrSignatureMismatch) {
		t.Errorf("forged body: %v; want ErrSignatureMismatch", err)
	}
	noID := r
	noID.id = ""
	if err := noID.verify(g2, sent); !errors.Is(err, notify.ErrSignatureMalformed) {
		t.Errorf("no delivery ID: %v; want ErrSignatureMalformed", err)
	}
	if err := r.verify(g2, sent.Add(-notify.DefaultSignatureTolerance-time.Second)); !errors.Is(err, notify.ErrSignatureExpired) {
		t.Errorf("too early: %v; want ErrSignatureExpired", err)
	}
	if n := g2.Len(); n != 0 {
		t.Errorf("Len after refusals: %d; want 0", n)
	}
	if err := r.verify(g2, sent); err != nil {
		t.Errorf("original after refusals: %v", err)
	}
}

// TestReplayGuardOldTimestamp: a request signed long ago is refused as
// expired, never remembered.
func TestReplayGuardOldTimestamp(t *testing.T) {
	g := newGuard(t, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	for _, sent := range []time.Time{now.Add(-61 * time.Second), now.Add(-24 * time.Hour), now.Add(61 * time.Second), time.Unix(0, 0)} {
		if err := signed(sent, `{}`).verify(g, now); !errors.Is(err, notify.ErrSignatureExpired) {
			t.Errorf("sent %s: %v; want ErrSignatureExpired", sent, err)
		}
	}
	if n := g.Len(); n != 0 {
		t.Errorf("Len: %d; want 0", n)
	}
}

// TestReplayGuardEviction: IDs are forgotten once their timestamp is more
// than the tolerance old, in order of timestamp, not of arrival.
func TestReplayGuardEviction(t *testing.T) {
	g := newGuard(t, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	late := signed(now.Add(30*time.Second), `{}`)   // expires at now+90s
	early := signed(now.Add(-30*time.Second), `{}`) // expires at now+30s
	mid := signed(now, `{}`)                        // expires at now+60s
	for _, r := range []request{late, early, mid} {
		if err := r.verify(g, now); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		at      time.Duration
		wantLen int
	}{
		{30 * time.Second, 3},  // early's last instant: kept
		{31 * time.Second, 2},  // early gone
		{60 * time.Second, 2},  // mid's last instant
		{61 * time.Second, 1},  // mid gone
		{91 * time.Second, 0},  // all gone
		{300 * time.Second, 0}, // nothing left but the probe
	} {
		// A new request drives eviction. The probe is signed exactly one
		// tolerance before the step (still accepted), so it expires at
		// once and the next step evicts it too.
		probe := signed(now.Add(step.at-time.Minute), `{}`)
		if err := probe.verify(g, now.Add(step.at)); err != nil {
			t.Fatalf("probe at now%+v: %v", step.at, err)
		}
		if got := g.Len() - 1; got != step.wantLen {
			t.Errorf("at now%+v: %d of the first three remembered; want %d", step.at, got, step.wantLen)
		}
	}
	// The early one, replayed after its eviction, is refused by its
	// timestamp: eviction opened no hole.
	if err := early.verify(g, now.Add(31*time.Second)); !errors.Is(err, notify.ErrSignatureExpired) {
		t.Errorf("evicted ID replayed: %v; want ErrSignatureExpired", err)
	}
}

// TestReplayGuardCapacity: a full guard refuses new IDs (fail closed)
// rather than forget one early, and accepts again once IDs expire.
func TestReplayGuardCapacity(t *testing.T) {
	g := newGuard(t, time.Minute, notify.WithReplayCapacity(3))
	now := time.Unix(1_700_000_000, 0)
	var first request
	for i := range 3 {
		r := signed(now.Add(time.Duration(i)*time.Second), `{}`)
		if i == 0 {
			first = r
		}
		if err := r.verify(g, now.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	extra := signed(now.Add(2*time.Second), `{}`)
	err := extra.verify(g, now.Add(2*time.Second))
	if !errors.Is(err, notify.ErrReplayGuardFull) {
		t.Fatalf("fourth ID: %v; want ErrReplayGuardFull", err)
	}
	// Full, yet a replay is still told apart and refused.
	if err := first.verify(g, now.Add(2*time.Second)); !errors.Is(err, notify.ErrReplayed) {
		t.Errorf("replay of the first while full: %v; want ErrReplayed", err)
	}
	if n := g.Len(); n != 3 {
		t.Errorf("Len: %d; want 3", n)
	}
	// Once the first has expired there is room.
	if err := extra.verify(g, now.Add(61*time.Second)); err != nil {
		t.Errorf("fourth ID after the first expired: %v", err)
	}
	if err := extra.verify(g, now.Add(61*time.Second)); !errors.Is(err, notify.ErrReplayed) {
		t.Errorf("fourth ID again: %v; want ErrReplayed", err)
	}
}

func TestNewReplayGuardInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		tol  time.Duration
		opts []notify.ReplayOption
	}{
		{"negative tolerance", -time.Second, nil},
		{"zero capacity", time.Minute, []notify.ReplayOption{notify.WithReplayCapacity(0)}},
		{"negative capacity", time.Minute, []notify.ReplayOption{notify.WithReplayCapacity(-1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if g, err := notify.NewReplayGuard(tc.tol, tc.opts...); !errors.Is(err, alert.ErrInvalidConfig) || g != nil {
				t.Errorf("NewReplayGuard: %v, %v; want nil, ErrInvalidConfig", g, err)
			}
		})
	}
}

// TestReplayGuardConcurrent: the same request sent many times at once is
// accepted exactly once; distinct requests at once are all accepted. Run
// with -race.
func TestReplayGuardConcurrent(t *testing.T) {
	g := newGuard(t, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	same := signed(now, `{"same":true}`)
	const workers, each = 16, 50
	var accepted, replayed atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*2)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				switch err := same.verify(g, now); {
				case err == nil:
					accepted.Add(1)
				case errors.Is(err, notify.ErrReplayed):
					replayed.Add(1)
				default:
					errs <- err
				}
				if err := signed(now, fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)).verify(g, now.Add(time.Duration(i)*time.Millisecond)); err != nil {
					errs <- err
				}
				_ = g.Len()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if accepted.Load() != 1 || replayed.Load() != workers*each-1 {
		t.Errorf("same request: %d accepted, %d replayed; want 1, %d", accepted.Load(), replayed.Load(), workers*each-1)
	}
	if n := g.Len(); n != workers*each+1 {
		t.Errorf("Len: %d; want %d", n, workers*each+1)
	}
}

// TestReplayGuardHandler: the documented receiver over HTTP with a real
// WebhookAlerter; the replayed request is refused by status.
func TestReplayGuardHandler(t *testing.T) {
	g := newGuard(t, 0)
	var acted atomic.Int32
	srv := httptestServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		err := g.Verify(secret, r.Header.Get(notify.SignatureHeader), r.Header.Get(notify.TimestampHeader),
			r.Header.Get(notify.DeliveryHeader), body, time.Now())
		switch {
		case errors.Is(err, notify.ErrReplayed):
			w.WriteHeader(http.StatusConflict)
		case err != nil:
			w.WriteHeader(http.StatusUnauthorized)
		default:
			acted.Add(1)
		}
	})
	hook, err := notify.Webhook(srv.url, secret)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := hook.Alert(context.Background(), outage); err != nil {
			t.Fatal(err)
		}
	}
	if acted.Load() != 3 {
		t.Fatalf("%d alerts acted on; want 3 (the same alert three times is three deliveries)", acted.Load())
	}
	last := srv.last()
	for _, tc := range []struct {
		name   string
		change func(http.Header)
		want   int
	}{
		{"replay", func(http.Header) {}, http.StatusConflict},
		{"replay without the ID", func(h http.Header) { h.Del(notify.DeliveryHeader) }, http.StatusUnauthorized},
		{"replay with a new ID", func(h http.Header) { h.Set(notify.DeliveryHeader, signed(time.Now(), "").id) }, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := last.header.Clone()
			tc.change(h)
			if got := srv.resend(t, h, last.body); got != tc.want {
				t.Errorf("status %d; want %d", got, tc.want)
			}
		})
	}
	if acted.Load() != 3 {
		t.Errorf("%d alerts acted on after the replays; want 3", acted.Load())
	}
}

// BenchmarkReplayGuardVerify: one delivery accepted in steady state, the
// clock moving 1ms a delivery so that about 60,000 IDs are within the
// one-minute window and one expires for each accepted. Each op includes
// signing the request (as the sender would), about a third of the cost.
func BenchmarkReplayGuardVerify(b *testing.B) {
	g := newGuard(b, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"system":"erp","message":"dead-lettered"}`)
	var n uint64
	for b.Loop() {
		now = now.Add(time.Millisecond)
		n++
		id := fmt.Sprintf("%032x", n)
		ts := strconv.FormatInt(now.Unix(), 10)
		if err := g.Verify(secret, "sha256="+sign(secret, ts, id, body), ts, id, body, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplayGuardMemory reports the heap bytes a full guard holds per
// delivery ID (the figure DefaultReplayCapacity's documentation quotes).
func BenchmarkReplayGuardMemory(b *testing.B) {
	const n = 1 << 16
	now := time.Unix(1_700_000_000, 0)
	reqs := make([]request, n)
	for i := range reqs {
		reqs[i] = signed(now, `{}`)
	}
	var perID float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g := newGuard(b, time.Minute, notify.WithReplayCapacity(n))
		for i := range reqs {
			if err := reqs[i].verify(g, now); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perID = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(g)
	}
	b.ReportMetric(perID, "B/id")
}

// recorder is an HTTP endpoint that reads each body and hands it to a
// handler, remembering the last request as an eavesdropper would.
type recorder struct {
	url string

	mu     sync.Mutex
	header http.Header
	body   []byte
}

type recorded struct {
	header http.Header
	body   []byte
}

func httptestServer(t testing.TB, h func(http.ResponseWriter, *http.Request, []byte)) *recorder {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		rec.header, rec.body = r.Header.Clone(), body
		rec.mu.Unlock()
		h(w, r, body)
	}))
	t.Cleanup(srv.Close)
	rec.url = srv.URL
	return rec
}

func (rec *recorder) last() recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return recorded{rec.header.Clone(), append([]byte(nil), rec.body...)}
}

// resend POSTs body with header to the endpoint and returns the status.
func (rec *recorder) resend(t testing.TB, header http.Header, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rec.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// FuzzReplayGuard checks a guard against a model over a fuzzed sequence of
// deliveries: eight requests signed at various times, each op choosing one
// (or a tampered copy) and moving the receiver's clock forward. The model
// accepts a request iff its signature is intact, its timestamp is within
// the tolerance, its ID was never accepted, and fewer than the capacity of
// accepted IDs are still within their window.
func FuzzReplayGuard(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 10, 2, 70, 0, 0})
	f.Add([]byte{0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 0, 200, 4, 0})
	f.Add([]byte{8, 0, 9, 5, 15, 0, 7, 255, 7, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const tolerance, capacity = time.Minute, 4
		g := newGuard(t, tolerance, notify.WithReplayCapacity(capacity))
		start := time.Unix(1_700_000_000, 0)
		reqs := make([]request, 8)
		sentAt := make([]time.Time, 8)
		for i := range reqs {
			sentAt[i] = start.Add(time.Duration(i*25) * time.Second) // spread over 175s
			reqs[i] = signed(sentAt[i], fmt.Sprintf(`{"n":%d}`, i))
		}
		accepted := map[int]bool{}
		now := start
		for k := 0; k+1 < len(ops); k += 2 {
			i, tamper := int(ops[k]%8), ops[k]&8 != 0
			now = now.Add(time.Duration(ops[k+1]) * time.Second / 4) // forward only
			r := reqs[i]
			if tamper {
				r.body = append([]byte(" "), r.body...)
			}
			age := now.Sub(sentAt[i])
			inWindow := 0
			for j := range accepted {
				if !now.After(sentAt[j].Add(tolerance)) {
					inWindow++
				}
			}
			var want error
			switch {
			case tamper:
				want = notify.ErrSignatureMismatch
			case age > tolerance || age < -tolerance:
				want = notify.ErrSignatureExpired
			case accepted[i]:
				want = notify.ErrReplayed
			case inWindow >= capacity:
				want = notify.ErrReplayGuardFull
			}
			err := r.verify(g, now)
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Fatalf("op %d: request %d (tampered %v) at start%+v: %v; want %v", k/2, i, tamper, now.Sub(start), err, want)
			}
			if err == nil {
				accepted[i] = true
			}
			if n := g.Len(); n > capacity {
				t.Fatalf("Len %d above capacity %d", n, capacity)
			}
		}
	})
}
