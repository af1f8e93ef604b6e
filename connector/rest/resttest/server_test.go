package resttest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord/connector/rest/resttest"
)

type client struct {
	t   *testing.T
	srv *resttest.Server
}

func (c client) do(method, path, body string, hdr ...string) (int, http.Header, map[string]any) {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.srv.URL()+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("%s %s: body %q is not a JSON object", method, path, b)
		}
	}
	return resp.StatusCode, resp.Header, m
}

func newClient(t *testing.T, opts resttest.Options) client {
	opts.Token = "tok"
	srv := resttest.New(opts)
	t.Cleanup(srv.Close)
	return client{t: t, srv: srv}
}

func TestMergePatchAndPreconditions(t *testing.T) {
	c := newClient(t, resttest.Options{})
	c.srv.Edit("a", map[string]any{"x": 1, "addr": map[string]any{"city": "Oslo", "zip": "1"}, "tags": []any{"a", "b"}})
	st, h, m := c.do("PATCH", "/records/a", `{"addr":{"city":"Rome","zip":null},"tags":["c"],"y":true}`, "If-Match", `"1"`)
	if st != 200 || h.Get("ETag") != `"2"` || fmt.Sprint(m["addr"]) != "map[city:Rome]" || fmt.Sprint(m["tags"]) != "[c]" || m["x"] != 1.0 || m["y"] != true {
		t.Errorf("PATCH: %d %q %v; want RFC 7396 merge with tag \"2\"", st, h.Get("ETag"), m)
	}
	for _, tc := range []struct {
		method, path, body string
		hdr                []string
		want               int
	}{
		{"PATCH", "/records/a", `{"x":2}`, []string{"If-Match", `"1"`}, 412},
		{"PATCH", "/records/missing", `{"x":2}`, nil, 404},
		{"PATCH", "/records/a", `{"version":9}`, nil, 422},
		{"PATCH", "/records/a", `[1]`, nil, 400},
		{"POST", "/records", `{"id":"a","x":1}`, nil, 409},
		{"POST", "/records", `{"x":1}`, nil, 422},
		{"PUT", "/records/a", `{"x":1}`, []string{"If-None-Match", "*"}, 412},
		{"PUT", "/records/b", `{"x":1}`, nil, 428},
		{"DELETE", "/records/a", ``, []string{"If-Match", `"1"`}, 412},
		{"DELETE", "/records/missing", ``, nil, 404},
		{"GET", "/changes?cursor=zz", ``, nil, 400},
		{"GET", "/changes?cursor=c99", ``, nil, 400},
		{"GET", "/records?page=0", ``, nil, 400},
		{"GET", "/records?page=1&updated_since=yesterday", ``, nil, 400},
	} {
		if st, _, _ := c.do(tc.method, tc.path, tc.body, tc.hdr...); st != tc.want {
			t.Errorf("%s %s %s: %d; want %d", tc.method, tc.path, tc.body, st, tc.want)
		}
	}
	if doc, _ := c.srv.Doc("a"); fmt.Sprint(doc["version"]) != "2" {
		t.Errorf("after refused writes: version %v; want 2", doc["version"])
	}
}

func TestIdempotencyKeyReplays(t *testing.T) {
	c := newClient(t, resttest.Options{})
	c.srv.Edit("a", map[string]any{"x": 1})
	st1, h1, _ := c.do("PATCH", "/records/a", `{"x":2}`, "Idempotency-Key", "k1")
	c.srv.Edit("a", map[string]any{"x": 5})
	st2, h2, _ := c.do("PATCH", "/records/a", `{"x":2}`, "Idempotency-Key", "k1")
	if st1 != 200 || st2 != 200 || h2.Get("Idempotent-Replayed") != "true" || h1.Get("ETag") != h2.Get("ETag") {
		t.Errorf("replay: %d %d %v; want the first answer replayed", st1, st2, h2)
	}
	if doc, _ := c.srv.Doc("a"); fmt.Sprint(doc["x"]) != "5" {
		t.Errorf("x = %v; want the person's 5 (no second effect)", doc["x"])
	}
}

func TestAuthAndFaultSchedule(t *testing.T) {
	c := newClient(t, resttest.Options{})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", c.srv.URL()+"/changes", nil)
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("without a token: %d; want 401", resp.StatusCode)
	}
	// The same seed gives the same schedule.
	schedule := func() string {
		c := newClient(t, resttest.Options{Seed: 7, Faults: resttest.Faults{RateLimit: 0.3, ServerError: 0.3, RetryAfter: "3"}})
		var b strings.Builder
		for range 40 {
			st, h, _ := c.do("GET", "/changes", "")
			fmt.Fprintf(&b, "%d%s ", st, h.Get("Retry-After"))
		}
		return b.String()
	}
	a, b := schedule(), schedule()
	if a != b || !strings.Contains(a, "4293") || !strings.Contains(a, "200") || !strings.Contains(a, "50") {
		t.Errorf("schedules %q and %q; want equal, with 429 (Retry-After 3), 5xx and 200", a, b)
	}
}

// EditEach stamps every record it edits with one updated_at, gives each its
// own patch, and applies nothing when one patch is not JSON.
func TestEditEachAtOneInstant(t *testing.T) {
	var ticks int
	clock := func() time.Time {
		ticks++
		return time.Date(2026, 3, 2, 9, 0, ticks, 0, time.UTC)
	}
	c := newClient(t, resttest.Options{Clock: clock})
	c.srv.Edit("a", map[string]any{"n": 1, "keep": "a"})
	c.srv.EditEach(map[string]map[string]any{
		"b": {"n": 2},
		"a": {"n": 3, "nested": map[string]any{"x": "y"}},
		"c": {"n": 4},
	})
	st, _, m := c.do("GET", "/changes?limit=10", "")
	if st != 200 {
		t.Fatalf("GET /changes: %d %v", st, m)
	}
	data, _ := m["data"].([]any)
	var got []string
	stamps := map[string]bool{}
	for _, d := range data {
		r := d.(map[string]any)
		got = append(got, fmt.Sprintf("%v:%v", r["id"], r["n"]))
		stamps[r["updated_at"].(string)] = true
	}
	if want := "[a:3 b:2 c:4]"; fmt.Sprint(got) != want {
		t.Errorf("change feed after EditEach: %v; want %s (each its own patch, in key order)", got, want)
	}
	if len(stamps) != 1 || !stamps["2026-03-02T09:00:02Z"] {
		t.Errorf("updated_at values %v; want the one instant 2026-03-02T09:00:02Z", stamps)
	}
	if doc, _ := c.srv.Doc("a"); doc["keep"] != "a" || fmt.Sprint(doc["nested"]) != "map[x:y]" {
		t.Errorf("record a after EditEach: %v; want the patch merged into it", doc)
	}

	defer func() {
		if recover() == nil {
			t.Error("EditEach with a patch that is not JSON did not panic")
		}
		if doc, _ := c.srv.Doc("a"); fmt.Sprint(doc["n"]) != "3" {
			t.Errorf("record a after a failed EditEach: n=%v; want 3, untouched", doc["n"])
		}
		if _, ok := c.srv.Doc("z"); ok {
			t.Error("EditEach that panicked created record z")
		}
	}()
	c.srv.EditEach(map[string]map[string]any{"a": {"n": 9}, "z": {"n": 1}, "zz": {"bad": func() {}}})
}
