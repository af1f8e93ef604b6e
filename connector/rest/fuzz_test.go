package rest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/rest"
)

// FuzzPath parses a path and walks a document with it: a path that parses
// prints back as itself, a walk never panics, and a path refused names a
// byte offset inside it. Mapped into a connector, a path reads back from a
// record exactly what a write of it put there.
func FuzzPath(f *testing.F) {
	for _, s := range []string{"a", "address.city", "tags[0]", "lines[2].sku", "m[0][1]", "a..b", "[0]", "a[01]", "a[", "a]", "a.", ".a",
		"a[1048576]", "a[99999999999999999999]", "é.ß", "a[0]b", "a.[0]", "x.y.z.w"} {
		f.Add(s, `{"a":{"b":[1,{"c":null}]},"tags":["x"],"address":{"city":"Oslo"}}`)
	}
	f.Fuzz(func(t *testing.T, path, doc string) {
		p, err := rest.ParsePath(path)
		if err != nil {
			var pe *rest.PathError
			if !errors.As(err, &pe) || !errors.Is(err, rest.ErrBadPath) || pe.Pos < 0 || pe.Pos > len(path) {
				t.Fatalf("ParsePath(%q): %v; want a PathError with an offset in the path", path, err)
			}
			return
		}
		if p.String() != path {
			t.Fatalf("ParsePath(%q).String() = %q", path, p.String())
		}
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			if _, _, err := p.Lookup(v); err != nil && !errors.Is(err, rest.ErrShape) {
				t.Fatalf("Lookup(%q): %v; want nil or ErrShape", path, err)
			}
		}
		// Round trip through a connector whose only field has this path.
		if strings.Contains(path, "[") || path == "id" || strings.HasPrefix(path, "id.") {
			return
		}
		conn, err := rest.New(rest.Config{
			BaseURL: "https://api.invalid", Collection: "/r",
			Fields:  map[string]string{"f": path},
			Changes: rest.Changes{Path: "/c", CursorParam: "c", NextCursorPath: "next"},
			Client:  &http.Client{Transport: echo{}},
		})
		if err != nil {
			t.Fatalf("New with field path %q: %v", path, err)
		}
		res, err := conn.Apply(t.Context(), []connector.Patch{{Key: "k", Set: map[string]concord.Value{"f": "v"}}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("Apply with field path %q: %v, %v", path, err, res[0].Err)
		}
		recs, err := conn.Get(t.Context(), []string{"k"})
		if err != nil || len(recs) != 1 || recs[0].Fields["f"] != "v" {
			t.Fatalf("path %q: read back %v, %v; want f=v", path, recs, err)
		}
	})
}

// echo is an API of one record that keeps what it was last sent.
type echo struct{}

var echoDoc = map[string]any{}

func (echo) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, err
		}
		m["id"] = "k"
		echoDoc = m
	}
	b, _ := json.Marshal(echoDoc)
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
}

// fixed answers every request with one body.
type fixed []byte

func (b fixed) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
}

// FuzzFeedResponse serves arbitrary bytes as a change feed page, a record
// and a scan page: the connector never panics, and either fails the call
// or returns records that Concord accepts, within the limit, each key
// once.
func FuzzFeedResponse(f *testing.F) {
	for _, s := range []string{
		`{"data":[{"id":"a","n":1,"profile":{"name":"x"},"updated_at":"2026-01-01T00:00:00Z","version":3}],"next_cursor":"c1","has_more":false}`,
		`{"data":[{"id":1},{"id":"1"}],"next_cursor":7}`,
		`{"data":[{"id":"a","deleted":true}],"next_cursor":null,"has_more":true}`,
		`{"data":[{"id":"a","attrs":"s"}]}`, `[]`, `{"data":[{"id":"a","n":1e400}]}`, "\xff", `{"id":"k","n":[[[]]]}`,
	} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "rest.p2.eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJrIjoiYSIsIm4iOjF9")
	}
	f.Fuzz(func(t *testing.T, body []byte, cursor string) {
		for _, page := range []bool{false, true} {
			cfg := rest.Config{
				BaseURL: "https://api.invalid", Collection: "/records",
				TagPath: "version", ModifiedPath: "updated_at", DeletedPath: "deleted",
				Fields:  fieldPaths,
				Changes: rest.Changes{Path: "/changes", ItemsPath: "data", CursorParam: "cursor", NextCursorPath: "next_cursor", HasMorePath: "has_more"},
				Scan:    rest.Scan{Path: "/records", ItemsPath: "data", AfterParam: "after"},
				Client:  &http.Client{Transport: fixed(body)},
			}
			if page {
				cfg.Changes = rest.Changes{Path: "/records", ItemsPath: "data", PageParam: "page", SinceParam: "since"}
			}
			conn, err := rest.NewScanning(cfg)
			if err != nil {
				t.Fatal(err)
			}
			b, err := conn.Changes(t.Context(), connector.Cursor(cursor), 3)
			if err == nil {
				checkRecords(t, b.Records, 3)
			}
			if b, err := conn.Scan(t.Context(), connector.Cursor(cursor), 3); err == nil {
				checkRecords(t, b.Records, 3)
			}
			if recs, err := conn.Get(t.Context(), []string{"k"}); err == nil {
				checkRecords(t, recs, 1)
			}
		}
	})
}

func checkRecords(t *testing.T, recs []concord.Record, limit int) {
	t.Helper()
	if len(recs) > limit {
		t.Fatalf("%d records for limit %d", len(recs), limit)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if err := r.Validate(); err != nil {
			t.Fatalf("record %v: %v", r, err)
		}
		if seen[r.Key] {
			t.Fatalf("record %q twice", r.Key)
		}
		seen[r.Key] = true
	}
}
