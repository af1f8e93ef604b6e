// Package resttest runs a JSON REST API over TLS that behaves like a SaaS
// system's: bearer-token auth, a change feed with cursor pagination, a
// record list with page pagination by modification time and with key-order
// pagination, ETags with If-Match and If-None-Match, field-level PATCH with
// JSON merge patch semantics (RFC 7396), idempotency keys, and faults on a
// seeded schedule (429 with Retry-After, 5xx, slow responses). It is the
// system that package rest's tests and examples sync with; a host can use
// it to try a rest.Config before pointing it at the real API.
//
// # The API
//
// Records are JSON objects with these members owned by the server: "id"
// (the key, a string), "version" (a number bumped by every change; the
// ETag is the version quoted), "updated_at" (RFC 3339 with nanoseconds,
// from the server's clock) and, in lists that include deletions,
// "deleted": true. Everything else is the record's data, nested as the
// client likes.
//
//	GET    /v1/changes?cursor=C&limit=N       {"data":[…], "next_cursor":"…", "has_more":bool}
//	GET    /v1/records?updated_since=T&page=P&per_page=N
//	                                          {"data":[…]} by (updated_at, id), deletions included
//	GET    /v1/records?after=K&limit=N        {"data":[…]} live records by id
//	GET    /v1/records/{id}                   the record, with an ETag; 404 if none
//	PATCH  /v1/records/{id}                   merge patch; If-Match honoured; 404 if none
//	PUT    /v1/records/{id}                   with "If-None-Match: *": create; 412 if it exists
//	POST   /v1/records                        create from a body with "id"; 409 if it exists
//	DELETE /v1/records/{id}                   204; If-Match honoured; 404 if none
//
// The change feed lists each record once, at the position of its latest
// change, with its current state; a cursor is the position of the last
// change read. Writes carrying an "Idempotency-Key" header are answered
// from memory when the key repeats, with no second effect. Writes to the
// server's own members are refused with 422.
package resttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults is the seeded fault schedule: each request, before it is looked
// at, draws from the Server's random source and may be refused or delayed.
// Probabilities are in [0, 1]; the zero Faults injects nothing.
type Faults struct {
	// RateLimit is the probability of 429 Too Many Requests with the
	// header Retry-After: RetryAfter.
	RateLimit float64
	// RetryAfter is the Retry-After value sent with 429 (default "1").
	RetryAfter string
	// ServerError is the probability of a 500, 502 or 503 (without
	// Retry-After), before the request has any effect.
	ServerError float64
	// Slow is the probability that a request is delayed by Delay before
	// it is served.
	Slow  float64
	Delay time.Duration
}

// Options configures a [Server]. The zero value is a server without auth
// or faults whose clock is the wall clock at millisecond resolution (so
// that a bulk edit stamps many records with one time, as real APIs do).
type Options struct {
	// Token, if not empty, is the bearer token every request must carry
	// (more can be added with [Server.SetTokens]).
	Token string
	// Clock stamps updated_at.
	Clock func() time.Time
	// Faults is the initial fault schedule; see [Server.SetFaults].
	Faults Faults
	// Seed seeds the fault schedule.
	Seed uint64
}

// Request is what the server saw of one request.
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Status int
}

// Server is the API, served over TLS by an httptest.Server. Its methods are
// safe for concurrent use.
type Server struct {
	srv   *httptest.Server
	clock func() time.Time

	mu        sync.Mutex
	records   map[string]*entry
	seq       uint64
	idem      map[string]saved
	tokens    map[string]bool
	faults    Faults
	rng       *rand.Rand
	log       []Request
	ignore    map[string]bool
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

type entry struct {
	doc     map[string]any // the data, without the server's members
	version int64
	seq     uint64
	updated time.Time
	deleted bool
}

type saved struct {
	status int
	header http.Header
	body   []byte
}

// New starts a Server; close it with [Server.Close].
func New(opts Options) *Server {
	s := &Server{
		clock:   opts.Clock,
		records: map[string]*entry{},
		idem:    map[string]saved{},
		tokens:  map[string]bool{},
		faults:  opts.Faults,
		rng:     rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
		ignore:  map[string]bool{},
	}
	if s.clock == nil {
		s.clock = func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
	}
	if opts.Token != "" {
		s.tokens[opts.Token] = true
	}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the API's base URL, https://127.0.0.1:port/v1.
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close shuts the server down and closes the client's idle connections.
func (s *Server) Close() {
	s.srv.Client().CloseIdleConnections()
	s.srv.Close()
}

// SetTokens replaces the accepted bearer tokens (none: no auth), as a
// token rotation would.
func (s *Server) SetTokens(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
	for _, t := range tokens {
		s.tokens[t] = true
	}
}

// SetFaults replaces the fault schedule.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Intercept installs fn, which sees every request after auth and faults
// and may answer it itself (returning true), to serve malformed or
// oversized responses. nil removes it.
func (s *Server) Intercept(fn func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intercept = fn
}

// IgnoreWrites makes the server accept writes to the top-level member name
// but silently keep its old value: the failure read-after-write
// verification exists for.
func (s *Server) IgnoreWrites(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignore[name] = true
}

// Requests returns what the server saw so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		r.Header = r.Header.Clone()
		out[i] = r
	}
	return out
}

// Edit applies a JSON merge patch to the record with key, as a person
// using the system would, creating the record if it does not exist (or was
// deleted). patch is copied, never retained. It panics on a patch that is
// not JSON: that is a mistake in the test.
func (s *Server) Edit(key string, patch map[string]any) {
	doc := mustCopy(patch)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.records[key]
	if e == nil || e.deleted {
		e = s.revive(key, e)
	}
	mergePatch(e.doc, doc)
	s.touch(e)
}

// EditMany applies patch to every key at one instant of the server's
// clock, as a bulk edit does.
func (s *Server) EditMany(keys []string, patch map[string]any) {
	doc := mustCopy(patch)
	edits := make(map[string]map[string]any, len(keys))
	for _, key := range keys {
		edits[key] = doc
	}
	s.EditEach(edits)
}

// EditEach applies each patch to the record with its key, creating records
// as Edit does, all at one instant of the server's clock, as one bulk
// import does: every record edited gets the same updated_at. The change
// feed lists them in key order. Patches are copied, never retained; it
// panics on a patch that is not JSON, as Edit does.
func (s *Server) EditEach(edits map[string]map[string]any) {
	keys := slices.Sorted(maps.Keys(edits))
	// Copied before anything changes: a patch that is not JSON panics
	// with no record edited.
	docs := make([]map[string]any, len(keys))
	for i, key := range keys {
		docs[i] = mustCopy(edits[key])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	for i, key := range keys {
		e := s.records[key]
		if e == nil || e.deleted {
			e = s.revive(key, e)
		}
		mergePatch(e.doc, mustCopy(docs[i]))
		s.seq++
		e.version++
		e.seq, e.updated = s.seq, now
	}
}

// Delete deletes the record with key, as a person would.
func (s *Server) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.records[key]; e != nil && !e.deleted {
		e.deleted, e.doc = true, map[string]any{}
		s.touch(e)
	}
}

// Doc returns a copy of the live record with key as the API shows it.
func (s *Server) Doc(key string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.records[key]
	if e == nil || e.deleted {
		return nil, false
	}
	return mustCopy(s.view(key, e, false)), true
}

func (s *Server) revive(key string, old *entry) *entry {
	e := &entry{doc: map[string]any{}}
	if old != nil {
		e.version = old.version // a re-created record never reuses a tag
	}
	s.records[key] = e
	return e
}

func (s *Server) touch(e *entry) {
	s.seq++
	e.version++
	e.seq = s.seq
	e.updated = s.clock()
}

func (s *Server) view(key string, e *entry, withDeleted bool) map[string]any {
	v := make(map[string]any, len(e.doc)+4)
	for k, x := range e.doc {
		v[k] = x
	}
	v["id"], v["version"], v["updated_at"] = key, e.version, e.updated.Format(time.RFC3339Nano)
	if withDeleted {
		v["deleted"] = e.deleted
	}
	return v
}

func etag(e *entry) string { return `"` + strconv.FormatInt(e.version, 10) + `"` }

// ---- serving ----

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	s.mu.Lock()
	entry := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
	f := s.faults
	draw := func(p float64) bool { return p > 0 && s.rng.Float64() < p }
	limited, failed, slow := draw(f.RateLimit), draw(f.ServerError), draw(f.Slow)
	code := []int{500, 502, 503}[s.rng.IntN(3)]
	authorised := len(s.tokens) == 0 || s.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	intercept := s.intercept
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		entry.Status = rec.status
		s.log = append(s.log, entry)
		s.mu.Unlock()
	}()

	if slow {
		// Read the body first: until it is read, net/http cannot notice
		// that the client went away, and the delay would outlive it.
		body, _ := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case limited:
		ra := f.RetryAfter
		if ra == "" {
			ra = "1"
		}
		rec.Header().Set("Retry-After", ra)
		problem(rec, http.StatusTooManyRequests, "rate limit exceeded")
		return
	case failed:
		problem(rec, code, "upstream failure")
		return
	case !authorised:
		rec.Header().Set("WWW-Authenticate", `Bearer realm="resttest"`)
		problem(rec, http.StatusUnauthorized, "missing or invalid bearer token")
		return
	}
	if intercept != nil && intercept(rec, r) {
		return
	}
	s.route(rec, r)
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "detail": detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/")
	if !ok {
		problem(w, http.StatusNotFound, "no such endpoint")
		return
	}
	switch {
	case path == "changes" && r.Method == http.MethodGet:
		s.changes(w, r)
	case path == "records" && r.Method == http.MethodGet:
		s.list(w, r)
	case path == "records" && r.Method == http.MethodPost:
		s.write(w, r, "")
	case strings.HasPrefix(path, "records/"):
		key, err := pathUnescape(strings.TrimPrefix(path, "records/"))
		if err != nil || key == "" {
			problem(w, http.StatusBadRequest, "bad record id in the path")
			return
		}
		if r.Method == http.MethodGet {
			s.get(w, key)
			return
		}
		s.write(w, r, key)
	default:
		problem(w, http.StatusMethodNotAllowed, "no such endpoint")
	}
}

func pathUnescape(s string) (string, error) {
	if strings.Contains(s, "/") {
		return "", fmt.Errorf("a slash in an id must be escaped")
	}
	return url.PathUnescape(s)
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want a number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

func (s *Server) changes(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	var from uint64
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.ParseUint(strings.TrimPrefix(c, "c"), 10, 64)
		if err != nil || !strings.HasPrefix(c, "c") {
			problem(w, http.StatusBadRequest, "bad cursor")
			return
		}
		from = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if from > s.seq {
		problem(w, http.StatusBadRequest, "cursor from the future")
		return
	}
	keys := s.keysBy(func(a, b *entry) int { return cmpU(a.seq, b.seq) }, func(e *entry) bool { return e.seq > from })
	more := len(keys) > limit
	if more {
		keys = keys[:limit]
	}
	data := make([]any, 0, len(keys))
	next := from
	for _, k := range keys {
		e := s.records[k]
		data = append(data, s.view(k, e, true))
		next = e.seq
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "next_cursor": "c" + strconv.FormatUint(next, 10), "has_more": more})
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// keysBy returns the keys of the records that keep, ordered by order and
// then by key.
func (s *Server) keysBy(order func(a, b *entry) int, keep func(*entry) bool) []string {
	var keys []string
	for k, e := range s.records {
		if keep(e) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := order(s.records[a], s.records[b]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return keys
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("page") {
		s.pages(w, r)
		return
	}
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	after := q.Get("after")
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := s.keysBy(func(a, b *entry) int { return 0 }, func(e *entry) bool { return !e.deleted })
	i, _ := slices.BinarySearch(keys, after)
	if i < len(keys) && keys[i] == after {
		i++
	}
	keys = keys[i:]
	if len(keys) > limit {
		keys = keys[:limit]
	}
	data := make([]any, 0, len(keys))
	for _, k := range keys {
		data = append(data, s.view(k, s.records[k], false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

func (s *Server) pages(w http.ResponseWriter, r *http.Request) {
	page, err := intParam(r, "page", 1, 1, 1<<30)
	if err == nil {
		var size int
		if size, err = intParam(r, "per_page", 100, 1, 1000); err == nil {
			var since time.Time
			if v := r.URL.Query().Get("updated_since"); v != "" {
				since, err = time.Parse(time.RFC3339Nano, v)
			}
			if err == nil {
				s.mu.Lock()
				defer s.mu.Unlock()
				keys := s.keysBy(func(a, b *entry) int { return a.updated.Compare(b.updated) },
					func(e *entry) bool { return !e.updated.Before(since) })
				from := min(len(keys), (page-1)*size)
				keys = keys[from:min(len(keys), from+size)]
				data := make([]any, 0, len(keys))
				for _, k := range keys {
					data = append(data, s.view(k, s.records[k], true))
				}
				writeJSON(w, http.StatusOK, map[string]any{"data": data})
				return
			}
		}
	}
	problem(w, http.StatusBadRequest, err.Error())
}

func (s *Server) get(w http.ResponseWriter, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.records[key]
	if e == nil || e.deleted {
		problem(w, http.StatusNotFound, "no such record")
		return
	}
	w.Header().Set("ETag", etag(e))
	writeJSON(w, http.StatusOK, s.view(key, e, false))
}

// write serves POST, PUT, PATCH and DELETE, remembering the answer under
// the idempotency key.
func (s *Server) write(w http.ResponseWriter, r *http.Request, key string) {
	body, err := readBody(r)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ik := r.Header.Get("Idempotency-Key")
	if ik != "" {
		if sv, ok := s.idem[ik]; ok {
			for k, v := range sv.header {
				w.Header()[k] = v
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(sv.status)
			w.Write(sv.body)
			return
		}
	}
	rec := httptest.NewRecorder()
	s.writeLocked(rec, r, key, body)
	if ik != "" && rec.Code < 500 {
		s.idem[ik] = saved{status: rec.Code, header: rec.Header().Clone(), body: rec.Body.Bytes()}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func readBody(r *http.Request) (map[string]any, error) {
	if r.Method == http.MethodDelete {
		return nil, nil
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 1<<20)); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil, fmt.Errorf("body is not a JSON object: %v", err)
	}
	return doc, nil
}

var serverMembers = []string{"id", "version", "updated_at", "deleted"}

func (s *Server) writeLocked(w http.ResponseWriter, r *http.Request, key string, body map[string]any) {
	if r.Method == http.MethodPost {
		id, ok := body["id"].(string)
		if !ok || id == "" {
			problem(w, http.StatusUnprocessableEntity, `"id" must be a non-empty string`)
			return
		}
		key = id
		delete(body, "id")
	}
	for _, m := range serverMembers {
		if _, ok := body[m]; ok {
			problem(w, http.StatusUnprocessableEntity, fmt.Sprintf("%q is read-only", m))
			return
		}
	}
	e := s.records[key]
	live := e != nil && !e.deleted
	if im := r.Header.Get("If-Match"); im != "" && (!live || (im != "*" && im != etag(e))) {
		if !live && r.Method != http.MethodPut {
			problem(w, http.StatusNotFound, "no such record")
			return
		}
		problem(w, http.StatusPreconditionFailed, "the record has changed (If-Match)")
		return
	}
	switch r.Method {
	case http.MethodPost:
		if live {
			problem(w, http.StatusConflict, "a record with this id exists")
			return
		}
		e = s.revive(key, e)
	case http.MethodPut:
		if r.Header.Get("If-None-Match") != "*" {
			problem(w, http.StatusPreconditionRequired, "PUT creates only, with If-None-Match: *")
			return
		}
		if live {
			problem(w, http.StatusPreconditionFailed, "a record with this id exists (If-None-Match)")
			return
		}
		e = s.revive(key, e)
	case http.MethodPatch:
		if !live {
			problem(w, http.StatusNotFound, "no such record")
			return
		}
	case http.MethodDelete:
		if !live {
			problem(w, http.StatusNotFound, "no such record")
			return
		}
		e.deleted, e.doc = true, map[string]any{}
		s.touch(e)
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		problem(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	for name := range s.ignore {
		delete(body, name)
	}
	if r.Method == http.MethodPatch {
		mergePatch(e.doc, body)
	} else {
		e.doc = map[string]any{}
		mergePatch(e.doc, body) // a new record: nulls mean absent
	}
	s.touch(e)
	w.Header().Set("ETag", etag(e))
	status := http.StatusOK
	if r.Method != http.MethodPatch {
		status = http.StatusCreated
	}
	writeJSON(w, status, s.view(key, e, false))
}

// mergePatch applies patch to doc as RFC 7396 says: null removes a member,
// an object merges into an object, anything else replaces.
func mergePatch(doc, patch map[string]any) {
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			cur, ok := doc[k].(map[string]any)
			if !ok {
				cur = map[string]any{}
			}
			mergePatch(cur, pv)
			doc[k] = cur
		default:
			doc[k] = v
		}
	}
}

// mustCopy deep-copies a JSON document through encoding/json.
func mustCopy(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		panic("resttest: not JSON: " + err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		panic("resttest: " + err.Error())
	}
	if out == nil {
		out = map[string]any{}
	}
	return out
}
