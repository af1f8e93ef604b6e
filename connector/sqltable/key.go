package sqltable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EncodeKey joins the text forms of composite key values into one record
// key: each part with "\" escaped as "\\" and "/" as "\/", joined by "/".
// One part is returned as it is. It is the inverse of [DecodeKey].
func EncodeKey(parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('/')
		}
		for j := 0; j < len(p); j++ {
			if p[j] == '\\' || p[j] == '/' {
				b.WriteByte('\\')
			}
			b.WriteByte(p[j])
		}
	}
	return b.String()
}

// DecodeKey splits a record key made by [EncodeKey] into n parts. It
// returns an error wrapping [ErrKey] if key does not have exactly n parts or
// has a "\" that does not escape "\" or "/".
func DecodeKey(key string, n int) ([]string, error) {
	if n == 1 {
		return []string{key}, nil
	}
	parts := make([]string, 0, n)
	var cur strings.Builder
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case '\\':
			if i+1 == len(key) || (key[i+1] != '\\' && key[i+1] != '/') {
				return nil, fmt.Errorf("%w %q: a backslash at byte %d escapes neither \\ nor /", ErrKey, key, i)
			}
			i++
			cur.WriteByte(key[i])
		case '/':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	parts = append(parts, cur.String())
	if len(parts) != n {
		return nil, fmt.Errorf("%w %q: %d parts; want %d", ErrKey, key, len(parts), n)
	}
	return parts, nil
}

// keyArgs turns a record key into the values of the key columns.
func (t *Table) keyArgs(key string) ([]any, error) {
	parts, err := DecodeKey(key, len(t.cfg.Key))
	if err != nil {
		return nil, err
	}
	args := make([]any, len(parts))
	for i, p := range parts {
		col := t.cfg.Key[i]
		switch col.Type {
		case Int64:
			n, err := strconv.ParseInt(p, 10, 64)
			if err != nil || strconv.FormatInt(n, 10) != p {
				return nil, fmt.Errorf("%w %q: key column %q wants an integer in canonical decimal, got %q", ErrKey, key, col.Name, p)
			}
			args[i] = n
		default:
			if !utf8.ValidString(p) || strings.IndexByte(p, 0) >= 0 {
				return nil, fmt.Errorf("%w %q: key column %q wants valid UTF-8 text without NUL bytes", ErrKey, key, col.Name)
			}
			args[i] = p
		}
	}
	return args, nil
}

// keyString turns key column values read from a row into a record key.
func (t *Table) keyString(vals []any) (string, []any, error) {
	parts := make([]string, len(vals))
	norm := make([]any, len(vals))
	for i, v := range vals {
		col := t.cfg.Key[i]
		got, err := decode(col.Type, v)
		if err != nil {
			return "", nil, fmt.Errorf("key column %q: %w", col.Name, err)
		}
		switch g := got.(type) {
		case int64:
			parts[i], norm[i] = strconv.FormatInt(g, 10), g
		case string:
			parts[i], norm[i] = g, g
		default:
			return "", nil, fmt.Errorf("key column %q is NULL", col.Name)
		}
	}
	return EncodeKey(parts), norm, nil
}
