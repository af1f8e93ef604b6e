package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// decodeJSON parses a whole response body. Invalid UTF-8 is refused rather
// than replaced (encoding/json would turn it into U+FFFD: silently changed
// data), and so is anything after the first value.
func decodeJSON(cl *call, status int, body []byte) (any, error) {
	malformed := func(reason string) error {
		return connector.Transient(cl.fail(status, fmt.Errorf("%w: %s", ErrMalformedResponse, reason)))
	}
	if !utf8.Valid(body) {
		return nil, malformed("invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, malformed("empty body")
		}
		return nil, malformed(err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("data after the JSON value")
	}
	return v, nil
}

// malformed returns a transient error about the response to cl.
func malformed(cl *call, key, field, format string, args ...any) error {
	e := cl.fail(0, fmt.Errorf("%w: %s", ErrMalformedResponse, fmt.Sprintf(format, args...)))
	e.Key, e.Field = key, field
	return connector.Transient(e)
}

// list finds the list of records at p (or the whole document).
func list(cl *call, doc any, p *Path) ([]any, error) {
	v := doc
	what := "the response"
	if p != nil {
		var ok bool
		var err error
		if v, ok, err = p.Lookup(doc); err != nil {
			return nil, malformed(cl, "", "", "%v", err)
		} else if !ok {
			return nil, malformed(cl, "", "", "no list of records at %q", p)
		}
		what = fmt.Sprintf("%q", p)
	}
	items, ok := v.([]any)
	if !ok {
		return nil, malformed(cl, "", "", "%s is %s; want a list of records", what, jsonKind(v))
	}
	return items, nil
}

// record decodes one record object. tag, if not empty, is the record's ETag
// header; otherwise the tag comes from TagPath.
func (c *compiled) record(cl *call, obj any, tag string) (concord.Record, error) {
	if _, ok := obj.(map[string]any); !ok {
		return concord.Record{}, malformed(cl, "", "", "a record is %s; want an object", jsonKind(obj))
	}
	var r concord.Record
	kv, ok, err := c.key.Lookup(obj)
	switch {
	case err != nil:
		return r, malformed(cl, "", "", "record key: %v", err)
	case !ok:
		return r, malformed(cl, "", "", "a record has no key at %q", c.key)
	}
	switch k := kv.(type) {
	case string:
		r.Key = k
	case json.Number:
		r.Key = k.String()
	default:
		return r, malformed(cl, "", "", "a record's key at %q is %s; want a string or a number", c.key, jsonKind(kv))
	}
	if r.Key == "" {
		return r, malformed(cl, "", "", "a record has an empty key at %q", c.key)
	}
	if c.deleted != nil {
		v, _, err := c.deleted.Lookup(obj)
		if err != nil {
			return r, malformed(cl, r.Key, "", "deletion mark: %v", err)
		}
		switch d := v.(type) {
		case nil:
		case bool:
			r.Deleted = d
		default:
			return r, malformed(cl, r.Key, "", "deletion mark at %q is %s; want a boolean", c.deleted, jsonKind(v))
		}
	}
	r.Tag = tag
	if r.Tag == "" && c.tag != nil {
		v, _, err := c.tag.Lookup(obj)
		if err != nil {
			return r, malformed(cl, r.Key, "", "tag: %v", err)
		}
		switch t := v.(type) {
		case nil:
		case string:
			r.Tag = quoteTag(t)
		case json.Number:
			r.Tag = quoteTag(t.String())
		default:
			return r, malformed(cl, r.Key, "", "tag at %q is %s; want a string or a number", c.tag, jsonKind(v))
		}
	}
	if c.modified != nil {
		v, _, err := c.modified.Lookup(obj)
		if err != nil {
			return r, malformed(cl, r.Key, "", "modification time: %v", err)
		}
		switch m := v.(type) {
		case nil:
		case string:
			t, err := time.Parse(time.RFC3339Nano, m)
			if err != nil {
				return r, malformed(cl, r.Key, "", "modification time at %q: %v", c.modified, err)
			}
			r.Modified = t
		default:
			return r, malformed(cl, r.Key, "", "modification time at %q is %s; want an RFC 3339 string", c.modified, jsonKind(v))
		}
	}
	if r.Deleted {
		return r, nil
	}
	r.Fields = make(map[string]concord.Value, len(c.fields))
	for _, f := range c.fields {
		v, _, err := f.path.Lookup(obj)
		if err != nil {
			return r, malformed(cl, r.Key, f.name, "%v", err)
		}
		if err := concord.CheckValue(v); err != nil {
			e := cl.fail(0, fmt.Errorf("%w: %w", ErrBadValue, err))
			e.Key, e.Field = r.Key, f.name
			return r, connector.Permanent(e)
		}
		r.Fields[f.name] = v
	}
	return r, nil
}

// quoteTag makes t an entity-tag as ETag headers write it.
func quoteTag(t string) string {
	if len(t) >= 2 && strings.HasSuffix(t, `"`) && (strings.HasPrefix(t, `"`) || strings.HasPrefix(t, `W/"`)) {
		return t
	}
	return `"` + strings.ReplaceAll(t, `"`, "") + `"`
}

// single decodes a single-record response: the record at ItemPath, its tag
// from the ETag header. It checks that the record is the one asked for.
func (c *compiled) single(cl *call, r *response) (concord.Record, error) {
	doc, err := decodeJSON(cl, r.status, r.body)
	if err != nil {
		return concord.Record{}, err
	}
	obj := doc
	if c.item != nil {
		v, ok, err := c.item.Lookup(doc)
		if err != nil || !ok {
			return concord.Record{}, malformed(cl, cl.key, "", "no record at %q (%v)", c.item, err)
		}
		obj = v
	}
	rec, err := c.record(cl, obj, r.header.Get("ETag"))
	if err != nil {
		return rec, err
	}
	if cl.key != "" && rec.Key != cl.key {
		return rec, malformed(cl, cl.key, "", "the response is about record %q", rec.Key)
	}
	return rec, nil
}

// body builds the JSON merge patch (RFC 7396) for set: each field's value
// nested at its path. It returns the document too, for verification.
func (c *compiled) body(key string, set map[string]concord.Value, withKey bool) (map[string]any, error) {
	doc := map[string]any{}
	if withKey {
		if err := c.key.set(doc, key); err != nil {
			return nil, &RequestError{Key: key, Err: err}
		}
	}
	for name, v := range set {
		f, ok := c.field(name)
		if !ok {
			return nil, fieldError(key, name, fmt.Errorf("%w: field %q is not configured in Config.Fields", ErrBadValue, name))
		}
		if err := sendable(v); err != nil {
			return nil, fieldError(key, name, err)
		}
		if err := f.path.set(doc, utcTimes(v)); err != nil {
			return nil, fieldError(key, name, err)
		}
	}
	return doc, nil
}

func fieldError(key, field string, err error) error {
	return &RequestError{Method: "write", Endpoint: "(not sent)", Key: key, Field: field, Err: err}
}

// sendable checks that v is a Value that JSON can carry without changing
// its kind: not a byte string (JSON has none).
func sendable(v concord.Value) error {
	if err := concord.CheckValue(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadValue, err)
	}
	var bad error
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []byte:
			bad = fmt.Errorf("%w: a []byte cannot be sent: JSON has no byte strings (encode it in a Transformer)", ErrBadValue)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return bad
}

func (c *compiled) field(name string) (field, bool) {
	for _, f := range c.fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// utcTimes returns a copy of v with every time in UTC: RFC 3339 cannot
// write a zone offset with seconds, and encoding/json would drop them,
// moving the instant.
func utcTimes(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = utcTimes(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = utcTimes(e)
		}
		return out
	}
	return v
}

// roundTrip returns v as it reads back from JSON: times become strings,
// numbers json.Numbers.
func roundTrip(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if dec.Decode(&out) != nil {
		return v
	}
	return out
}
