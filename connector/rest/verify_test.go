package rest_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/rest"
	"github.com/concordsync/concord/connector/rest/resttest"
)

func verifyingConn(t *testing.T, v rest.Verify) (*resttest.Server, *rest.Scanning) {
	t.Helper()
	srv := newServer(t, resttest.Options{})
	cfg := cursorConfig(srv)
	cfg.Fields = map[string]string{"status": "status", "city": "address.city", "n": "n"}
	cfg.Verify = &v
	return srv, mustNew(t, cfg)
}

// A write the API accepts but silently drops is checked again on each
// retry, never written twice, and after Verify.Checks reads that disagree
// becomes a permanent error (which the engine dead-letters) carrying both
// values.
func TestVerifyMismatchReachesDeadLetter(t *testing.T) {
	srv, conn := verifyingConn(t, rest.Verify{Checks: 3})
	srv.IgnoreWrites("status")
	srv.Edit("o1", map[string]any{"status": "new", "n": 1})
	ctx := t.Context()
	p := []connector.Patch{{Key: "o1", Set: fields{"status": "shipped", "n": 2}, IdempotencyKey: "o1@v2"}}
	for check := 1; check <= 3; check++ {
		res, err := conn.Apply(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var me *rest.MismatchError
		if !errors.As(res[0].Err, &me) || !errors.Is(res[0].Err, rest.ErrMismatch) {
			t.Fatalf("check %d: %v; want a MismatchError", check, res[0].Err)
		}
		if me.Checks != check || me.Final != (check == 3) || len(me.Fields) != 1 || me.Fields[0].Field != "status" {
			t.Errorf("check %d: %+v; want check %d, final %v, field status alone", check, me, check, check == 3)
		}
		msg := res[0].Err.Error()
		if !strings.Contains(msg, `written "shipped"`) || !strings.Contains(msg, `read back "new"`) || !strings.Contains(msg, `record "o1"`) {
			t.Errorf("check %d: %q; want the record and both values", check, msg)
		}
		want, pending := connector.ErrTransient, 1
		if check == 3 {
			want, pending = connector.ErrPermanent, 0
		}
		wantClass(t, fmt.Sprintf("check %d", check), res[0].Err, want)
		if conn.Pending() != pending {
			t.Errorf("check %d: %d pending; want %d", check, conn.Pending(), pending)
		}
	}
	if n := count(srv, http.MethodPatch); n != 1 {
		t.Errorf("%d PATCH requests; want 1 (a check reads, it never writes again)", n)
	}
	if doc, _ := srv.Doc("o1"); fmt.Sprint(doc["n"]) != "2" {
		t.Errorf("n = %v; want the field the API kept written", doc["n"])
	}
}

// A read that lags behind the write (an eventually consistent replica)
// disagrees once, then agrees: the retry succeeds without writing again.
func TestVerifyLagResolves(t *testing.T) {
	srv, conn := verifyingConn(t, rest.Verify{})
	srv.Edit("o1", map[string]any{"address": map[string]any{"city": "Oslo", "zip": "0150"}})
	var stale atomic.Int64
	stale.Store(1)
	srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/records/o1" || stale.Add(-1) < 0 {
			return false
		}
		w.Header().Set("ETag", `"1"`)
		fmt.Fprint(w, `{"id":"o1","version":1,"address":{"city":"Oslo","zip":"0150"}}`)
		return true
	})
	p := []connector.Patch{{Key: "o1", Set: fields{"city": "Bergen"}}}
	res, _ := conn.Apply(t.Context(), p)
	wantClass(t, "first check (stale read)", res[0].Err, connector.ErrTransient)
	if !errors.Is(res[0].Err, rest.ErrMismatch) || !strings.Contains(res[0].Err.Error(), "awaiting another check") {
		t.Errorf("first check: %v; want a mismatch awaiting another check", res[0].Err)
	}
	res, _ = conn.Apply(t.Context(), p)
	if res[0].Err != nil || res[0].Tag != `"2"` || conn.Pending() != 0 {
		t.Errorf("retry: %+v, %d pending; want success with tag \"2\" and nothing pending", res[0], conn.Pending())
	}
	if n := count(srv, http.MethodPatch); n != 1 {
		t.Errorf("%d PATCH requests; want 1", n)
	}
}

// Nested fields are compared as merge patch semantics leave them; a
// nil removes the member; times are compared as the JSON the API got.
func TestVerifyAgreesOnFaithfulWrites(t *testing.T) {
	srv, conn := verifyingConn(t, rest.Verify{Checks: 1})
	srv.Edit("o1", map[string]any{"status": "new", "address": map[string]any{"city": "Oslo", "zip": "0150"}})
	res, _ := conn.Apply(t.Context(), []connector.Patch{
		{Key: "o1", Set: fields{"city": nil, "status": map[string]any{"code": "shipped", "at": nil}, "n": 1.5}},
	})
	if res[0].Err != nil || conn.Pending() != 0 {
		t.Errorf("a faithful write: %v; want it verified", res[0].Err)
	}
	if n := count(srv, http.MethodGet); n != 1 {
		t.Errorf("%d GET requests; want 1 verification read", n)
	}
}

// A different patch for a record in the queue supersedes the queued write;
// a full queue reports a mismatch as permanent at once.
func TestVerifyQueue(t *testing.T) {
	srv, conn := verifyingConn(t, rest.Verify{Checks: 5, MaxPending: 1})
	srv.IgnoreWrites("status")
	for _, k := range []string{"a", "b"} {
		srv.Edit(k, map[string]any{"status": "new"})
	}
	ctx := t.Context()
	res, _ := conn.Apply(ctx, []connector.Patch{
		{Key: "a", Set: fields{"status": "x"}},
		{Key: "b", Set: fields{"status": "x"}},
	})
	wantClass(t, "first mismatch", res[0].Err, connector.ErrTransient)
	wantClass(t, "mismatch with the queue full", res[1].Err, connector.ErrPermanent)
	if !strings.Contains(fmt.Sprint(res[1].Err), "queue is full") {
		t.Errorf("mismatch with the queue full: %v; want the reason given", res[1].Err)
	}
	if conn.Pending() != 1 {
		t.Errorf("%d pending; want 1", conn.Pending())
	}
	// A new write to a supersedes the queued one (and is checked anew).
	res, _ = conn.Apply(ctx, []connector.Patch{{Key: "a", Set: fields{"n": 7}}})
	if res[0].Err != nil || conn.Pending() != 0 {
		t.Errorf("a new write to a: %v, %d pending; want success and the queued write dropped", res[0].Err, conn.Pending())
	}
	// A delete drops it too.
	res, _ = conn.Apply(ctx, []connector.Patch{{Key: "a", Set: fields{"status": "y"}}})
	wantClass(t, "mismatch", res[0].Err, connector.ErrTransient)
	res, _ = conn.Apply(ctx, []connector.Patch{{Key: "a", Delete: true}})
	if res[0].Err != nil || conn.Pending() != 0 {
		t.Errorf("delete: %v, %d pending; want success and nothing pending", res[0].Err, conn.Pending())
	}
}

// The verification read failing is transient; the retry checks again and
// does not write again.
func TestVerifyReadFails(t *testing.T) {
	srv, conn := verifyingConn(t, rest.Verify{})
	srv.Edit("o1", map[string]any{"n": 1})
	var fail atomic.Bool
	fail.Store(true)
	srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && fail.Swap(false) {
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	})
	p := []connector.Patch{{Key: "o1", Set: fields{"n": 2}}}
	res, _ := conn.Apply(t.Context(), p)
	wantClass(t, "verification read failing", res[0].Err, connector.ErrTransient)
	res, _ = conn.Apply(t.Context(), p)
	if res[0].Err != nil || conn.Pending() != 0 || count(srv, http.MethodPatch) != 1 {
		t.Errorf("retry: %v, %d pending, %d PATCHes; want success, none pending, 1 PATCH", res[0].Err, conn.Pending(), count(srv, http.MethodPatch))
	}
}

// Calls from several goroutines at once (a connector shared between
// pipelines) are safe, the reverify queue included; run with -race.
func TestConcurrentCalls(t *testing.T) {
	srv, conn := verifyingConn(t, rest.Verify{Checks: 2})
	srv.IgnoreWrites("status")
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 10 {
				k := fmt.Sprintf("g%d-%d", g%2, i) // two goroutines per key
				srv.Edit(k, map[string]any{"n": i})
				_, err = conn.Apply(t.Context(), []connector.Patch{{Key: k, Set: fields{"n": i + 1, "status": "s"}}})
				if err == nil {
					_, err = conn.Changes(t.Context(), "", 5)
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// A record just created that the read does not find yet is a lagging
// read, not a delete: checked again on the retry.
func TestVerifyCreateNotFoundYet(t *testing.T) {
	srv, conn := verifyingConn(t, rest.Verify{})
	var lag atomic.Bool
	lag.Store(true)
	srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && lag.Swap(false) {
			w.WriteHeader(http.StatusNotFound)
			return true
		}
		return false
	})
	p := []connector.Patch{{Key: "new", Set: fields{"n": 1}, Create: true}}
	res, _ := conn.Apply(t.Context(), p)
	if !errors.Is(res[0].Err, rest.ErrMismatch) || connector.Classify(res[0].Err) != connector.ErrTransient {
		t.Errorf("create not found yet: %v; want a transient mismatch", res[0].Err)
	}
	res, _ = conn.Apply(t.Context(), p)
	if res[0].Err != nil || count(srv, http.MethodPost) != 1 {
		t.Errorf("retry: %v, %d POSTs; want success and one POST", res[0].Err, count(srv, http.MethodPost))
	}
}
