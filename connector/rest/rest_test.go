package rest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/rest"
	"github.com/concordsync/concord/connector/rest/resttest"
)

type fields = map[string]concord.Value

func wantClass(t *testing.T, what string, err, class error) {
	t.Helper()
	if got := connector.Classify(err); got != class {
		t.Errorf("%s: got error %v (class %v); want class %v", what, err, got, class)
	}
}

func count(srv *resttest.Server, method string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == method {
			n++
		}
	}
	return n
}

func TestInsecureHTTPRefused(t *testing.T) {
	srv := newServer(t, resttest.Options{})
	cfg := cursorConfig(srv)
	for _, base := range []string{"http://api.example.com/v1", "HTTP://api.example.com", "ftp://api.example.com", "//api.example.com", "https://user:pw@api.example.com", "https://api.example.com?x=1", "api.example.com"} {
		cfg.BaseURL = base
		_, err := rest.New(cfg)
		var ce *rest.ConfigError
		if !errors.Is(err, rest.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Field != "BaseURL" {
			t.Errorf("New with BaseURL %q: got %v; want a ConfigError about BaseURL", base, err)
		}
	}
	cfg.BaseURL = "http://api.example.com/v1"
	if _, err := rest.New(cfg); err == nil || !strings.Contains(err.Error(), "TLS is required") {
		t.Errorf("New with http://: got %v; want an error saying TLS is required", err)
	}
	cfg.AllowInsecureHTTP = true
	if _, err := rest.New(cfg); err != nil {
		t.Errorf("New with http:// and AllowInsecureHTTP: %v; want it allowed", err)
	}
}

func TestConfigRefused(t *testing.T) {
	srv := newServer(t, resttest.Options{})
	for _, tc := range []struct {
		name   string
		edit   func(*rest.Config)
		field  string
		reason string
	}{
		{"no fields", func(c *rest.Config) { c.Fields = nil }, "Fields", "no fields"},
		{"overlapping fields", func(c *rest.Config) { c.Fields = map[string]string{"addr": "address", "city": "address.city"} }, "Fields[addr]", "overlaps"},
		{"same path twice", func(c *rest.Config) { c.Fields = map[string]string{"x": "a.b", "y": "a.b"} }, "Fields[x]", "overlaps"},
		{"field on the key", func(c *rest.Config) { c.Fields = map[string]string{"x": "id"} }, "Fields[x]", "KeyPath"},
		{"field under the tag", func(c *rest.Config) { c.Fields = map[string]string{"x": "version.n"} }, "Fields[x]", "TagPath"},
		{"bad path", func(c *rest.Config) { c.Fields = map[string]string{"x": "a..b"} }, "Fields[x]", "invalid JSON path"},
		{"empty field name", func(c *rest.Config) { c.Fields = map[string]string{"": "a"} }, "Fields[]", "empty"},
		{"two paginations", func(c *rest.Config) { c.Changes.PageParam = "page" }, "Changes", "choose one"},
		{"no pagination", func(c *rest.Config) { c.Changes.CursorParam = "" }, "Changes", "neither"},
		{"no next cursor path", func(c *rest.Config) { c.Changes.NextCursorPath = "" }, "Changes.NextCursorPath", "required"},
		{"page without since", func(c *rest.Config) {
			c.Changes = rest.Changes{Path: "/records", PageParam: "page"}
		}, "Changes.SinceParam", "miss changes"},
		{"page without modified", func(c *rest.Config) {
			c.Changes = rest.Changes{Path: "/records", PageParam: "page", SinceParam: "s"}
			c.ModifiedPath = ""
		}, "ModifiedPath", "required"},
		{"param injection", func(c *rest.Config) { c.Changes.CursorParam = "cursor&admin=1" }, "Changes.CursorParam", "not a plain"},
		{"collection without slash", func(c *rest.Config) { c.Collection = "records" }, "Collection", "starting with '/'"},
		{"collection with query", func(c *rest.Config) { c.Collection = "/records?x" }, "Collection", "'?'"},
		{"negative timeout", func(c *rest.Config) { c.Timeout = -1 }, "Timeout", "negative"},
		{"negative size", func(c *rest.Config) { c.MaxResponseBytes = -1 }, "MaxResponseBytes", "negative"},
		{"create method", func(c *rest.Config) { c.Create = "GET" }, "Create", "want"},
		{"verify checks", func(c *rest.Config) { c.Verify = &rest.Verify{Checks: -1} }, "Verify.Checks", "negative"},
		{"idempotency header", func(c *rest.Config) { c.IdempotencyHeader = "Bad: header" }, "IdempotencyHeader", "not a header"},
	} {
		cfg := cursorConfig(srv)
		tc.edit(&cfg)
		_, err := rest.New(cfg)
		var ce *rest.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: got %v; want a ConfigError for %s saying %q", tc.name, err, tc.field, tc.reason)
		}
	}
	cfg := cursorConfig(srv)
	cfg.Scan = rest.Scan{Path: "/records"}
	if _, err := rest.NewScanning(cfg); !errors.Is(err, rest.ErrInvalidConfig) {
		t.Errorf("NewScanning without Scan.AfterParam: got %v; want ErrInvalidConfig", err)
	}
}

// The header provider is asked before every request, and what it returns
// is what the server sees, as the token rotates. Its failure and its panic
// are transient errors, and no request goes out without its headers.
func TestAuthHeaderPerRequest(t *testing.T) {
	srv := newServer(t, resttest.Options{Token: "t1"})
	var calls atomic.Int64
	var current atomic.Value
	current.Store("t1")
	cfg := cursorConfig(srv)
	cfg.Auth = rest.BearerToken(func(context.Context) (string, error) {
		calls.Add(1)
		return current.Load().(string), nil
	})
	conn := mustNew(t, cfg)
	srv.Edit("a", map[string]any{"n": 1})
	ctx := t.Context()
	if _, err := conn.Changes(ctx, "", 10); err != nil {
		t.Fatal(err)
	}
	srv.SetTokens("t2")
	current.Store("t2")
	if _, err := conn.Get(ctx, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || calls.Load() != 2 {
		t.Fatalf("%d requests, %d provider calls; want 2 and 2", len(reqs), calls.Load())
	}
	for i, want := range []string{"Bearer t1", "Bearer t2"} {
		if got := reqs[i].Header.Get("Authorization"); got != want {
			t.Errorf("request %d: Authorization %q; want %q", i, got, want)
		}
	}

	// The old token is refused now: a 401 is permanent.
	current.Store("t1")
	_, err := conn.Get(ctx, []string{"a"})
	wantClass(t, "Get with a revoked token", err, connector.ErrPermanent)
	var re *rest.RequestError
	if !errors.As(err, &re) || re.Status != http.StatusUnauthorized {
		t.Errorf("Get with a revoked token: %v; want a RequestError with status 401", err)
	}

	for name, p := range map[string]rest.HeaderProvider{
		"failing": rest.HeaderFunc(func(context.Context) (http.Header, error) { return nil, errors.New("token endpoint down") }),
		"panicking": rest.HeaderFunc(func(context.Context) (http.Header, error) {
			panic("provider bug")
		}),
		"empty token": rest.BearerToken(func(context.Context) (string, error) { return "", nil }),
		"header injection": rest.BearerToken(func(context.Context) (string, error) {
			return "t2\r\nX-Admin: 1", nil
		}),
	} {
		cfg.Auth = p
		conn := mustNew(t, cfg)
		before := len(srv.Requests())
		_, err := conn.Changes(ctx, "", 10)
		wantClass(t, name+" provider", err, connector.ErrTransient)
		if !errors.Is(err, rest.ErrAuth) {
			t.Errorf("%s provider: %v; want ErrAuth", name, err)
		}
		res, err := conn.Apply(ctx, []connector.Patch{{Key: "a", Set: fields{"n": 2}}})
		if err != nil || !errors.Is(res[0].Err, rest.ErrAuth) {
			t.Errorf("%s provider: Apply: %v, %v; want a per-patch ErrAuth", name, res, err)
		}
		if n := len(srv.Requests()) - before; n != 0 {
			t.Errorf("%s provider: %d requests sent; want none", name, n)
		}
	}
}

// statusServer answers every request with status, headers and body.
func statusServer(t *testing.T, status int, header map[string]string, body string) (*resttest.Server, *rest.Scanning) {
	t.Helper()
	srv := newServer(t, resttest.Options{})
	srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
		return true
	})
	return srv, mustNew(t, cursorConfig(srv))
}

func TestStatusClasses(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		status int
		header map[string]string
		class  error
		after  time.Duration // 0: no RetryAfter
	}{
		{429, map[string]string{"Retry-After": "7"}, connector.ErrRateLimited, 7 * time.Second},
		{429, nil, connector.ErrRateLimited, 0},
		{429, map[string]string{"Retry-After": "soon"}, connector.ErrRateLimited, 0},
		{503, map[string]string{"Retry-After": future}, connector.ErrRateLimited, 90 * time.Second},
		{503, nil, connector.ErrTransient, 0},
		{500, map[string]string{"Retry-After": "5"}, connector.ErrTransient, 0},
		{502, nil, connector.ErrTransient, 0},
		{408, nil, connector.ErrTransient, 0},
		{400, nil, connector.ErrPermanent, 0},
		{401, nil, connector.ErrPermanent, 0},
		{403, nil, connector.ErrPermanent, 0},
		{422, nil, connector.ErrPermanent, 0},
		{409, nil, connector.ErrConflict, 0},
		{412, nil, connector.ErrConflict, 0},
		{302, map[string]string{"Location": "/elsewhere"}, connector.ErrPermanent, 0},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			_, conn := statusServer(t, tc.status, tc.header, `{"detail":"nope"}`)
			_, err := conn.Changes(t.Context(), "", 10)
			wantClass(t, "Changes", err, tc.class)
			res, err := conn.Apply(t.Context(), []connector.Patch{{Key: "k", Set: fields{"n": 1}}})
			if err != nil {
				t.Fatal(err)
			}
			wantClass(t, "Apply", res[0].Err, tc.class)
			for _, e := range []error{res[0].Err} {
				d, ok := connector.RetryAfter(e)
				if tc.after == 0 && ok || tc.after != 0 && (d < tc.after-2*time.Second || d > tc.after) {
					t.Errorf("RetryAfter = %v, %v; want %v", d, ok, tc.after)
				}
				if !strings.Contains(e.Error(), "/v1/records/k") || !strings.Contains(e.Error(), fmt.Sprint(tc.status)) {
					t.Errorf("error %q; want it to name the endpoint and the status", e)
				}
			}
		})
	}
	// 404 on a patch is NotFound; on the feed (a wrong path) it is
	// permanent.
	_, conn := statusServer(t, 404, nil, `{}`)
	res, _ := conn.Apply(t.Context(), []connector.Patch{{Key: "k", Set: fields{"n": 1}}})
	wantClass(t, "PATCH 404", res[0].Err, connector.ErrNotFound)
	_, err := conn.Changes(t.Context(), "", 10)
	wantClass(t, "Changes 404", err, connector.ErrPermanent)
}

// The faults of the test server with Retry-After honoured as RateLimited.
func TestRetryAfterHonoured(t *testing.T) {
	srv := newServer(t, resttest.Options{Faults: resttest.Faults{RateLimit: 1, RetryAfter: "120"}})
	conn := mustNew(t, cursorConfig(srv))
	_, err := conn.Changes(t.Context(), "", 10)
	wantClass(t, "Changes", err, connector.ErrRateLimited)
	if d, ok := connector.RetryAfter(err); !ok || d != 2*time.Minute {
		t.Errorf("RetryAfter = %v, %v; want 2m0s", d, ok)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	srv := newServer(t, resttest.Options{Faults: resttest.Faults{Slow: 1, Delay: 5 * time.Second}})
	cfg := cursorConfig(srv)
	cfg.Timeout = 50 * time.Millisecond
	conn := mustNew(t, cfg)
	start := time.Now()
	_, err := conn.Changes(t.Context(), "", 10)
	wantClass(t, "slow Changes", err, connector.ErrTransient)
	if !errors.Is(err, rest.ErrTimeout) || !strings.Contains(err.Error(), "/v1/changes") {
		t.Errorf("slow Changes: %v; want ErrTimeout naming the endpoint", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow Changes took %v; want about the 50ms timeout", d)
	}

	cfg.Timeout = time.Minute
	conn = mustNew(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	res, err := conn.Apply(ctx, []connector.Patch{{Key: "a", Set: fields{"n": 1}}, {Key: "b", Set: fields{"n": 1}}})
	if !errors.Is(err, context.DeadlineExceeded) || res != nil {
		t.Errorf("Apply with the caller's deadline passing: %v, %v; want no results and the context's error", res, err)
	}
}

func TestETagConflict(t *testing.T) {
	srv := newServer(t, resttest.Options{})
	conn := mustNew(t, cursorConfig(srv))
	ctx := t.Context()
	srv.Edit("a", map[string]any{"n": 1})
	recs, err := conn.Get(ctx, []string{"a"})
	if err != nil || len(recs) != 1 || recs[0].Tag != `"1"` {
		t.Fatalf("Get: %v, %v; want record a with tag \"1\"", recs, err)
	}
	srv.Edit("a", map[string]any{"n": 2}) // a person, meanwhile
	res, err := conn.Apply(ctx, []connector.Patch{{Key: "a", Set: fields{"n": 3}, IfMatch: recs[0].Tag}})
	if err != nil {
		t.Fatal(err)
	}
	wantClass(t, "stale If-Match", res[0].Err, connector.ErrConflict)
	if doc, _ := srv.Doc("a"); fmt.Sprint(doc["n"]) != "2" {
		t.Errorf("after a conflicting write n = %v; want the person's 2 kept", doc["n"])
	}
	if got := srv.Requests(); got[len(got)-1].Header.Get("If-Match") != `"1"` {
		t.Errorf("If-Match sent %q; want %q", got[len(got)-1].Header.Get("If-Match"), `"1"`)
	}
}

// Fields at nested paths are written as nested JSON, merged: a write of
// the city keeps the zip the API holds beside it.
func TestNestedMergePatch(t *testing.T) {
	srv := newServer(t, resttest.Options{})
	cfg := cursorConfig(srv)
	cfg.Fields = map[string]string{"city": "address.city", "zip": "address.zip", "first_tag": "tags[0]", "name": "name"}
	conn := mustNew(t, cfg)
	ctx := t.Context()
	srv.Edit("c1", map[string]any{"address": map[string]any{"city": "Oslo", "zip": "0150"}, "tags": []any{"vip", "eu"}, "name": "Ada"})
	res, _ := conn.Apply(ctx, []connector.Patch{{Key: "c1", Set: fields{"city": "Bergen", "name": nil}}})
	if res[0].Err != nil || res[0].Tag != `"2"` || res[0].Modified.IsZero() {
		t.Fatalf("Apply: %+v; want success with tag \"2\" and a modification time", res[0])
	}
	doc, _ := srv.Doc("c1")
	if got := fmt.Sprint(doc["address"]); got != "map[city:Bergen zip:0150]" {
		t.Errorf("address after writing the city: %s; want the zip kept", got)
	}
	if _, ok := doc["name"]; ok {
		t.Errorf("name after writing nil: %v; want it removed (merge patch null)", doc["name"])
	}
	b, err := conn.Changes(ctx, "", 10)
	if err != nil || len(b.Records) != 1 {
		t.Fatalf("Changes: %v, %v", b, err)
	}
	want := fields{"city": "Bergen", "zip": "0150", "first_tag": "vip", "name": nil}
	if !concord.EqualValues(map[string]any(want), map[string]any(b.Records[0].Fields)) {
		t.Errorf("read back %v; want %v", b.Records[0].Fields, want)
	}
	// A list element cannot be written with a merge patch.
	res, _ = conn.Apply(ctx, []connector.Patch{{Key: "c1", Set: fields{"first_tag": "vvip", "city": "Rome"}}})
	wantClass(t, "writing tags[0]", res[0].Err, connector.ErrPermanent)
	if !strings.Contains(fmt.Sprint(res[0].Err), `field "first_tag"`) {
		t.Errorf("writing tags[0]: %v; want the field named", res[0].Err)
	}
	if doc, _ := srv.Doc("c1"); fmt.Sprint(doc["address"]) != "map[city:Bergen zip:0150]" {
		t.Errorf("after a refused patch the address is %v; want nothing of the patch applied", doc["address"])
	}
}

func TestWritesRefused(t *testing.T) {
	srv := newServer(t, resttest.Options{})
	cfg := cursorConfig(srv)
	cfg.Create, cfg.AllowDelete = rest.CreateNone, false
	conn := mustNew(t, cfg)
	srv.Edit("a", map[string]any{"n": 1})
	before := len(srv.Requests())
	res, err := conn.Apply(t.Context(), []connector.Patch{
		{Key: "new", Set: fields{"n": 1}, Create: true},
		{Key: "a", Delete: true},
		{Key: "a", Set: fields{"bytes": []byte("x")}},
		{Key: "a", Set: fields{"n": []byte("x")}},
		{Key: "a", Set: fields{"n": map[string]any{"deep": []any{[]byte("x")}}}},
		{Key: "a", Set: fields{"n": func() {}}},
		{Key: "..", Set: fields{"n": 1}},
		{Key: "", Set: fields{"n": 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	wants := []error{rest.ErrNotPermitted, rest.ErrNotPermitted, rest.ErrBadValue, rest.ErrBadValue, rest.ErrBadValue, rest.ErrBadValue, rest.ErrBadKey, rest.ErrBadKey}
	for i, r := range res {
		wantClass(t, fmt.Sprintf("patch %d", i), r.Err, connector.ErrPermanent)
		if !errors.Is(r.Err, wants[i]) {
			t.Errorf("patch %d: %v; want %v", i, r.Err, wants[i])
		}
	}
	if n := len(srv.Requests()) - before; n != 0 {
		t.Errorf("%d requests sent for refused patches; want none", n)
	}
}

// Keys with slashes, query characters, spaces and non-ASCII letters name
// exactly their record.
func TestHostileKeys(t *testing.T) {
	srv := newServer(t, resttest.Options{})
	cfg := pageConfig(srv) // creates with PUT at the record's URL
	conn := mustNew(t, cfg)
	ctx := t.Context()
	keys := []string{"a/b", "../admin", "x?y=1#z", "100%", "sp ace", "Ærø", "%2F", "a\\b"}
	var ps []connector.Patch
	for i, k := range keys {
		ps = append(ps, connector.Patch{Key: k, Set: fields{"n": i}, Create: true})
	}
	res, err := conn.Apply(ctx, ps)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("create %q: %v", keys[i], r.Err)
		}
		if doc, ok := srv.Doc(keys[i]); !ok || fmt.Sprint(doc["n"]) != fmt.Sprint(i) {
			t.Errorf("record %q on the server: %v, %v; want n=%d", keys[i], doc, ok, i)
		}
	}
	recs, err := conn.Get(ctx, keys)
	if err != nil || len(recs) != len(keys) {
		t.Fatalf("Get: %d records, %v; want %d", len(recs), err, len(keys))
	}
	for _, r := range recs {
		if srv.Doc(r.Key); r.Fields["n"] == nil {
			t.Errorf("Get %q: %v", r.Key, r.Fields)
		}
	}
}
