package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/concordsync/concord/connector"
)

// The causes a [*RequestError] may wrap, besides network errors and a
// [*PathError].
var (
	// ErrStatus: the API answered with a status that is not a success.
	ErrStatus = errors.New("unexpected HTTP status")
	// ErrMalformedResponse: the response is not the JSON the
	// configuration describes. Classed transient: a proxy's error page
	// passes; a persistent one ends in the engine's retry limit.
	ErrMalformedResponse = errors.New("malformed response")
	// ErrResponseTooLarge: the response is longer than
	// Config.MaxResponseBytes; it is not parsed at all. Classed
	// permanent: the same request gets the same answer.
	ErrResponseTooLarge = errors.New("response larger than MaxResponseBytes")
	// ErrTimeout: the request took longer than Config.Timeout.
	ErrTimeout = errors.New("request timed out")
	// ErrAuth: the HeaderProvider failed or panicked.
	ErrAuth = errors.New("authentication header provider failed")
	// ErrNotPermitted: the configuration does not permit the write
	// (Create without Config.Create, Delete without AllowDelete).
	ErrNotPermitted = errors.New("not permitted by the connector's configuration")
	// ErrBadValue: a value cannot be sent as JSON, or a record from the
	// API holds a value Concord does not accept.
	ErrBadValue = errors.New("value cannot cross the JSON boundary")
	// ErrBadCursor: a cursor this connector did not produce.
	ErrBadCursor = errors.New("damaged cursor")
	// ErrBadKey: a record key that cannot name a URL (empty, "." or
	// "..").
	ErrBadKey = errors.New("record key cannot be used in a URL")
)

// RequestError reports a failed request or a response that cannot be used.
// It names the method and endpoint, the record and field when one is at
// fault, the HTTP status when there was one, and the cause. The connector
// wraps it in one of the connector's error classes.
type RequestError struct {
	Method   string // "GET", "PATCH", …
	Endpoint string // the URL, without its query
	Key      string // the record, empty for a whole call
	Field    string // the field, empty when not one field
	Status   int    // the HTTP status, 0 if no response was used
	Body     string // the start of the response body, for a status error
	Err      error
}

// Error names everything the error knows.
func (e *RequestError) Error() string {
	var b strings.Builder
	b.WriteString("rest: ")
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.Endpoint)
	if e.Key != "" {
		fmt.Fprintf(&b, ": record %q", e.Key)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " field %q", e.Field)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Body != "" {
		fmt.Fprintf(&b, ": %q", e.Body)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// maxErrorBody is how much of an error response body an error quotes.
const maxErrorBody = 200

// response is a fully read response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// call is one request about to be sent.
type call struct {
	method   string
	u        *url.URL
	key      string
	header   http.Header
	body     []byte
	endpoint string // u without its query, for errors
}

func (c *compiled) newCall(method string, u *url.URL, key string) *call {
	e := *u
	e.RawQuery = ""
	return &call{method: method, u: u, key: key, header: http.Header{}, endpoint: e.String()}
}

// fail wraps cause in a RequestError about cl.
func (cl *call) fail(status int, cause error) *RequestError {
	return &RequestError{Method: cl.method, Endpoint: cl.endpoint, Key: cl.key, Status: status, Err: cause}
}

// do sends cl and reads its response. A 2xx response is returned with a nil
// error. Otherwise the error is classified: ctx's own error when ctx ended;
// RateLimited for 429 and 503 with Retry-After; Transient for other 5xx,
// 408, 425, timeouts and network errors; Conflict for 409 and 412; NotFound
// for 404 about a record; Permanent for every other status and for a response that is too
// large. The response is returned with status errors, so that callers can
// treat 404 or 412 as they must.
func (c *compiled) do(ctx context.Context, cl *call) (*response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(rctx, cl.method, cl.u.String(), body)
	if err != nil {
		return nil, connector.Permanent(cl.fail(0, err))
	}
	if c.cfg.Auth != nil {
		h, err := c.authHeader(rctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, connector.Transient(cl.fail(0, fmt.Errorf("%w: %w", ErrAuth, err)))
		}
		for k, vs := range h {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
	}
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, c.netError(ctx, rctx, cl, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err == nil && rctx.Err() != nil {
		// The deadline (or ctx) ended while the response came in: what
		// arrived may be cut short. Under load, a server that saw the
		// client give up answered an empty 200, read as a malformed
		// response instead of the timeout it was.
		err = rctx.Err()
	}
	if err != nil {
		return nil, c.netError(ctx, rctx, cl, err)
	}
	if int64(len(data)) > c.cfg.MaxResponseBytes {
		return nil, connector.Permanent(cl.fail(resp.StatusCode, fmt.Errorf("%w (%d bytes)", ErrResponseTooLarge, c.cfg.MaxResponseBytes)))
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: data}
	if r.status >= 200 && r.status < 300 {
		return r, nil
	}
	e := cl.fail(r.status, ErrStatus)
	e.Body = quoteBody(data)
	switch s := r.status; {
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		after, ok := connector.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if ok || s == http.StatusTooManyRequests {
			return r, connector.RateLimited(e, after)
		}
		return r, connector.Transient(e)
	case s >= 500, s == http.StatusRequestTimeout, s == http.StatusTooEarly:
		return r, connector.Transient(e)
	case s == http.StatusConflict, s == http.StatusPreconditionFailed:
		return r, connector.Conflict(e)
	case s == http.StatusNotFound && cl.key != "":
		return r, fmt.Errorf("%w: %w", connector.NotFound(cl.key), e)
	}
	return r, connector.Permanent(e)
}

// netError classifies a failure to send or to read.
func (c *compiled) netError(ctx, rctx context.Context, cl *call, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return connector.Transient(cl.fail(0, fmt.Errorf("%w after %v: %w", ErrTimeout, c.cfg.Timeout, err)))
	}
	return connector.Transient(cl.fail(0, err))
}

// authHeader calls the HeaderProvider, recovering a panic.
func (c *compiled) authHeader(ctx context.Context) (h http.Header, err error) {
	defer func() {
		if p := recover(); p != nil {
			h, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return c.cfg.Auth.Header(ctx)
}

func quoteBody(b []byte) string {
	if len(b) > maxErrorBody {
		b = b[:maxErrorBody]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return string(b)
}
