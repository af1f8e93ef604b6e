package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ErrInvalidConfig is returned (wrapped in a [*ConfigError]) by [New] and
// [NewScanning] for a configuration they refuse.
var ErrInvalidConfig = errors.New("invalid configuration")

// ConfigError names the configuration field at fault and why.
type ConfigError struct {
	Field  string // "BaseURL", "Fields[city]", "Changes.CursorParam", …
	Reason string
	Err    error // ErrInvalidConfig, or a *PathError wrapping ErrBadPath
}

// Error names the field and the reason.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("rest: %v: %s: %s", ErrInvalidConfig, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidConfig and, for a bad path, the path's error.
func (e *ConfigError) Unwrap() []error {
	if e.Err == nil || e.Err == ErrInvalidConfig {
		return []error{ErrInvalidConfig}
	}
	return []error{ErrInvalidConfig, e.Err}
}

// HeaderProvider supplies the headers that authenticate a request. It is
// called before every request (tokens rotate); the headers it returns are
// added to the request and never retained. An error fails the request as
// transient (a token endpoint that is down may come back). A panic is
// recovered and reported the same way.
type HeaderProvider interface {
	// Header returns the headers for one request about to be sent. ctx
	// is the request's context (with Config.Timeout applied).
	Header(ctx context.Context) (http.Header, error)
}

// HeaderFunc adapts a function to [HeaderProvider].
type HeaderFunc func(ctx context.Context) (http.Header, error)

// Header calls f.
func (f HeaderFunc) Header(ctx context.Context) (http.Header, error) { return f(ctx) }

// BearerToken returns a [HeaderProvider] that sends "Authorization: Bearer
// <token>", asking token for the current token before every request.
func BearerToken(token func(ctx context.Context) (string, error)) HeaderProvider {
	return HeaderFunc(func(ctx context.Context) (http.Header, error) {
		t, err := token(ctx)
		if err != nil {
			return nil, err
		}
		if t == "" || strings.ContainsAny(t, "\r\n") {
			return nil, errors.New("bearer token is empty or contains a line break")
		}
		return http.Header{"Authorization": {"Bearer " + t}}, nil
	})
}

// CreateMethod is how the API creates a record.
type CreateMethod string

// The ways of creating a record.
const (
	// CreateNone refuses Patch.Create with a permanent error.
	CreateNone CreateMethod = ""
	// CreatePOST posts the record, with its key at Config.KeyPath, to
	// the collection. The API must answer 409 Conflict (or 412) when a
	// record with that key exists.
	CreatePOST CreateMethod = "POST"
	// CreatePUT puts the record at its URL with "If-None-Match: *", so
	// that an existing record fails with 412 Precondition Failed.
	CreatePUT CreateMethod = "PUT"
)

// Changes configures the change feed: a GET endpoint that lists records
// changed since a position, oldest first, as JSON. Exactly one of the two
// pagination styles is configured: cursor (CursorParam set) or page
// (PageParam set).
//
// Cursor pagination: the request carries the connector's cursor in
// CursorParam (absent on the first read) and the page size in LimitParam;
// the response carries the cursor to continue from at NextCursorPath. The
// API must order its feed so that reading from a returned cursor never
// skips a change made after that cursor was issued. A response whose next
// cursor is missing, null or empty keeps the cursor of the request, so the
// feed never goes back to the beginning. More comes from HasMorePath when
// set, and otherwise from a full page; HasMorePath true without a new
// cursor is an error (it would loop).
//
// Page pagination: the request carries SinceParam (a modification time in
// RFC 3339 with nanoseconds; the API must return records modified at or
// after it, inclusive), PageParam (1-based) and LimitParam (the page size,
// which the API must honour up to the limits the engine asks for), and the
// API must order the result by (modification time at Config.ModifiedPath,
// key in byte order); a page out of that order is an error. The
// connector's cursor carries the time and key of the last record returned
// and how many records the API listed at that time up to that key. The
// next read asks from that time, for the page holding the first record not
// read yet, and drops what it returned before; so records that share one
// timestamp across page boundaries (a bulk edit) are never skipped. It
// checks that the page begins with a record already read: if it does not,
// records read before were edited meanwhile (they moved to the end of the
// list) and the offsets shifted, so it asks for the page before. What page
// pagination cannot see is a record committed late with a modification
// time at or before the cursor's (a slow transaction in the API's
// database), or an edit made while a run of pages is read, stamped with
// the time of the record the run had reached and a key before it: so at
// the end of the feed the cursor goes back by Changes.Overlap and the next
// read repeats the records of that window (the engine recognises repeats).
// An edit committed later than Overlap after its timestamp can still be
// missed: prefer cursor pagination where the API has it.
type Changes struct {
	// Path is the feed's path below Config.BaseURL ("/changes").
	Path string
	// ItemsPath is where the response holds the list of records
	// ("data"); empty means the response body is the list.
	ItemsPath string
	// LimitParam is the query parameter for the page size (default
	// "limit").
	LimitParam string

	// CursorParam is the query parameter that carries the cursor.
	CursorParam string
	// NextCursorPath is where the response holds the next cursor; a
	// string or a number.
	NextCursorPath string
	// HasMorePath, optional, is where the response holds a boolean that
	// is true when more changes follow.
	HasMorePath string

	// PageParam is the query parameter for the 1-based page number.
	PageParam string
	// SinceParam is the query parameter for the inclusive lower bound
	// on the modification time.
	SinceParam string
	// Overlap is how far back the cursor goes at the end of the feed
	// (default 2s; it must cover the API's clock resolution and its
	// slowest commit): the records modified within Overlap of the last
	// one are read again, so that an edit stamped at or just before the
	// boundary, but made after it was read, is not lost.
	Overlap time.Duration
}

// Scan configures [Scanning.Scan]: a GET endpoint that lists live records in
// increasing byte order of their keys, after a given key.
type Scan struct {
	// Path is the list's path below Config.BaseURL ("/records").
	Path string
	// ItemsPath is where the response holds the list ("data"); empty
	// means the body is the list.
	ItemsPath string
	// AfterParam is the query parameter for the last key already read;
	// absent on the first page.
	AfterParam string
	// LimitParam is the query parameter for the page size (default
	// "limit").
	LimitParam string
}

// Verify configures read-after-write verification (see the package
// documentation). Its zero value verifies with the defaults.
type Verify struct {
	// Checks is how many reads in all (the one right after the write
	// included) may disagree with a written field before the patch is
	// reported as a permanent error. Default 3.
	Checks int
	// MaxPending bounds the reverify queue. A mismatch found while the
	// queue is full is reported as a permanent error at once. Default
	// 1024.
	MaxPending int
}

// Config configures a [Connector]. BaseURL, Collection and Changes are
// required; every other field has a documented default.
type Config struct {
	// BaseURL is the API's root, https://api.example.com/v2. A URL with
	// the scheme http is refused unless AllowInsecureHTTP is set.
	BaseURL string
	// AllowInsecureHTTP allows an http:// BaseURL, for tests against a
	// local server. Never set it for a real system: tokens and records
	// would travel in clear text.
	AllowInsecureHTTP bool
	// Client sends the requests; nil means a new http.Client with the
	// default transport. Use httptest.Server.Client for a test server.
	// The connector uses a copy that does not follow redirects: a 3xx
	// answer is a permanent error.
	Client *http.Client
	// Auth, optional, supplies authentication headers for every request.
	Auth HeaderProvider
	// Timeout bounds each request, from sending it to reading the whole
	// response (default 30s).
	Timeout time.Duration
	// MaxResponseBytes bounds every response body (default 8 MiB). A
	// larger response is an error wrapping ErrResponseTooLarge; it is
	// never parsed in part.
	MaxResponseBytes int64
	// IdempotencyHeader is the request header that carries
	// Patch.IdempotencyKey on writes (default "Idempotency-Key"); "-"
	// sends none.
	IdempotencyHeader string

	// Collection is the path of the records below BaseURL ("/records");
	// one record lives at Collection + "/" + its path-escaped key.
	Collection string
	// ItemPath is where a single-record response holds the record
	// ("data"); empty means the body is the record.
	ItemPath string
	// KeyPath is where a record object holds its key (default "id"); a
	// string or a number.
	KeyPath string
	// TagPath, optional, is where a record object in a list holds its
	// version tag. A value that is not already a quoted entity-tag
	// ("\"v7\"" or "W/\"v7\"") is quoted, so that a "version": 7 member
	// becomes the tag "\"7\"", the form ETag headers use. Single-record
	// responses take the tag from their ETag header.
	TagPath string
	// ModifiedPath, optional (required for page pagination), is where a
	// record object holds its modification time in RFC 3339.
	ModifiedPath string
	// DeletedPath, optional, is where a record object in the feed holds
	// a boolean that is true for a deleted record (a tombstone).
	DeletedPath string
	// Fields maps each field name the engine sees to its path in the
	// record object. A field whose path is absent (or runs through a
	// null) is reported as nil: the record has it empty. Paths may not
	// nest inside one another, nor name the key, tag, modification time
	// or deletion mark.
	Fields map[string]string

	// Changes configures the change feed (required).
	Changes Changes
	// Scan configures the Scanner ability; only [NewScanning] uses it.
	Scan Scan

	// Create is how Patch.Create creates a record; CreateNone (the
	// default) refuses it with a permanent error.
	Create CreateMethod
	// AllowDelete lets Patch.Delete delete records (DELETE on the
	// record's URL); otherwise a delete is a permanent error.
	AllowDelete bool

	// Verify, when not nil, turns on read-after-write verification.
	Verify *Verify
}

const (
	defaultTimeout          = 30 * time.Second
	defaultMaxResponseBytes = 8 << 20
	defaultVerifyChecks     = 3
	defaultOverlap          = 2 * time.Second
	defaultVerifyPending    = 1024
)

// field is one configured field.
type field struct {
	name string
	path Path
}

// compiled is a validated Config.
type compiled struct {
	cfg      Config
	base     *url.URL
	client   *http.Client
	fields   []field // sorted by name
	key      Path
	tag      *Path
	modified *Path
	deleted  *Path
	item     *Path

	feedItems  *Path
	nextCursor *Path
	hasMore    *Path
	scanItems  *Path
	cursorMode bool

	verify *Verify
}

func configError(field, reason string) error {
	return &ConfigError{Field: field, Reason: reason, Err: ErrInvalidConfig}
}

func optionalPath(field, s string) (*Path, error) {
	if s == "" {
		return nil, nil
	}
	p, err := ParsePath(s)
	if err != nil {
		return nil, &ConfigError{Field: field, Reason: err.Error(), Err: err}
	}
	return &p, nil
}

func validPathSegment(s string) bool {
	return s != "" && !strings.ContainsAny(s, "?#") && strings.HasPrefix(s, "/")
}

func validParam(s string) bool {
	return s != "" && !strings.ContainsAny(s, "&=#? \t\r\n")
}

// compile validates cfg and fills in the defaults.
func compile(cfg Config) (*compiled, error) {
	c := &compiled{cfg: cfg}
	u, err := url.Parse(cfg.BaseURL)
	switch {
	case cfg.BaseURL == "":
		return nil, configError("BaseURL", "empty")
	case err != nil:
		return nil, &ConfigError{Field: "BaseURL", Reason: err.Error(), Err: ErrInvalidConfig}
	case u.Host == "":
		return nil, configError("BaseURL", fmt.Sprintf("%q has no host", cfg.BaseURL))
	case u.User != nil:
		return nil, configError("BaseURL", "credentials in the URL are refused: use Config.Auth")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, configError("BaseURL", "a query or fragment is refused")
	case u.Scheme == "https":
	case u.Scheme == "http" && cfg.AllowInsecureHTTP:
	case u.Scheme == "http":
		return nil, configError("BaseURL", fmt.Sprintf("%q is plain http: TLS is required (set AllowInsecureHTTP only for tests)", cfg.BaseURL))
	default:
		return nil, configError("BaseURL", fmt.Sprintf("scheme %q: want https", u.Scheme))
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c.base = u

	// A copy that never follows redirects: Go turns a redirected PATCH
	// into a GET, which would "succeed" without writing, and a redirect
	// may lead to plain http.
	client := http.Client{}
	if cfg.Client != nil {
		client = *cfg.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.client = &client
	switch {
	case cfg.Timeout < 0:
		return nil, configError("Timeout", "negative")
	case cfg.Timeout == 0:
		c.cfg.Timeout = defaultTimeout
	}
	switch {
	case cfg.MaxResponseBytes < 0:
		return nil, configError("MaxResponseBytes", "negative")
	case cfg.MaxResponseBytes == 0:
		c.cfg.MaxResponseBytes = defaultMaxResponseBytes
	}
	switch h := cfg.IdempotencyHeader; {
	case h == "":
		c.cfg.IdempotencyHeader = "Idempotency-Key"
	case h == "-":
	case !validParam(h) || strings.ContainsAny(h, ":"):
		return nil, configError("IdempotencyHeader", fmt.Sprintf("%q is not a header name", h))
	}

	if !validPathSegment(cfg.Collection) {
		return nil, configError("Collection", fmt.Sprintf("%q: want a path starting with '/', without '?' or '#'", cfg.Collection))
	}
	if cfg.KeyPath == "" {
		c.cfg.KeyPath = "id"
	}
	if c.key, err = ParsePath(c.cfg.KeyPath); err != nil {
		return nil, &ConfigError{Field: "KeyPath", Reason: err.Error(), Err: err}
	}
	for _, f := range []struct {
		name string
		src  string
		dst  **Path
	}{
		{"ItemPath", cfg.ItemPath, &c.item},
		{"TagPath", cfg.TagPath, &c.tag},
		{"ModifiedPath", cfg.ModifiedPath, &c.modified},
		{"DeletedPath", cfg.DeletedPath, &c.deleted},
		{"Changes.ItemsPath", cfg.Changes.ItemsPath, &c.feedItems},
		{"Changes.NextCursorPath", cfg.Changes.NextCursorPath, &c.nextCursor},
		{"Changes.HasMorePath", cfg.Changes.HasMorePath, &c.hasMore},
		{"Scan.ItemsPath", cfg.Scan.ItemsPath, &c.scanItems},
	} {
		if *f.dst, err = optionalPath(f.name, f.src); err != nil {
			return nil, err
		}
	}

	if len(cfg.Fields) == 0 {
		return nil, configError("Fields", "no fields configured")
	}
	reserved := []struct {
		name string
		p    *Path
	}{{"KeyPath", &c.key}, {"TagPath", c.tag}, {"ModifiedPath", c.modified}, {"DeletedPath", c.deleted}}
	for name, s := range cfg.Fields {
		where := "Fields[" + name + "]"
		if name == "" {
			return nil, configError(where, "empty field name")
		}
		p, err := ParsePath(s)
		if err != nil {
			return nil, &ConfigError{Field: where, Reason: err.Error(), Err: err}
		}
		for _, r := range reserved {
			if r.p != nil && (r.p.prefixOf(p) || p.prefixOf(*r.p)) {
				return nil, configError(where, fmt.Sprintf("path %q overlaps %s %q", s, r.name, r.p))
			}
		}
		c.fields = append(c.fields, field{name: name, path: p})
	}
	slices.SortFunc(c.fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	for i, a := range c.fields {
		for _, b := range c.fields[i+1:] {
			if a.path.prefixOf(b.path) || b.path.prefixOf(a.path) {
				return nil, configError("Fields["+a.name+"]", fmt.Sprintf("path %q overlaps the path %q of field %q: a write to one would overwrite the other", a.path, b.path, b.name))
			}
		}
	}

	ch := cfg.Changes
	if !validPathSegment(ch.Path) {
		return nil, configError("Changes.Path", fmt.Sprintf("%q: want a path starting with '/', without '?' or '#'", ch.Path))
	}
	if ch.LimitParam == "" {
		c.cfg.Changes.LimitParam = "limit"
	}
	switch {
	case ch.CursorParam != "" && ch.PageParam != "":
		return nil, configError("Changes", "both CursorParam and PageParam set: choose one pagination")
	case ch.CursorParam != "":
		c.cursorMode = true
		if c.nextCursor == nil {
			return nil, configError("Changes.NextCursorPath", "required with CursorParam")
		}
	case ch.PageParam != "":
		switch {
		case ch.Overlap < 0:
			return nil, configError("Changes.Overlap", "negative")
		case ch.Overlap == 0:
			c.cfg.Changes.Overlap = defaultOverlap
		}
		if ch.SinceParam == "" {
			return nil, configError("Changes.SinceParam", "required with PageParam: pages alone miss changes made while paging")
		}
		if c.modified == nil {
			return nil, configError("ModifiedPath", "required with PageParam: the cursor carries the last modification time read")
		}
	default:
		return nil, configError("Changes", "neither CursorParam nor PageParam set")
	}
	for name, p := range map[string]string{
		"Changes.LimitParam": c.cfg.Changes.LimitParam, "Changes.CursorParam": ch.CursorParam,
		"Changes.PageParam": ch.PageParam, "Changes.SinceParam": ch.SinceParam,
	} {
		if p != "" && !validParam(p) {
			return nil, configError(name, fmt.Sprintf("%q is not a plain query parameter name", p))
		}
	}

	switch cfg.Create {
	case CreateNone, CreatePOST, CreatePUT:
	default:
		return nil, configError("Create", fmt.Sprintf("%q: want \"\", \"POST\" or \"PUT\"", cfg.Create))
	}
	if v := cfg.Verify; v != nil {
		vv := *v
		switch {
		case vv.Checks < 0:
			return nil, configError("Verify.Checks", "negative")
		case vv.Checks == 0:
			vv.Checks = defaultVerifyChecks
		}
		switch {
		case vv.MaxPending < 0:
			return nil, configError("Verify.MaxPending", "negative")
		case vv.MaxPending == 0:
			vv.MaxPending = defaultVerifyPending
		}
		c.verify = &vv
	}
	return c, nil
}

// compileScan validates the Scan part of a configuration.
func (c *compiled) compileScan() error {
	s := c.cfg.Scan
	if !validPathSegment(s.Path) {
		return configError("Scan.Path", fmt.Sprintf("%q: want a path starting with '/', without '?' or '#'", s.Path))
	}
	if !validParam(s.AfterParam) {
		return configError("Scan.AfterParam", fmt.Sprintf("%q is not a plain query parameter name", s.AfterParam))
	}
	if s.LimitParam == "" {
		c.cfg.Scan.LimitParam = "limit"
	} else if !validParam(s.LimitParam) {
		return configError("Scan.LimitParam", fmt.Sprintf("%q is not a plain query parameter name", s.LimitParam))
	}
	return nil
}
