package rest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// Compile-time checks of the abilities each type offers.
var (
	_ connector.Connector = (*Connector)(nil)
	_ connector.Getter    = (*Connector)(nil)
	_ connector.Connector = (*Scanning)(nil)
	_ connector.Getter    = (*Scanning)(nil)
	_ connector.Scanner   = (*Scanning)(nil)
)

// Connector is a JSON REST API as a system. It implements
// [connector.Connector] and [connector.Getter]; [Scanning] adds
// [connector.Scanner]. Create it with [New]. All methods are safe for
// concurrent use.
type Connector struct {
	c *compiled

	mu      sync.Mutex
	pending map[string]*pendingWrite // the reverify queue, by record key
}

// Scanning is a [Connector] whose API also lists every record in key order:
// it implements [connector.Scanner]. Create it with [NewScanning].
type Scanning struct {
	*Connector
}

// New validates cfg and returns a Connector. It sends no request and starts
// no goroutine. The error is a [*ConfigError] naming the field at fault.
func New(cfg Config) (*Connector, error) {
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	return &Connector{c: c, pending: map[string]*pendingWrite{}}, nil
}

// NewScanning is [New] for an API that can also list every record in key
// order, as Config.Scan describes.
func NewScanning(cfg Config) (*Scanning, error) {
	conn, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := conn.c.compileScan(); err != nil {
		return nil, err
	}
	return &Scanning{conn}, nil
}

// endpoint returns BaseURL + path with query q.
func (c *compiled) endpoint(path string, q url.Values) *url.URL {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	return &u
}

// itemURL returns the URL of the record with key.
func (c *compiled) itemURL(key string) (*url.URL, error) {
	if key == "" || key == "." || key == ".." || !utf8.ValidString(key) {
		return nil, ErrBadKey
	}
	u := *c.base
	coll := (&url.URL{Path: c.base.Path + c.cfg.Collection}).EscapedPath()
	u.Path = c.base.Path + c.cfg.Collection + "/" + key
	u.RawPath = coll + "/" + url.PathEscape(key)
	return &u, nil
}

func badKeyError(method, key string) error {
	return connector.Permanent(&RequestError{Method: method, Endpoint: "(not sent)", Key: key, Err: ErrBadKey})
}

// ---- the change feed ----

// Changes returns up to limit records changed after cursor, as described
// on [Changes]: records oldest first, each key once (the latest state when
// the API lists a key twice on one page), deleted ones with Deleted set. A
// page with more records than limit, out of order, or with a record the
// configuration cannot read fails the whole call: no part of a page is
// ever returned.
func (conn *Connector) Changes(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	c := conn.c
	if err := ctx.Err(); err != nil {
		return connector.Batch{}, err
	}
	if limit <= 0 {
		return connector.Batch{}, connector.Permanent(fmt.Errorf("rest: Changes: limit %d: want a positive limit", limit))
	}
	if c.cursorMode {
		return c.cursorChanges(ctx, cursor, limit)
	}
	return c.pageChanges(ctx, cursor, limit)
}

// page fetches one page of records from path with query q.
func (c *compiled) page(ctx context.Context, path string, q url.Values, items *Path, limit int) (*call, any, []concord.Record, error) {
	cl := c.newCall(http.MethodGet, c.endpoint(path, q), "")
	r, err := c.do(ctx, cl)
	if err != nil {
		return cl, nil, nil, err
	}
	doc, err := decodeJSON(cl, r.status, r.body)
	if err != nil {
		return cl, nil, nil, err
	}
	list, err := list(cl, doc, items)
	if err != nil {
		return cl, nil, nil, err
	}
	if len(list) > limit {
		return cl, nil, nil, malformed(cl, "", "", "%d records for a page of at most %d", len(list), limit)
	}
	recs := make([]concord.Record, len(list))
	for i, it := range list {
		if recs[i], err = c.record(cl, it, ""); err != nil {
			return cl, nil, nil, err
		}
	}
	return cl, doc, recs, nil
}

func (c *compiled) cursorChanges(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	ch := c.cfg.Changes
	q := url.Values{ch.LimitParam: {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set(ch.CursorParam, string(cursor))
	}
	cl, doc, recs, err := c.page(ctx, ch.Path, q, c.feedItems, limit)
	if err != nil {
		return connector.Batch{}, err
	}
	b := connector.Batch{Records: latestOnly(recs), Next: cursor}
	v, _, err := c.nextCursor.Lookup(doc)
	if err != nil {
		return connector.Batch{}, malformed(cl, "", "", "next cursor: %v", err)
	}
	switch n := v.(type) {
	case nil:
	case string:
		if n != "" {
			b.Next = connector.Cursor(n)
		}
	case json.Number:
		b.Next = connector.Cursor(n.String())
	default:
		return connector.Batch{}, malformed(cl, "", "", "next cursor at %q is %s; want a string or a number", c.nextCursor, jsonKind(v))
	}
	declared := false
	if c.hasMore != nil {
		v, ok, err := c.hasMore.Lookup(doc)
		if err != nil {
			return connector.Batch{}, malformed(cl, "", "", "has-more flag: %v", err)
		}
		if ok && v != nil {
			more, isBool := v.(bool)
			if !isBool {
				return connector.Batch{}, malformed(cl, "", "", "has-more flag at %q is %s; want a boolean", c.hasMore, jsonKind(v))
			}
			b.More, declared = more, true
		}
	}
	if !declared {
		b.More = len(recs) == limit
	}
	if b.More && b.Next == cursor {
		if declared {
			return connector.Batch{}, malformed(cl, "", "", "more changes announced without a new cursor (it would read the same page forever)")
		}
		b.More = false
	}
	return b, nil
}

// latestOnly keeps the last occurrence of each key, in feed order.
func latestOnly(recs []concord.Record) []concord.Record {
	last := make(map[string]int, len(recs))
	for i, r := range recs {
		last[r.Key] = i
	}
	if len(last) == len(recs) {
		return recs
	}
	out := recs[:0:0]
	for i, r := range recs {
		if last[r.Key] == i {
			out = append(out, r)
		}
	}
	return out
}

// pageCursor is the position in a page-paginated feed: the modification
// time and key of the last record returned, and how many records the feed
// listed at that time up to and including that key when it was read. A
// cursor with no key (and count 0) reads everything from Since: the
// overlap window re-read after the end of a run.
type pageCursor struct {
	Since time.Time `json:"t"`
	Key   string    `json:"k"`
	Count int       `json:"n"`
}

const (
	pageCursorPrefix = "rest.p2."
	maxPage          = 1 << 30
	// maxStepsBack bounds the requests one Changes call makes to find
	// the page where its records resume; the cursor keeps the progress.
	maxStepsBack = 8
)

func (pc pageCursor) encode() connector.Cursor {
	b, _ := json.Marshal(pc) // a struct of a time, a string and an int
	return connector.Cursor(pageCursorPrefix + base64.RawURLEncoding.EncodeToString(b))
}

func decodePageCursor(c connector.Cursor) (pageCursor, error) {
	var pc pageCursor
	bad := func(reason string) (pageCursor, error) {
		return pageCursor{}, connector.Permanent(fmt.Errorf("rest: %w %.64q: %s", ErrBadCursor, string(c), reason))
	}
	s, ok := strings.CutPrefix(string(c), pageCursorPrefix)
	if !ok {
		return bad("not a page cursor of this connector")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return bad(err.Error())
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pc); err != nil {
		return bad(err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("data after the cursor")
	}
	if pc.Count < 0 || pc.Count > maxPage || (pc.Count == 0) != (pc.Key == "") {
		return bad(fmt.Sprintf("count %d out of range for key %q", pc.Count, pc.Key))
	}
	if !utf8.ValidString(pc.Key) {
		return bad("key is invalid UTF-8")
	}
	if pc.Since.IsZero() {
		return bad("no time")
	}
	return pc, nil
}

// after reports whether r comes after the position (since, key) in the
// feed's order.
func after(r concord.Record, since time.Time, key string) bool {
	if !r.Modified.Equal(since) {
		return r.Modified.After(since)
	}
	return r.Key > key
}

// pageChanges reads a feed ordered by (modification time, key) with an
// inclusive since filter. The records at the cursor's time up to its key
// (pc.Count of them when last read) come first in the filtered list. The
// page asked for holds both offset pc.Count-1 (the last record read) and
// pc.Count (the first not read), its size chosen to make that so, and its
// first record must be one already read: otherwise records read before
// have left the list (edited since: they moved to its end), the offsets
// shifted, and the page before is asked for. So a page never starts past
// an unread record, and every call makes progress.
func (c *compiled) pageChanges(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	ch := c.cfg.Changes
	var pc pageCursor
	q := url.Values{}
	if cursor != "" {
		var err error
		if pc, err = decodePageCursor(cursor); err != nil {
			return connector.Batch{}, err
		}
		q.Set(ch.SinceParam, pc.Since.UTC().Format(time.RFC3339Nano))
	}
	size := pageSize(pc.Count, limit)
	q.Set(ch.LimitParam, strconv.Itoa(size))
	page := 1
	if pc.Count > 0 {
		page = (pc.Count-1)/size + 1
	}
	for step := 0; ; step++ {
		if page > maxPage {
			return connector.Batch{}, connector.Permanent(fmt.Errorf("rest: Changes: page %d: more than %d pages at one modification time", page, maxPage))
		}
		q.Set(ch.PageParam, strconv.Itoa(page))
		cl, _, recs, err := c.page(ctx, ch.Path, q, c.feedItems, size)
		if err != nil {
			return connector.Batch{}, err
		}
		for i, r := range recs {
			if r.Modified.IsZero() {
				return connector.Batch{}, malformed(cl, r.Key, "", "no modification time at %q: page pagination needs one on every record", c.modified)
			}
			if cursor != "" && r.Modified.Before(pc.Since) {
				return connector.Batch{}, malformed(cl, r.Key, "", "modified %s, before the %s=%s asked for", r.Modified.Format(time.RFC3339Nano), ch.SinceParam, pc.Since.Format(time.RFC3339Nano))
			}
			if i > 0 && !after(r, recs[i-1].Modified, recs[i-1].Key) {
				return connector.Batch{}, malformed(cl, r.Key, "", "the page is not ordered by (modification time, key): record %q follows %q", r.Key, recs[i-1].Key)
			}
		}
		if page > 1 && (len(recs) == 0 || after(recs[0], pc.Since, pc.Key)) {
			// Offsets shifted: the page starts past what was read.
			page--
			if step < maxStepsBack {
				continue
			}
			pc.Count = (page-1)*size + 1 // resume the search here
			return connector.Batch{Next: pc.encode(), More: true}, nil
		}
		return pageBatch(cursor, pc, recs, (page-1)*size, size, limit, ch.Overlap), nil
	}
}

// pageSize returns a page size s for which the page holding offset n-1
// also holds offset n (n is not a multiple of s): limit+1 when it can,
// so that one read record and limit new ones fit.
func pageSize(n, limit int) int {
	if n == 0 {
		return limit
	}
	for s := limit + 1; s >= 2; s-- {
		if n%s != 0 {
			return s
		}
	}
	for s := limit + 2; ; s++ { // n < 2³⁰ is not a multiple of every size
		if n%s != 0 {
			return s
		}
	}
}

// pageBatch cuts the batch, at most limit records, from a checked page of
// size that starts at offset.
//
// At the end of the feed (More false) the cursor goes back by overlap from
// the last record's time and drops nothing: the next read repeats the
// records of the overlap window, and so sees an edit that the API stamped
// with a time at or before the boundary after the boundary was read.
func pageBatch(cursor connector.Cursor, pc pageCursor, recs []concord.Record, offset, size, limit int, overlap time.Duration) connector.Batch {
	b := pageRun(cursor, pc, recs, offset, size, limit)
	if b.More || b.Next == cursor && pc.Key == "" {
		return b
	}
	end := pc.Since
	if n := len(b.Records); n > 0 {
		end = b.Records[n-1].Modified
	}
	b.Next = pageCursor{Since: end.Add(-overlap)}.encode()
	return b
}

func pageRun(cursor connector.Cursor, pc pageCursor, recs []concord.Record, offset, size, limit int) connector.Batch {
	b := connector.Batch{Next: cursor, More: len(recs) == size}
	lastIdx := -1
	for i, r := range recs {
		if pc.Key != "" && !after(r, pc.Since, pc.Key) {
			continue
		}
		if len(b.Records) == limit {
			b.More = true
			break
		}
		b.Records = append(b.Records, r)
		lastIdx = i
	}
	if lastIdx < 0 {
		if len(recs) > 0 {
			pc.Count = offset + len(recs) // all read before
			b.Next = pc.encode()
		}
		return b
	}
	last := recs[lastIdx]
	n := 0
	if cursor != "" && last.Modified.Equal(pc.Since) {
		n = offset + lastIdx + 1 // the page is at Since up to last
	} else {
		for _, r := range recs[:lastIdx+1] {
			if r.Modified.Equal(last.Modified) {
				n++
			}
		}
	}
	b.Next = pageCursor{Since: last.Modified, Key: last.Key, Count: n}.encode()
	b.Records = latestOnly(b.Records) // a record edited between two pages of one answer
	return b
}

// ---- reads by key ----

// Get returns the live records with the given keys, one GET each; a key the
// API answers with 404 (or reports deleted) is absent from the result, and
// so is a key that cannot name a URL. Any other failure fails the call.
func (conn *Connector) Get(ctx context.Context, keys []string) ([]concord.Record, error) {
	var out []concord.Record
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		r, ok, err := conn.c.get(ctx, k)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// get reads one record; false when there is none.
func (c *compiled) get(ctx context.Context, key string) (concord.Record, bool, error) {
	u, err := c.itemURL(key)
	if err != nil {
		return concord.Record{}, false, nil
	}
	cl := c.newCall(http.MethodGet, u, key)
	r, err := c.do(ctx, cl)
	if err != nil {
		if r != nil && r.status == http.StatusNotFound {
			return concord.Record{}, false, nil
		}
		return concord.Record{}, false, err
	}
	rec, err := c.single(cl, r)
	if err != nil {
		return concord.Record{}, false, err
	}
	return rec, !rec.Deleted, nil
}

// ---- scanning ----

// Scan returns up to limit live records after cursor (the last key read) in
// increasing byte order of their keys; Batch.More is false after a short
// page. A page out of key order fails the call.
func (s *Scanning) Scan(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	c := s.c
	if err := ctx.Err(); err != nil {
		return connector.Batch{}, err
	}
	if limit <= 0 {
		return connector.Batch{}, connector.Permanent(fmt.Errorf("rest: Scan: limit %d: want a positive limit", limit))
	}
	q := url.Values{c.cfg.Scan.LimitParam: {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set(c.cfg.Scan.AfterParam, string(cursor))
	}
	cl, _, recs, err := c.page(ctx, c.cfg.Scan.Path, q, c.scanItems, limit)
	if err != nil {
		return connector.Batch{}, err
	}
	b := connector.Batch{Next: cursor, More: len(recs) == limit}
	prev := string(cursor)
	for i, r := range recs {
		if (i > 0 || cursor != "") && r.Key <= prev {
			return connector.Batch{}, malformed(cl, r.Key, "", "the list is not in increasing key order after %q", prev)
		}
		prev = r.Key
		if !r.Deleted {
			b.Records = append(b.Records, r)
		}
	}
	if len(recs) > 0 {
		b.Next = connector.Cursor(prev)
	}
	return b, nil
}

// ---- writes ----

// Apply writes each patch with its own request, in order, and returns one
// Result per patch: a failing patch never stops the others, and a patch is
// either applied by the API (one request) or not. It returns a non-nil
// error only when ctx ends; the patches before that may have been applied.
//
// A patch becomes a PATCH of the record's URL with a JSON merge patch body
// (RFC 7396; a nil value sends null, which empties the field), "If-Match"
// when Patch.IfMatch is set and the idempotency header when
// Patch.IdempotencyKey is set. Create uses Config.Create; Delete needs
// Config.AllowDelete and treats 404 as done.
func (conn *Connector) Apply(ctx context.Context, patches []connector.Patch) ([]connector.Result, error) {
	out := make([]connector.Result, len(patches))
	for i, p := range patches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = conn.apply(ctx, p)
		if out[i].Err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return out, nil
}

func (conn *Connector) apply(ctx context.Context, p connector.Patch) connector.Result {
	c := conn.c
	res := connector.Result{Key: p.Key}
	u, err := c.itemURL(p.Key)
	if err != nil {
		res.Err = badKeyError(http.MethodPatch, p.Key)
		return res
	}
	if p.Delete {
		conn.forget(p.Key)
		res.Err = c.delete(ctx, u, p)
		return res
	}
	if c.verify != nil {
		if pw := conn.pendingFor(p); pw != nil {
			return conn.recheck(ctx, pw)
		}
	}
	doc, err := c.body(p.Key, p.Set, p.Create && c.cfg.Create == CreatePOST)
	if err != nil {
		res.Err = connector.Permanent(err)
		return res
	}
	body, err := json.Marshal(doc)
	if err != nil {
		res.Err = connector.Permanent(&RequestError{Method: http.MethodPatch, Endpoint: "(not sent)", Key: p.Key, Err: fmt.Errorf("%w: %w", ErrBadValue, err)})
		return res
	}
	var cl *call
	switch {
	case p.Create && c.cfg.Create == CreateNone:
		res.Err = connector.Permanent(&RequestError{Method: "create", Endpoint: "(not sent)", Key: p.Key,
			Err: fmt.Errorf("%w: creating records needs Config.Create", ErrNotPermitted)})
		return res
	case p.Create && c.cfg.Create == CreatePOST:
		cl = c.newCall(http.MethodPost, c.endpoint(c.cfg.Collection, nil), p.Key)
		cl.header.Set("Content-Type", "application/json")
	case p.Create:
		cl = c.newCall(http.MethodPut, u, p.Key)
		cl.header.Set("Content-Type", "application/json")
		cl.header.Set("If-None-Match", "*")
	default:
		cl = c.newCall(http.MethodPatch, u, p.Key)
		cl.header.Set("Content-Type", "application/merge-patch+json")
	}
	cl.body = body
	if p.IfMatch != "" && !p.Create {
		cl.header.Set("If-Match", p.IfMatch)
	}
	c.idempotency(cl, p)
	r, err := c.do(ctx, cl)
	if err != nil {
		res.Err = err
		return res
	}
	res.Tag = r.header.Get("ETag")
	if len(strings.TrimSpace(string(r.body))) > 0 {
		rec, err := c.single(cl, r)
		if err != nil {
			res.Err = err
			return res
		}
		res.Tag, res.Modified = rec.Tag, rec.Modified
	}
	if c.verify != nil {
		return conn.verifyWrite(ctx, p, doc, res)
	}
	return res
}

func (c *compiled) idempotency(cl *call, p connector.Patch) {
	if p.IdempotencyKey != "" && c.cfg.IdempotencyHeader != "-" {
		cl.header.Set(c.cfg.IdempotencyHeader, p.IdempotencyKey)
	}
}

func (c *compiled) delete(ctx context.Context, u *url.URL, p connector.Patch) error {
	cl := c.newCall(http.MethodDelete, u, p.Key)
	if !c.cfg.AllowDelete {
		return connector.Permanent(cl.fail(0, fmt.Errorf("%w: deleting records needs Config.AllowDelete", ErrNotPermitted)))
	}
	if p.IfMatch != "" {
		cl.header.Set("If-Match", p.IfMatch)
	}
	c.idempotency(cl, p)
	r, err := c.do(ctx, cl)
	if err != nil && (r == nil || r.status != http.StatusNotFound) {
		return err
	}
	return nil
}
