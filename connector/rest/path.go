package rest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrBadPath is returned (wrapped in a [*PathError]) for a JSON path that
// does not follow the syntax described on [Path].
var ErrBadPath = errors.New("invalid JSON path")

// ErrShape is returned (wrapped in a [*PathError]) when a document does not
// have the shape a path expects: a member looked up in something that is not
// an object, or an element in something that is not a list.
var ErrShape = errors.New("document does not have the shape the path expects")

// PathError reports a bad path, or a document that a path cannot walk.
type PathError struct {
	Path   string // the path as configured
	Pos    int    // byte offset in Path of the fault, -1 when not known
	Reason string
	Err    error // ErrBadPath or ErrShape
}

// Error names the path, where in it the fault is and why.
func (e *PathError) Error() string {
	if e.Pos >= 0 {
		return fmt.Sprintf("%v %q at byte %d: %s", e.Err, e.Path, e.Pos, e.Reason)
	}
	return fmt.Sprintf("%v: path %q: %s", e.Err, e.Path, e.Reason)
}

// Unwrap returns ErrBadPath or ErrShape.
func (e *PathError) Unwrap() error { return e.Err }

// MaxPathIndex is the largest list index a [Path] may name.
const MaxPathIndex = 1<<20 - 1

// MaxPathSegments is the most segments (names and indexes) a [Path] may
// have; it is far below the nesting a [concord.Value] allows.
const MaxPathSegments = 32

// Path is a parsed JSON path: where a field lives inside a record's JSON
// object. The syntax is a dotted list of member names, each optionally
// followed by list indexes:
//
//	name            the member "name" of the record object
//	address.city    the member "city" of the object in "address"
//	tags[0]         the first element of the list in "tags"
//	lines[2].sku    the member "sku" of the third element of "lines"
//	m[0][1]         an element of a list inside a list
//
// A name is one or more bytes of valid UTF-8 other than '.', '[' and ']' (so member names
// containing those bytes cannot be reached); an index is a decimal number
// without sign or leading zeros, at most [MaxPathIndex]. A path has at most
// [MaxPathSegments] segments and starts with a name. The zero Path is
// invalid.
type Path struct {
	raw  string
	segs []segment
}

type segment struct {
	name  string // member name; empty for an index
	index int    // list index when name is empty
}

// ParsePath parses s. The error is a [*PathError] wrapping [ErrBadPath] that
// gives the byte offset of the fault.
func ParsePath(s string) (Path, error) {
	bad := func(pos int, reason string) (Path, error) {
		return Path{}, &PathError{Path: s, Pos: pos, Reason: reason, Err: ErrBadPath}
	}
	if s == "" {
		return bad(0, "empty path")
	}
	var segs []segment
	i := 0
	for i < len(s) {
		if len(segs) == MaxPathSegments {
			return bad(i, fmt.Sprintf("more than %d segments", MaxPathSegments))
		}
		switch s[i] {
		case '[':
			if len(segs) == 0 {
				return bad(i, "a path starts with a member name, not an index")
			}
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return bad(i, "'[' without ']'")
			}
			digits := s[i+1 : i+j]
			if digits == "" {
				return bad(i+1, "empty index")
			}
			for k := 0; k < len(digits); k++ {
				if digits[k] < '0' || digits[k] > '9' {
					return bad(i+1+k, "an index is decimal digits only")
				}
			}
			if len(digits) > 1 && digits[0] == '0' {
				return bad(i+1, "an index has no leading zeros")
			}
			n, err := strconv.Atoi(digits)
			if err != nil || n > MaxPathIndex {
				return bad(i+1, fmt.Sprintf("index above %d", MaxPathIndex))
			}
			segs = append(segs, segment{index: n})
			i += j + 1
			if i < len(s) && s[i] != '.' && s[i] != '[' {
				return bad(i, "an index is followed by '.', '[' or the end")
			}
		case '.':
			if len(segs) == 0 {
				return bad(i, "a path does not start with '.'")
			}
			i++
			if i == len(s) || s[i] == '.' || s[i] == '[' || s[i] == ']' {
				return bad(i, "'.' is followed by a member name")
			}
		case ']':
			return bad(i, "']' without '['")
		default:
			if len(segs) > 0 && s[i-1] != '.' {
				return bad(i, "segments are separated by '.'")
			}
			j := strings.IndexAny(s[i:], ".[]")
			if j < 0 {
				j = len(s) - i
			}
			name := s[i : i+j]
			if !utf8.ValidString(name) {
				return bad(i, "a member name is not valid UTF-8")
			}
			segs = append(segs, segment{name: name})
			i += j
		}
	}
	return Path{raw: s, segs: segs}, nil
}

// String returns the path as it was parsed.
func (p Path) String() string { return p.raw }

// hasIndex reports whether the path names a list element somewhere.
func (p Path) hasIndex() bool {
	for _, s := range p.segs {
		if s.name == "" {
			return true
		}
	}
	return false
}

// prefixOf reports whether p names q or an ancestor of q.
func (p Path) prefixOf(q Path) bool {
	if len(p.segs) > len(q.segs) {
		return false
	}
	for i, s := range p.segs {
		if s != q.segs[i] {
			return false
		}
	}
	return true
}

// Lookup finds the value at p in doc, a document decoded by encoding/json
// (objects as map[string]any, lists as []any). It reports false, with a nil
// error, when a member is absent, a list is too short or a null stands on
// the way: the field is empty. It returns a [*PathError] wrapping [ErrShape]
// when the document has another shape (a member looked up in a string, an
// index in an object). The returned value is part of doc, not a copy.
func (p Path) Lookup(doc any) (any, bool, error) {
	if len(p.segs) == 0 {
		return nil, false, &PathError{Path: p.raw, Pos: -1, Reason: "zero Path", Err: ErrBadPath}
	}
	cur := doc
	for i, s := range p.segs {
		if cur == nil {
			return nil, false, nil
		}
		if s.name != "" {
			obj, ok := cur.(map[string]any)
			if !ok {
				return nil, false, p.shapeError(i, cur)
			}
			if cur, ok = obj[s.name]; !ok {
				return nil, false, nil
			}
			continue
		}
		list, ok := cur.([]any)
		if !ok {
			return nil, false, p.shapeError(i, cur)
		}
		if s.index >= len(list) {
			return nil, false, nil
		}
		cur = list[s.index]
	}
	return cur, true, nil
}

func (p Path) shapeError(i int, found any) error {
	want := "an object"
	if p.segs[i].name == "" {
		want = "a list"
	}
	return &PathError{Path: p.raw, Pos: -1, Err: ErrShape,
		Reason: fmt.Sprintf("want %s before %s, found %s", want, p.segmentString(i), jsonKind(found))}
}

func (p Path) segmentString(i int) string {
	if s := p.segs[i]; s.name != "" {
		return fmt.Sprintf("member %q", s.name)
	}
	return fmt.Sprintf("index %d", p.segs[i].index)
}

// set stores v at p in doc, creating the objects on the way. It refuses a
// path with an index (a JSON merge patch cannot set one element of a list)
// and a path that runs through a value that is not an object.
func (p Path) set(doc map[string]any, v any) error {
	if p.hasIndex() {
		return &PathError{Path: p.raw, Pos: -1, Err: ErrShape,
			Reason: "a JSON merge patch cannot set one element of a list"}
	}
	cur := doc
	for i, s := range p.segs[:len(p.segs)-1] {
		next, ok := cur[s.name]
		if !ok {
			m := map[string]any{}
			cur[s.name] = m
			cur = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return p.shapeError(i+1, next)
		}
		cur = m
	}
	cur[p.segs[len(p.segs)-1].name] = v
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}
