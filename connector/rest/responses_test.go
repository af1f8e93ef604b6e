package rest_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/rest"
	"github.com/concordsync/concord/connector/rest/resttest"
)

// serveOn answers the requests for which match is true with body.
func serveOn(srv *resttest.Server, match func(*http.Request) bool, status int, body string) {
	srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
		return true
	})
}

func onPath(p string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.URL.Path == p }
}

// A malformed change feed page is an error naming the endpoint, and no
// record of it is returned.
func TestMalformedFeed(t *testing.T) {
	ok := `{"id":"a","version":1,"updated_at":"2026-01-01T00:00:00Z","n":1}`
	for _, tc := range []struct {
		name, body, reason string
		class              error
	}{
		{"truncated", `{"data":[` + ok + `,{"id":"b"`, "unexpected EOF", connector.ErrTransient},
		{"html", `<html>502 Bad Gateway</html>`, "invalid character", connector.ErrTransient},
		{"empty", ``, "empty body", connector.ErrTransient},
		{"trailing", `{"data":[` + ok + `],"next_cursor":"c9"} {"x":1}`, "after the JSON value", connector.ErrTransient},
		{"invalid utf-8", `{"data":[{"id":"a","n":"` + "\xff" + `"}],"next_cursor":"c9"}`, "invalid UTF-8", connector.ErrTransient},
		{"data not a list", `{"data":{"id":"a"},"next_cursor":"c9"}`, "want a list", connector.ErrTransient},
		{"no data", `{"next_cursor":"c9"}`, `no list of records at "data"`, connector.ErrTransient},
		{"record not an object", `{"data":[` + ok + `,"b"],"next_cursor":"c9"}`, "want an object", connector.ErrTransient},
		{"no key", `{"data":[` + ok + `,{"n":2}],"next_cursor":"c9"}`, `no key at "id"`, connector.ErrTransient},
		{"key is a bool", `{"data":[{"id":true}],"next_cursor":"c9"}`, "want a string or a number", connector.ErrTransient},
		{"empty key", `{"data":[{"id":""}],"next_cursor":"c9"}`, "empty key", connector.ErrTransient},
		{"field through a string", `{"data":[` + ok + `,{"id":"b","profile":"Ada"}],"next_cursor":"c9"}`, `record "b" field "name"`, connector.ErrTransient},
		{"bad time", `{"data":[{"id":"b","updated_at":"yesterday"}],"next_cursor":"c9"}`, "modification time", connector.ErrTransient},
		{"deleted not a bool", `{"data":[{"id":"b","deleted":"yes"}],"next_cursor":"c9"}`, "want a boolean", connector.ErrTransient},
		{"cursor an object", `{"data":[` + ok + `],"next_cursor":{}}`, "want a string or a number", connector.ErrTransient},
		{"has_more a string", `{"data":[` + ok + `],"next_cursor":"c9","has_more":"yes"}`, "want a boolean", connector.ErrTransient},
		{"more without cursor", `{"data":[` + ok + `],"next_cursor":null,"has_more":true}`, "without a new cursor", connector.ErrTransient},
		{"too many records", `{"data":[` + strings.Repeat(ok+",", 3) + ok + `],"next_cursor":"c9"}`, "4 records for a page of at most 3", connector.ErrTransient},
		{"number past the caps", `{"data":[{"id":"b","n":1e99999}],"next_cursor":"c9"}`, `record "b" field "n"`, connector.ErrPermanent},
		{"nesting past the caps", `{"data":[{"id":"b","n":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}],"next_cursor":"c9"}`, `record "b" field "n"`, connector.ErrPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, resttest.Options{})
			serveOn(srv, onPath("/v1/changes"), 200, tc.body)
			conn := mustNew(t, cursorConfig(srv))
			b, err := conn.Changes(t.Context(), "c1", 3)
			wantClass(t, "Changes", err, tc.class)
			if len(b.Records) != 0 || b.Next != "" {
				t.Errorf("Changes returned %d records, cursor %q with the error; want none", len(b.Records), b.Next)
			}
			if tc.class == connector.ErrTransient && !errors.Is(err, rest.ErrMalformedResponse) {
				t.Errorf("error %v; want ErrMalformedResponse", err)
			}
			if tc.class == connector.ErrPermanent && !errors.Is(err, concord.ErrUnsupportedValue) {
				t.Errorf("error %v; want ErrUnsupportedValue", err)
			}
			if msg := fmt.Sprint(err); !strings.Contains(msg, "GET https://") || !strings.Contains(msg, "/v1/changes") || !strings.Contains(msg, tc.reason) {
				t.Errorf("error %q; want it to name GET, the endpoint and %q", msg, tc.reason)
			}
		})
	}
}

// A page that repeats a key keeps its last state only, where it stands.
func TestFeedRepeatsKeyOnPage(t *testing.T) {
	srv := newServer(t, resttest.Options{})
	serveOn(srv, onPath("/v1/changes"), 200, `{"data":[{"id":"a","n":1},{"id":"b","n":1},{"id":"a","n":2}],"next_cursor":"c3","has_more":false}`)
	b, err := mustNew(t, cursorConfig(srv)).Changes(t.Context(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 2 || b.Records[0].Key != "b" || b.Records[1].Key != "a" || fmt.Sprint(b.Records[1].Fields["n"]) != "2" {
		t.Errorf("records %v; want b then a with n=2", b.Records)
	}
}

// The cursor never goes back: an API that answers an empty page with no
// cursor leaves the cursor where it was.
func TestCursorNeverGoesBack(t *testing.T) {
	for _, body := range []string{`{"data":[]}`, `{"data":[],"next_cursor":null}`, `{"data":[],"next_cursor":""}`, `{"data":[],"next_cursor":"","has_more":false}`} {
		srv := newServer(t, resttest.Options{})
		serveOn(srv, onPath("/v1/changes"), 200, body)
		b, err := mustNew(t, cursorConfig(srv)).Changes(t.Context(), "c42", 10)
		if err != nil || b.Next != "c42" || b.More {
			t.Errorf("after %s: Next %q, More %v, err %v; want c42, false, nil", body, b.Next, b.More, err)
		}
	}
}

func TestOversizedResponse(t *testing.T) {
	const limit = 4096
	srv := newServer(t, resttest.Options{})
	cfg := cursorConfig(srv)
	cfg.MaxResponseBytes = limit
	conn := mustNew(t, cfg)
	ctx := t.Context()

	// A body of exactly the limit is read; one byte more is refused, not
	// cut and parsed.
	exact := `{"data":[],"next_cursor":"c7","pad":"` + strings.Repeat("x", limit-39) + `"}`
	if len(exact) != limit {
		t.Fatalf("test body is %d bytes; want %d", len(exact), limit)
	}
	serveOn(srv, onPath("/v1/changes"), 200, exact)
	if b, err := conn.Changes(ctx, "", 10); err != nil || b.Next != "c7" {
		t.Errorf("a response of exactly MaxResponseBytes: %v, %v; want it read", b, err)
	}
	serveOn(srv, onPath("/v1/changes"), 200, exact+" ")
	b, err := conn.Changes(ctx, "", 10)
	wantClass(t, "oversized Changes", err, connector.ErrPermanent)
	if !errors.Is(err, rest.ErrResponseTooLarge) || !strings.Contains(err.Error(), "/v1/changes") || len(b.Records) != 0 {
		t.Errorf("oversized Changes: %d records, %v; want none and ErrResponseTooLarge naming the endpoint", len(b.Records), err)
	}

	// Records large enough that a page of them is over the limit.
	srv.Intercept(nil)
	for i := range 5 {
		srv.Edit(fmt.Sprintf("r%d", i), map[string]any{"name": strings.Repeat("y", 1000)})
	}
	if _, err := conn.Changes(ctx, "", 10); !errors.Is(err, rest.ErrResponseTooLarge) {
		t.Errorf("a 5 kB page: %v; want ErrResponseTooLarge", err)
	}
	if b, err := conn.Changes(ctx, "", 2); err != nil || len(b.Records) != 2 {
		t.Errorf("a smaller page: %d records, %v; want 2", len(b.Records), err)
	}
}

// One malformed or oversized answer to one write fails that patch alone;
// the patches before and after it are applied and reported so.
func TestBadWriteResponsesIsolated(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		cause      error
	}{
		{"malformed", `{"id":"b","n":`, rest.ErrMalformedResponse},
		{"oversized", `{"id":"b","pad":"` + strings.Repeat("z", 5000) + `"}`, rest.ErrResponseTooLarge},
		{"another record", `{"id":"c","n":5}`, rest.ErrMalformedResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, resttest.Options{})
			cfg := cursorConfig(srv)
			cfg.MaxResponseBytes = 4096
			conn := mustNew(t, cfg)
			for _, k := range []string{"a", "b", "c"} {
				srv.Edit(k, map[string]any{"n": 0})
			}
			// The answer for b is broken, and b is not applied.
			serveOn(srv, func(r *http.Request) bool { return r.Method == http.MethodPatch && r.URL.Path == "/v1/records/b" }, 200, tc.body)
			res, err := conn.Apply(t.Context(), []connector.Patch{
				{Key: "a", Set: fields{"n": 1}},
				{Key: "b", Set: fields{"n": 1}},
				{Key: "c", Set: fields{"n": 1}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Err != nil || res[2].Err != nil || res[0].Tag != `"2"` || res[2].Tag != `"2"` {
				t.Errorf("results for a and c: %+v, %+v; want both applied with tag \"2\"", res[0], res[2])
			}
			if !errors.Is(res[1].Err, tc.cause) || !strings.Contains(res[1].Err.Error(), "PATCH https://") || !strings.Contains(res[1].Err.Error(), `record "b"`) {
				t.Errorf("result for b: %v; want %v naming PATCH, the endpoint and the record", res[1].Err, tc.cause)
			}
			for k, want := range map[string]string{"a": "1", "b": "0", "c": "1"} {
				if doc, _ := srv.Doc(k); fmt.Sprint(doc["n"]) != want {
					t.Errorf("record %s on the server: n=%v; want %s", k, doc["n"], want)
				}
			}
		})
	}
}

// Page pagination by modification time: records sharing one timestamp
// across page boundaries (bulk edits at one instant) are all read, edits
// while paging too, and the cursor at the end stays put.
func TestPageEqualTimestamps(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var clock time.Time = now
	srv := newServer(t, resttest.Options{Clock: func() time.Time { return clock }})
	cfg := pageConfig(srv)
	cfg.Changes.Overlap = time.Nanosecond // the paging alone must not lose anything
	conn := mustNew(t, cfg)
	ctx := t.Context()
	keys := func(prefix string, n int) []string {
		var ks []string
		for i := range n {
			ks = append(ks, fmt.Sprintf("%s%02d", prefix, i))
		}
		return ks
	}
	want := map[string]string{}
	bulk := func(ks []string, v string) {
		srv.EditMany(ks, map[string]any{"n": v})
		for _, k := range ks {
			want[k] = v
		}
	}
	bulk(keys("a", 11), "1") // 11 records at one instant
	clock = clock.Add(time.Millisecond)
	bulk(keys("b", 3), "2")
	got := map[string]string{}
	var cursor connector.Cursor
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("still More after 100 pages")
		}
		b, err := conn.Changes(ctx, cursor, 4)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		for _, r := range b.Records {
			got[r.Key] = fmt.Sprint(r.Fields["n"])
		}
		if page == 1 || page == 2 {
			// While paging: a bulk edit at a later instant, of records
			// read (which leave the run being paged, shifting the
			// offsets), not read yet, and new.
			clock = clock.Add(time.Millisecond)
			bulk([]string{"a00", "a01", "a02", "a09", fmt.Sprintf("c%02d", page)}, fmt.Sprint(page+2))
		}
		if b.Next == "" {
			t.Fatalf("page %d: empty Next; want a cursor", page)
		}
		cursor = b.Next
		if !b.More {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read %v;\nwant %v", got, want)
	}
	// Reading again from the end repeats the overlap window (here
	// everything: it spans a few milliseconds) and ends at the same
	// cursor, with nothing but repeats.
	for range 2 {
		next := cursor
		for range 100 {
			b, err := conn.Changes(ctx, next, 4)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range b.Records {
				if v := fmt.Sprint(r.Fields["n"]); v != want[r.Key] {
					t.Errorf("reading again: record %s has n=%s; want a repeat of %s", r.Key, v, want[r.Key])
				}
			}
			next = b.Next
			if !b.More {
				break
			}
		}
		if next != cursor {
			t.Errorf("reading again from the end cursor ended at %q; want the same cursor %q", next, cursor)
		}
	}
}

// Page order is checked: an API that does not sort as configured is an
// error, not a silent skip.
func TestPageOrderChecked(t *testing.T) {
	srv := newServer(t, resttest.Options{})
	serveOn(srv, onPath("/v1/records"), 200, `{"data":[{"id":"b","updated_at":"2026-01-01T00:00:01Z"},{"id":"a","updated_at":"2026-01-01T00:00:00Z"}]}`)
	_, err := mustNew(t, pageConfig(srv)).Changes(t.Context(), "", 10)
	if !errors.Is(err, rest.ErrMalformedResponse) || !strings.Contains(err.Error(), "not ordered") {
		t.Errorf("an unsorted page: %v; want a malformed-response error saying so", err)
	}
	serveOn(srv, onPath("/v1/records"), 200, `{"data":[{"id":"b"}]}`)
	if _, err := mustNew(t, pageConfig(srv)).Changes(t.Context(), "", 10); !errors.Is(err, rest.ErrMalformedResponse) {
		t.Errorf("a record without a time in page mode: %v; want a malformed-response error", err)
	}
	serveOn(srv, onPath("/v1/records"), 200, `{"data":[{"id":"b","updated_at":"2026-01-01T00:00:01Z"},{"id":"a","updated_at":"2026-01-01T00:00:00Z"}]}`)
	s := mustNew(t, cursorConfig(srv))
	if _, err := s.Scan(t.Context(), "", 10); !errors.Is(err, rest.ErrMalformedResponse) || !strings.Contains(err.Error(), "key order") {
		t.Errorf("Scan of an unsorted list: %v; want a malformed-response error about key order", err)
	}
	if _, err := s.Scan(t.Context(), "c", 10); !errors.Is(err, rest.ErrMalformedResponse) {
		t.Errorf("Scan returning keys before the cursor: %v; want a malformed-response error", err)
	}
}

func pc(js string) string { return "rest.p2." + base64.RawURLEncoding.EncodeToString([]byte(js)) }

func TestDamagedPageCursor(t *testing.T) {
	srv := newServer(t, resttest.Options{})
	conn := mustNew(t, pageConfig(srv))
	srv.Edit("a", map[string]any{"n": 1})
	b, err := conn.Changes(t.Context(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	good := string(b.Next)
	for _, c := range []string{"x", "rest.p2.", "rest.p2.!!!", good[:len(good)-3], good + "A", good + "AA", good + "e30",
		pc(`{}`), pc(`{"t":"2026-01-01T00:00:00Z","k":"a","n":0}`), pc(`{"t":"2026-01-01T00:00:00Z","k":"a","n":-5}`),
		pc(`{"t":"2026-01-01T00:00:00Z","k":"a","n":1,"x":1}`), pc(`{"t":"2026-01-01T00:00:00Z","k":"","n":1}`),
		pc(`{"t":"2026-01-01T00:00:00Z","k":"a","n":1}{}`), pc(`{"t":"yesterday","k":"a","n":1}`),
		pc(`{"t":"2026-01-01T00:00:00Z","k":"a","n":1e400}`), pc(`{"t":"2026-01-01T00:00:00Z","k":"a","n":99999999999999999999}`),
	} {
		_, err := conn.Changes(t.Context(), connector.Cursor(c), 10)
		if !errors.Is(err, rest.ErrBadCursor) {
			t.Errorf("cursor %q: %v; want ErrBadCursor", c, err)
		}
		wantClass(t, "damaged cursor", err, connector.ErrPermanent)
	}
}

// Page pagination against a model: many records share few timestamps, and
// between pages records already read, records not read yet and new records
// are edited, sometimes at the same instant as the records being paged.
// Every record's latest state must be read, whatever the page sizes.
func TestPageRandomEditsWhilePaging(t *testing.T) {
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 99))
		clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		srv := newServer(t, resttest.Options{Clock: func() time.Time { return clock }})
		conn := mustNew(t, pageConfig(srv))
		want := map[string]string{}
		edit := func() {
			if rng.IntN(3) == 0 {
				clock = clock.Add(time.Millisecond)
			}
			var ks []string
			for range 1 + rng.IntN(6) {
				ks = append(ks, fmt.Sprintf("k%02d", rng.IntN(40)))
			}
			v := fmt.Sprint(rng.Uint32())
			srv.EditMany(ks, map[string]any{"n": v})
			for _, k := range ks {
				want[k] = v
			}
		}
		for range 15 {
			edit()
		}
		got := map[string]string{}
		var cursor connector.Cursor
		for page := 0; ; page++ {
			if page > 2000 {
				t.Fatalf("seed %d: still More after 2000 pages", seed)
			}
			limit := 1 + rng.IntN(5)
			b, err := conn.Changes(t.Context(), cursor, limit)
			if err != nil {
				t.Fatalf("seed %d page %d: %v", seed, page, err)
			}
			if len(b.Records) > limit {
				t.Fatalf("seed %d: %d records for limit %d", seed, len(b.Records), limit)
			}
			for _, r := range b.Records {
				got[r.Key] = fmt.Sprint(r.Fields["n"])
			}
			cursor = b.Next
			if page < 30 && rng.IntN(2) == 0 {
				edit()
			}
			if !b.More && page >= 30 {
				break
			}
		}
		// One more run, as the engine's next cycle: what the last run
		// could not see behind its position comes from the overlap.
		for range 1000 {
			b, err := conn.Changes(t.Context(), cursor, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range b.Records {
				got[r.Key] = fmt.Sprint(r.Fields["n"])
			}
			if cursor = b.Next; !b.More {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("seed %d: read %v;\nwant %v", seed, got, want)
		}
	}
}
